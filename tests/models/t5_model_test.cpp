// T5 behaviour that the HF fixtures do not cover: cached generation against uncached recomputation, config
// parsing and its errors, the losses, the adapter sites (prefix identity, sublayer and prompt hooks).
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "common/error.h"
#include "common/threads.h"
#include "models/loss.h"
#include "models/t5/model.h"

using namespace peft;

namespace {

nlohmann::json small_config_json(const std::string& ffp = "gated-gelu") {
  return {{"vocab_size", 50}, {"d_model", 32},  {"d_kv", 8},          {"d_ff", 48},
          {"num_layers", 2},  {"num_heads", 4}, {"num_decoder_layers", 3}, {"feed_forward_proj", ffp},
          {"tie_word_embeddings", ffp == "relu"}, {"relative_attention_num_buckets", 8},
          {"relative_attention_max_distance", 16}};
}

T5ForConditionalGeneration small_model(const std::string& ffp, uint64_t seed) {
  torch::manual_seed(seed);
  T5ForConditionalGeneration m(T5Config::from_json(small_config_json(ffp), "test.json"));
  m->eval();
  return m;
}

std::string input_error_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

// Greedy decoding by recomputing the whole decoder over the prefix at every step (no cache), with HF's
// finished-row rule; the reference for the cached generate().
torch::Tensor greedy_uncached(T5ForConditionalGeneration& model, const torch::Tensor& input_ids,
                              const torch::Tensor& attention_mask, int64_t max_new_tokens) {
  torch::NoGradGuard no_grad;
  ForwardContext ctx;
  const auto& c = model->config();
  torch::Tensor ids = torch::full({input_ids.size(0), 1}, c.decoder_start_token_id, torch::kLong);
  torch::Tensor unfinished = torch::ones({input_ids.size(0)}, torch::kLong);
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    Seq2SeqOutput out = model->forward(input_ids, attention_mask, ids, torch::Tensor(), torch::Tensor(), ctx);
    torch::Tensor next = out.logits.select(1, -1).argmax(-1);
    next = next * unfinished + c.pad_token_id * (1 - unfinished);
    ids = torch::cat({ids, next.unsqueeze(1)}, 1);
    unfinished = unfinished * (next != c.eos_token_id).to(torch::kLong);
    if (unfinished.max().item<int64_t>() == 0) break;
  }
  return ids;
}

TEST(T5Generate, CachedEqualsUncachedGreedy) {
  for (const std::string ffp : {"relu", "gated-gelu"}) {
    T5ForConditionalGeneration model = small_model(ffp, 7);
    torch::Tensor input_ids = torch::tensor({{5, 9, 13, 22, 1}, {31, 4, 1, 0, 0}, {7, 7, 7, 1, 0}});
    torch::Tensor attention_mask = (input_ids != 0).to(torch::kLong);
    attention_mask.index_put_({0, 4}, 1);
    ForwardContext ctx;
    torch::Tensor cached = model->generate(input_ids, attention_mask, ctx, 12);
    torch::Tensor uncached = greedy_uncached(model, input_ids, attention_mask, 12);
    EXPECT_TRUE(cached.equal(uncached)) << ffp << "\ncached " << cached << "\nuncached " << uncached;
    EXPECT_EQ(cached.size(1), 13);
    EXPECT_TRUE((cached.select(1, 0) == model->config().decoder_start_token_id).all().item<bool>());
  }
}

// EOS handling: make token 1 (eos) win for row 0 at step 2 by construction, via a model whose lm_head we bias.
TEST(T5Generate, StopsAndPadsAfterEos) {
  T5ForConditionalGeneration model = small_model("gated-gelu", 3);
  torch::Tensor input_ids = torch::tensor({{5, 9, 13, 1}, {31, 4, 1, 0}});
  torch::Tensor mask = (input_ids != 0).to(torch::kLong);
  ForwardContext ctx;
  torch::Tensor free_run = model->generate(input_ids, mask, ctx, 6);
  // Make whatever row 0 emits at step 2 the eos token, by swapping lm_head rows of that token and eos.
  const int64_t tok = free_run[0][2].item<int64_t>();
  ASSERT_NE(tok, 1);
  {
    torch::NoGradGuard g;
    torch::Tensor w = model->lm_head->weight;
    torch::Tensor row_tok = w[tok].clone();
    w[tok].copy_(w[1]);
    w[1].copy_(row_tok);
  }
  torch::Tensor ids = model->generate(input_ids, mask, ctx, 6);
  torch::Tensor ref = greedy_uncached(model, input_ids, mask, 6);
  EXPECT_TRUE(ids.equal(ref)) << ids << ref;
  EXPECT_EQ(ids[0][2].item<int64_t>(), 1);
  for (int64_t t = 3; t < ids.size(1); ++t) EXPECT_EQ(ids[0][t].item<int64_t>(), 0) << "pad after eos";
}

// The decoder with a cache, fed one token at a time, gives the same hidden states as one full pass.
TEST(T5Generate, IncrementalDecoderMatchesFullPass) {
  T5ForConditionalGeneration model = small_model("gated-gelu", 11);
  torch::NoGradGuard no_grad;
  ForwardContext ctx;
  torch::Tensor input_ids = torch::tensor({{5, 9, 13, 22, 1}, {31, 4, 1, 0, 0}});
  torch::Tensor mask = (input_ids != 0).to(torch::kLong);
  torch::Tensor dec_ids = torch::tensor({{0, 3, 8, 2, 40, 41, 42}, {0, 17, 6, 6, 1, 0, 0}});
  T5StackOutput enc = model->encode(input_ids, mask, ctx);
  torch::Tensor full =
      model->decoder->forward(dec_ids, torch::Tensor(), enc.last_hidden_state, mask, ctx, false, false).last_hidden_state;
  T5DecoderCache cache;
  // First two tokens at once (exercises the causal mask with a cache), then one by one.
  std::vector<torch::Tensor> parts;
  parts.push_back(model->decoder->forward(dec_ids.narrow(1, 0, 2), torch::Tensor(), enc.last_hidden_state, mask, ctx,
                                          false, false, &cache).last_hidden_state);
  for (int64_t t = 2; t < dec_ids.size(1); ++t)
    parts.push_back(model->decoder->forward(dec_ids.narrow(1, t, 1), torch::Tensor(), enc.last_hidden_state, mask, ctx,
                                            false, false, &cache).last_hidden_state);
  EXPECT_EQ(cache.past_length(), dec_ids.size(1));
  torch::Tensor incremental = torch::cat(parts, 1);
  EXPECT_TRUE(torch::allclose(incremental, full, 1e-5, 1e-5)) << (incremental - full).abs().max();
}

// Dropout follows ctx.training only: eval passes are deterministic, training passes are not.
TEST(T5Dropout, OnlyWhenTraining) {
  T5ForConditionalGeneration model = small_model("gated-gelu", 8);
  torch::Tensor input_ids = torch::tensor({{5, 9, 13, 1}});
  torch::Tensor labels = torch::tensor({{3, 8, 1}});
  ForwardContext eval_ctx, train_ctx;
  train_ctx.training = true;
  torch::NoGradGuard g;
  auto logits = [&](const ForwardContext& c) {
    return model->forward(input_ids, torch::Tensor(), torch::Tensor(), torch::Tensor(), labels, c).logits;
  };
  EXPECT_TRUE(logits(eval_ctx).equal(logits(eval_ctx)));
  EXPECT_FALSE(logits(train_ctx).equal(logits(train_ctx)));
}

// ---------------------------------------------------------------------------------------------------------------

TEST(T5ConfigTest, DerivesActivationAndDefaultsAsHf) {
  T5Config v11 = T5Config::from_json(small_config_json("gated-gelu"), "c.json");
  EXPECT_TRUE(v11.is_gated_act);
  EXPECT_EQ(v11.dense_act_fn, "gelu_new");  // HF's backwards-compatibility rule
  EXPECT_EQ(v11.num_decoder_layers, 3);
  T5Config silu = T5Config::from_json(small_config_json("gated-silu"), "c.json");
  EXPECT_TRUE(silu.is_gated_act);
  EXPECT_EQ(silu.dense_act_fn, "silu");
  nlohmann::json j = small_config_json("relu");
  j.erase("num_decoder_layers");
  j["pad_token_id"] = 3;
  T5Config v10 = T5Config::from_json(j, "c.json");
  EXPECT_FALSE(v10.is_gated_act);
  EXPECT_EQ(v10.dense_act_fn, "relu");
  EXPECT_EQ(v10.num_decoder_layers, 2);      // defaults to num_layers
  EXPECT_EQ(v10.decoder_start_token_id, 3);  // defaults to pad
  EXPECT_TRUE(v10.tie_word_embeddings);
  EXPECT_EQ(v10.relative_attention_max_distance, 16);
  j.erase("relative_attention_max_distance");
  EXPECT_EQ(T5Config::from_json(j, "c.json").relative_attention_max_distance, 128);
  j["dense_act_fn"] = "gelu_new";  // explicit key wins over the derivation, as in HF
  EXPECT_EQ(T5Config::from_json(j, "c.json").dense_act_fn, "gelu_new");
}

TEST(T5ConfigTest, RefusesUnknownActivationByName) {
  const std::string msg =
      input_error_message([] { T5Config::from_json(small_config_json("gated-swoosh"), "m/config.json"); });
  EXPECT_NE(msg.find("m/config.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'swoosh'"), std::string::npos) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line";
  nlohmann::json j = small_config_json("relu");
  j["dense_act_fn"] = "bogus_act";
  EXPECT_NE(input_error_message([&] { T5Config::from_json(j, "m/config.json"); }).find("'bogus_act'"),
            std::string::npos);
  const std::string bad_form =
      input_error_message([] { T5Config::from_json(small_config_json("fancy-gelu"), "m/config.json"); });
  EXPECT_NE(bad_form.find("'fancy-gelu'"), std::string::npos) << bad_form;
}

TEST(T5ConfigTest, RefusesMissingKeyByName) {
  for (const char* key : {"d_model", "vocab_size", "num_heads", "d_kv", "d_ff", "num_layers"}) {
    nlohmann::json j = small_config_json();
    j.erase(key);
    EXPECT_EQ(input_error_message([&] { T5Config::from_json(j, "m/config.json"); }),
              std::string("m/config.json: missing key '") + key + "'");
  }
  nlohmann::json j = small_config_json();
  j["d_model"] = "wide";
  EXPECT_NE(input_error_message([&] { T5Config::from_json(j, "m/config.json"); }).find("'d_model'"),
            std::string::npos);
}

// ---------------------------------------------------------------------------------------------------------------

TEST(T5Structure, NamesAndTyingFollowHf) {
  T5ForConditionalGeneration tied = small_model("relu", 1), untied = small_model("gated-gelu", 1);
  auto names = [](T5ForConditionalGeneration& m) {
    std::vector<std::string> n;
    for (const auto& p : m->named_parameters()) n.push_back(p.key());
    return n;
  };
  const auto t = names(tied), u = names(untied);
  EXPECT_EQ(t.front(), "shared.weight");
  EXPECT_EQ(std::count(t.begin(), t.end(), "lm_head.weight"), 0);
  EXPECT_EQ(u.back(), "lm_head.weight");
  EXPECT_NE(std::find(t.begin(), t.end(), "encoder.block.0.layer.1.DenseReluDense.wi.weight"), t.end());
  EXPECT_NE(std::find(u.begin(), u.end(), "decoder.block.2.layer.2.DenseReluDense.wi_1.weight"), u.end());
  EXPECT_NE(std::find(u.begin(), u.end(), "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"),
            u.end());
  EXPECT_EQ(std::find(u.begin(), u.end(), "decoder.block.1.layer.0.SelfAttention.relative_attention_bias.weight"),
            u.end());
  EXPECT_EQ(std::find(u.begin(), u.end(), "decoder.block.0.layer.1.EncDecAttention.relative_attention_bias.weight"),
            u.end());
  // Both stacks embed with `shared` itself.
  EXPECT_EQ(tied->encoder->embed_tokens->weight.data_ptr(), tied->shared->weight.data_ptr());
  EXPECT_EQ(tied->decoder->embed_tokens->weight.data_ptr(), tied->shared->weight.data_ptr());
  // HF _init_weights scales: q ~ N(0, (d_model d_kv)^-1/2), norms = 1.
  T5Config big = T5Config::from_json(small_config_json(), "c.json");
  big.d_model = 256;
  big.d_kv = 64;
  torch::manual_seed(0);
  T5ForConditionalGeneration m(big);
  const double q_std = m->encoder->blocks[0]->self_attention->SelfAttention->q->weight.std().item<double>();
  EXPECT_NEAR(q_std, 1.0 / std::sqrt(256.0 * 64.0), 0.1 / std::sqrt(256.0 * 64.0));
  EXPECT_TRUE(m->encoder->final_layer_norm->weight.eq(1).all().item<bool>());
}

// ---------------------------------------------------------------------------------------------------------------

TEST(Loss, CrossEntropyIgnoresMinus100AndAveragesAsHf) {
  torch::manual_seed(0);
  torch::Tensor logits = torch::randn({2, 3, 5});
  torch::Tensor labels = torch::tensor({{1, 4, -100}, {0, -100, -100}});
  torch::Tensor lp = torch::log_softmax(logits, -1);
  const double want = -(lp[0][0][1] + lp[0][1][4] + lp[1][0][0]).item<double>() / 3.0;
  EXPECT_NEAR(token_cross_entropy(logits, labels).item<double>(), want, 1e-6);
  torch::Tensor ll = sequence_log_likelihood(logits, labels);
  EXPECT_NEAR(ll[0].item<double>(), (lp[0][0][1] + lp[0][1][4]).item<double>(), 1e-6);
  EXPECT_NEAR(ll[1].item<double>(), lp[1][0][0].item<double>(), 1e-6);
}

TEST(Loss, FusedCrossEntropyMatchesTorchValueAndGradient) {
  torch::manual_seed(1);
  for (int threads : {1, 2}) {
    set_cpu_threads(threads);
    torch::Tensor labels = torch::randint(0, 1000, {4, 33});
    labels.index_put_({0, torch::indexing::Slice(5, 20)}, -100);  // some ignored positions
    torch::Tensor logits = (torch::randn({4, 33, 1000}) * 3).requires_grad_(true);
    torch::Tensor reference_logits = logits.detach().clone().requires_grad_(true);
    torch::Tensor ours = token_cross_entropy(logits, labels);
    torch::Tensor want = torch::nn::functional::cross_entropy(
        reference_logits.view({-1, 1000}), labels.view({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().ignore_index(-100));
    EXPECT_NEAR(ours.item<double>(), want.item<double>(), 1e-5) << threads << " threads";
    (ours * 2.5).backward();
    (want * 2.5).backward();
    EXPECT_TRUE(torch::allclose(logits.grad(), reference_logits.grad(), 1e-5, 1e-7)) << threads << " threads";
  }
  set_cpu_threads(1);
  // Every label ignored: NaN, as torch and HF.
  EXPECT_TRUE(std::isnan(token_cross_entropy(torch::randn({2, 3, 5}), torch::full({2, 3}, -100)).item<double>()));
}

TEST(Loss, T5SequenceLogLikelihoodMatchesModelLoss) {
  T5ForConditionalGeneration model = small_model("gated-gelu", 5);
  torch::Tensor input_ids = torch::tensor({{5, 9, 13, 1}, {31, 4, 1, 0}});
  torch::Tensor mask = (input_ids != 0).to(torch::kLong);
  torch::Tensor labels = torch::tensor({{3, 8, 1}, {6, 1, -100}});
  ForwardContext ctx;
  torch::NoGradGuard g;
  torch::Tensor ll = t5_sequence_log_likelihood(*model, input_ids, mask, labels, ctx);
  torch::Tensor loss = model->forward(input_ids, mask, torch::Tensor(), torch::Tensor(), labels, ctx).loss;
  EXPECT_NEAR(-ll.sum().item<double>() / 5.0, loss.item<double>(), 1e-5);  // 5 non-ignored tokens
  // Row 1 alone scores the same: padding in a batch does not leak.
  torch::Tensor ll1 = t5_sequence_log_likelihood(*model, input_ids.narrow(0, 1, 1).narrow(1, 0, 3),
                                                 mask.narrow(0, 1, 1).narrow(1, 0, 3),
                                                 labels.narrow(0, 1, 1).narrow(1, 0, 2), ctx);
  EXPECT_NEAR(ll1[0].item<double>(), ll[1].item<double>(), 1e-5);
}

// ---------------------------------------------------------------------------------------------------------------

struct FixedPrefix : PrefixHook {
  torch::Tensor k, v;  // [1, h, l, d]
  std::pair<torch::Tensor, torch::Tensor> prefix(int64_t batch, const ForwardContext&) override {
    return {k.expand({batch, -1, -1, -1}), v.expand({batch, -1, -1, -1})};
  }
};

// methods.md §6: Attn with prefix = (1 - λ) Attn(q, K, V) + λ Attn(q, P_k, P_v), λ = prefix share of the
// softmax mass; position bias applies to K only (zero for the prefix), no scaling.
TEST(T5Hooks, PrefixTuningIdentity) {
  T5ForConditionalGeneration model = small_model("gated-gelu", 9);
  torch::NoGradGuard g;
  ForwardContext ctx;
  T5Attention attn = model->encoder->blocks[0]->self_attention->SelfAttention;
  const int64_t h = 4, d = 8, l = 3;
  torch::Tensor x = torch::randn({2, 5, 32});
  torch::Tensor bias = attn->compute_bias(5, 5);
  auto prefix = std::make_shared<FixedPrefix>();
  prefix->k = torch::randn({1, h, l, d});
  prefix->v = torch::randn({1, h, l, d});

  auto heads = [&](const torch::Tensor& y) { return y.view({2, -1, h, d}).transpose(1, 2); };
  torch::Tensor q = heads(attn->q->forward(x, ctx)), k = heads(attn->k->forward(x, ctx)),
                v = heads(attn->v->forward(x, ctx));
  torch::Tensor s_main = torch::matmul(q, k.transpose(3, 2)) + bias;
  torch::Tensor s_pre = torch::matmul(q, prefix->k.transpose(3, 2));
  torch::Tensor main_mass = s_main.exp().sum(-1, true), pre_mass = s_pre.exp().sum(-1, true);
  torch::Tensor lambda = pre_mass / (pre_mass + main_mass);
  torch::Tensor mixed = (1 - lambda) * torch::matmul(torch::softmax(s_main, -1), v) +
                        lambda * torch::matmul(torch::softmax(s_pre, -1), prefix->v);
  torch::Tensor want = attn->o->forward(mixed.transpose(1, 2).reshape({2, 5, h * d}), ctx);

  attn->prefix_hooks.push_back(prefix);
  T5AttentionOutput got = attn->forward(x, torch::Tensor(), bias, ctx, true);
  attn->prefix_hooks.clear();
  EXPECT_TRUE(torch::allclose(got.hidden_states, want, 1e-5, 1e-5)) << (got.hidden_states - want).abs().max();
  EXPECT_EQ(got.weights.size(3), l + 5);
}

// Prefix hooks on every attention also work through the cached generation path.
TEST(T5Hooks, PrefixHooksCachedGenerationEqualsUncached) {
  T5ForConditionalGeneration model = small_model("gated-gelu", 13);
  torch::manual_seed(1);
  for (auto& m : model->modules(false)) {
    if (auto* a = m->as<T5AttentionImpl>()) {
      auto p = std::make_shared<FixedPrefix>();
      p->k = torch::randn({1, 4, 2, 8});
      p->v = torch::randn({1, 4, 2, 8});
      a->prefix_hooks.push_back(p);
    }
  }
  torch::Tensor input_ids = torch::tensor({{5, 9, 13, 1}, {31, 4, 1, 0}});
  torch::Tensor mask = (input_ids != 0).to(torch::kLong);
  ForwardContext ctx;
  EXPECT_TRUE(model->generate(input_ids, mask, ctx, 6).equal(greedy_uncached(model, input_ids, mask, 6)));
}

struct RecordingSublayer : SublayerHook {
  torch::Tensor seen_input;
  torch::Tensor apply(const torch::Tensor& input, torch::Tensor output, const ForwardContext&) override {
    seen_input = input;
    return output * 0;  // removes the sub-layer: the block adds nothing
  }
};

TEST(T5Hooks, SublayerHookSeesNormedInputAndReplacesOutputBeforeResidual) {
  T5ForConditionalGeneration model = small_model("gated-gelu", 2);
  torch::NoGradGuard g;
  ForwardContext ctx;
  T5LayerFF ff = model->encoder->blocks[1]->ff;
  EXPECT_EQ(ff->sublayer_kind, SublayerKind::kFeedForward);
  EXPECT_EQ(model->decoder->blocks[0]->cross_attention->sublayer_kind, SublayerKind::kCrossAttention);
  auto hook = std::make_shared<RecordingSublayer>();
  ff->sublayer_hooks.push_back(hook);
  torch::Tensor x = torch::randn({2, 3, 32});
  torch::Tensor y = ff->forward(x, ctx);
  ff->sublayer_hooks.clear();
  EXPECT_TRUE(y.equal(x));
  EXPECT_TRUE(torch::allclose(hook->seen_input, ff->layer_norm->forward(x)));
}

struct PrependPrompt : EmbeddingHook {
  torch::Tensor prompt;  // [n, d]
  std::pair<torch::Tensor, torch::Tensor> prepend(torch::Tensor emb, torch::Tensor mask,
                                                  const ForwardContext&) override {
    const int64_t b = emb.size(0), n = prompt.size(0);
    return {torch::cat({prompt.unsqueeze(0).expand({b, n, -1}), emb}, 1),
            torch::cat({torch::ones({b, n}, mask.options()), mask}, 1)};
  }
};

TEST(T5Hooks, PromptTuningExtendsEncoderAndCrossAttentionMask) {
  T5ForConditionalGeneration model = small_model("gated-gelu", 4);
  torch::NoGradGuard g;
  ForwardContext ctx;
  auto hook = std::make_shared<PrependPrompt>();
  hook->prompt = torch::randn({3, 32});
  model->encoder->embedding_hooks.push_back(hook);
  torch::Tensor input_ids = torch::tensor({{5, 9, 13, 1}, {31, 4, 1, 0}});
  torch::Tensor mask = (input_ids != 0).to(torch::kLong);
  Seq2SeqOutput out = model->forward(input_ids, mask, torch::tensor({{0, 4}, {0, 7}}), torch::Tensor(),
                                     torch::Tensor(), ctx, true, true);
  EXPECT_EQ(out.encoder_last_hidden_state.size(1), 7);
  EXPECT_EQ(out.encoder_attention_mask.size(1), 7);
  EXPECT_EQ(out.cross_attentions[0].size(3), 7);
  // The padded key (last input position) gets no cross-attention; the prompt positions do.
  EXPECT_EQ(out.cross_attentions[0][1].select(-1, 6).abs().max().item<double>(), 0.0);
  EXPECT_GT(out.cross_attentions[0][1].select(-1, 0).min().item<double>(), 0.0);
  EXPECT_TRUE(torch::allclose(out.encoder_hidden_states[0].narrow(1, 0, 3)[0], hook->prompt));
}

}  // namespace
