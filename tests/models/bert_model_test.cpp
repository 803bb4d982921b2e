// BertConfig validation, load_bert's error messages and head choice, and the adapter sites BERT exposes.
#include <gtest/gtest.h>

#include <unistd.h>

#include "support/input_error.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "models/bert/model.h"

namespace peft::bert {
namespace {

const std::filesystem::path kFixtures = std::filesystem::path(PEFT_SOURCE_DIR) / "tests" / "fixtures";

using test::input_error;

BertInputs fixture_inputs(const io::TensorMap& ref) {
  BertInputs in;
  in.input_ids = ref.at("input_ids");
  in.attention_mask = ref.at("attention_mask");
  in.token_type_ids = ref.at("token_type_ids");
  return in;
}

TEST(BertConfig, ReadsTheFixtureConfig) {
  const auto c = BertConfig::from_json(io::read_json(kFixtures / "bert_tiny" / "config.json"), "config.json");
  EXPECT_EQ(c.vocab_size, 128);
  EXPECT_EQ(c.hidden_size, 64);
  EXPECT_EQ(c.num_hidden_layers, 2);
  EXPECT_EQ(c.num_attention_heads, 4);
  EXPECT_EQ(c.intermediate_size, 128);
  EXPECT_EQ(c.max_position_embeddings, 64);
  EXPECT_EQ(c.num_labels, 3);  // from id2label
  EXPECT_EQ(c.hidden_act, "gelu");
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-12);
  EXPECT_FALSE(c.classifier_dropout.has_value());  // null
  EXPECT_EQ(c.architectures, std::vector<std::string>{"BertForSequenceClassification"});
}

TEST(BertConfig, RefusesMissingKeysAndUnsupportedValuesByName) {
  nlohmann::json j = io::read_json(kFixtures / "bert_tiny" / "config.json");
  auto without = j;
  without.erase("hidden_size");
  EXPECT_EQ(input_error([&] { BertConfig::from_json(without, "m/config.json"); }),
            "m/config.json: missing key 'hidden_size'");
  auto act = j;
  act["hidden_act"] = "mish";
  EXPECT_EQ(input_error([&] { BertConfig::from_json(act, "m/config.json"); }).rfind(
                "m/config.json: hidden_act 'mish' is not supported", 0),
            0u);
  auto pos = j;
  pos["position_embedding_type"] = "relative_key";
  EXPECT_EQ(input_error([&] { BertConfig::from_json(pos, "m/config.json"); }),
            "m/config.json: position_embedding_type 'relative_key' is not supported (only 'absolute')");
  auto type = j;
  type["num_attention_heads"] = "four";
  EXPECT_EQ(input_error([&] { BertConfig::from_json(type, "m/config.json"); }),
            "m/config.json: key 'num_attention_heads' must be an integer, got \"four\"");
  auto heads = j;
  heads["num_attention_heads"] = 5;
  EXPECT_EQ(input_error([&] { BertConfig::from_json(heads, "m/config.json"); }),
            "m/config.json: hidden_size 64 is not a multiple of num_attention_heads 5");
}

TEST(LoadBert, MissingAndMisshapedTensorsAreAllReported) {
  io::HfCheckpoint c = io::read_hf_checkpoint(kFixtures / "bert_tiny");
  c.tensors.erase("bert.encoder.layer.1.output.dense.weight");
  c.tensors["bert.pooler.dense.bias"] = torch::zeros({65});
  c.tensors["bert.embeddings.position_ids"] = torch::arange(64).unsqueeze(0);  // old checkpoints: ignored
  const std::string file = (kFixtures / "bert_tiny" / "model.safetensors").string();
  EXPECT_EQ(input_error([&] { load_bert(c); }),
            file + ": missing tensor 'bert.encoder.layer.1.output.dense.weight'; "
                   "wrong shape for 'bert.pooler.dense.bias': file [65] vs model [64]");
}

TEST(LoadBert, ConfigWithoutRequiredKeyNamesTheFile) {
  io::HfCheckpoint c = io::read_hf_checkpoint(kFixtures / "bert_tiny_base");
  c.config.erase("num_hidden_layers");
  EXPECT_EQ(input_error([&] { load_bert(c); }),
            (kFixtures / "bert_tiny_base" / "config.json").string() + ": missing key 'num_hidden_layers'");
}

TEST(LoadBert, ChoosesTheHeadFromNamesAndCanTakeTheEncoderAlone) {
  const io::HfCheckpoint seqcls_ckpt = io::read_hf_checkpoint(kFixtures / "bert_tiny");
  const io::HfCheckpoint base_ckpt = io::read_hf_checkpoint(kFixtures / "bert_tiny_base");
  auto seqcls = load_bert(seqcls_ckpt);
  ASSERT_NE(dynamic_cast<BertForSequenceClassificationImpl*>(seqcls.get()), nullptr);
  EXPECT_EQ(seqcls->base_model_prefix(), "bert.");
  auto base = load_bert(base_ckpt);
  ASSERT_NE(dynamic_cast<BertModelImpl*>(base.get()), nullptr);
  EXPECT_FALSE(base->is_training());  // returned in eval mode

  // The encoder of the classification checkpoint, as BertModel, computes what the head's `bert` computes.
  auto encoder_only = load_bert(seqcls_ckpt, BertHead::kBase);
  const io::TensorMap ref = io::read_safetensors(kFixtures / "bert_tiny" / "ref.safetensors", std::nullopt);
  ForwardContext ctx;
  const auto a = encoder_only->base_model().forward(fixture_inputs(ref), ctx).last_hidden_state;
  EXPECT_TRUE(torch::allclose(a, ref.at("last_hidden_state"), 1e-4, 1e-4));

  // A classification head on the base checkpoint: encoder loaded under `bert.`, classifier kept as initialised.
  auto fresh = load_bert(base_ckpt, BertHead::kSequenceClassification);
  auto* f = dynamic_cast<BertForSequenceClassificationImpl*>(fresh.get());
  ASSERT_NE(f, nullptr);
  EXPECT_TRUE(torch::equal(f->bert->embeddings->word_embeddings->weight,
                           base_ckpt.tensors.at("embeddings.word_embeddings.weight")));
  EXPECT_EQ(f->classifier->weight.size(0), 3);  // len(id2label)
  auto five = load_bert(base_ckpt, BertHead::kSequenceClassification, 5);
  EXPECT_EQ(dynamic_cast<BertForSequenceClassificationImpl&>(*five).classifier->weight.size(0), 5);
  // A stored classifier must agree with an override.
  EXPECT_EQ(input_error([&] { load_bert(seqcls_ckpt, BertHead::kAuto, 5); }),
            (kFixtures / "bert_tiny" / "model.safetensors").string() +
                ": wrong shape for 'classifier.weight': file [3,64] vs model [5,64]; "
                "wrong shape for 'classifier.bias': file [3] vs model [5]");
}

// Records what a sub-layer hook sees and adds a constant to the output.
struct RecordingHook : SublayerHook {
  std::vector<std::pair<torch::Tensor, torch::Tensor>> seen;
  torch::Tensor apply(const torch::Tensor& input, torch::Tensor output, const ForwardContext&) override {
    seen.emplace_back(input, output);
    return output;
  }
};

struct ZeroPrefix : PrefixHook {
  int64_t heads, length, d_head;
  ZeroPrefix(int64_t h, int64_t l, int64_t d) : heads(h), length(l), d_head(d) {}
  std::pair<torch::Tensor, torch::Tensor> prefix(int64_t batch, const ForwardContext&) override {
    return {torch::zeros({batch, heads, length, d_head}), torch::zeros({batch, heads, length, d_head})};
  }
};

TEST(BertSites, EveryLinearIsAdaptableAndEverySiteIsFoundByName) {
  auto model = load_bert(io::read_hf_checkpoint(kFixtures / "bert_tiny"));
  int linears = 0, prefix_sites = 0, embedding_sites = 0;
  std::vector<std::string> attention_sites, ffn_sites;
  for (const auto& m : model->named_modules()) {
    if (dynamic_cast<AdaptableLinearImpl*>(m.value().get())) ++linears;
    if (dynamic_cast<HasPrefixHooks*>(m.value().get())) {
      ++prefix_sites;
      EXPECT_EQ(m.key().substr(m.key().size() - 15), ".attention.self");
    }
    if (dynamic_cast<HasEmbeddingHooks*>(m.value().get())) ++embedding_sites;
    if (auto* s = dynamic_cast<HasSublayerHooks*>(m.value().get()))
      (s->sublayer_kind == SublayerKind::kSelfAttention ? attention_sites : ffn_sites).push_back(m.key());
  }
  EXPECT_EQ(linears, 2 * 6 + 2);  // q, k, v, attention.output.dense, intermediate.dense, output.dense; pooler; classifier
  EXPECT_EQ(prefix_sites, 2);
  EXPECT_EQ(embedding_sites, 1);
  EXPECT_EQ(attention_sites, (std::vector<std::string>{"bert.encoder.layer.0.attention.output",
                                                       "bert.encoder.layer.1.attention.output"}));
  EXPECT_EQ(ffn_sites, (std::vector<std::string>{"bert.encoder.layer.0.output", "bert.encoder.layer.1.output"}));
}

TEST(BertSites, SublayerHooksSeeTheResidualInputAndTheProjectedOutput) {
  auto model = load_bert(io::read_hf_checkpoint(kFixtures / "bert_tiny_base"));
  auto& bert = model->base_model();
  const io::TensorMap ref = io::read_safetensors(kFixtures / "bert_tiny_base" / "ref.safetensors", std::nullopt);
  auto attn_hook = std::make_shared<RecordingHook>();
  auto ffn_hook = std::make_shared<RecordingHook>();
  auto& layer0 = bert.encoder->layers[0];
  layer0->attention->output->sublayer_hooks.push_back(attn_hook);
  layer0->output->sublayer_hooks.push_back(ffn_hook);
  torch::NoGradGuard no_grad;
  BertInputs in = fixture_inputs(ref);
  in.output_hidden_states = true;
  ForwardContext ctx;
  const BertModelOutput out = bert.forward(in, ctx);
  ASSERT_EQ(attn_hook->seen.size(), 1u);
  ASSERT_EQ(ffn_hook->seen.size(), 1u);
  // Attention site: input = the layer's input (embedding output); LayerNorm(output + input) = the FFN's input.
  EXPECT_TRUE(torch::equal(attn_hook->seen[0].first, out.hidden_states[0]));
  const auto attention_output =
      layer0->attention->output->LayerNorm(attn_hook->seen[0].second + attn_hook->seen[0].first);
  EXPECT_TRUE(torch::allclose(ffn_hook->seen[0].first, attention_output));
  // FFN site: LayerNorm(output + input) is the layer's output.
  const auto layer_output = layer0->output->LayerNorm(ffn_hook->seen[0].second + ffn_hook->seen[0].first);
  EXPECT_TRUE(torch::allclose(layer_output, out.hidden_states[1]));
}

TEST(BertSites, PrefixKeysAreVisibleToEveryQuery) {
  auto model = load_bert(io::read_hf_checkpoint(kFixtures / "bert_tiny_base"));
  auto& bert = model->base_model();
  const io::TensorMap ref = io::read_safetensors(kFixtures / "bert_tiny_base" / "ref.safetensors", std::nullopt);
  for (auto& layer : bert.encoder->layers) layer->attention->self->prefix_hooks.push_back(std::make_shared<ZeroPrefix>(4, 3, 16));
  torch::NoGradGuard no_grad;
  BertInputs in = fixture_inputs(ref);
  in.output_attentions = true;
  ForwardContext ctx;
  const BertModelOutput out = bert.forward(in, ctx);
  ASSERT_EQ(out.attentions[0].sizes(), torch::IntArrayRef({2, 4, 10, 13}));
  const auto& probs = out.attentions[0];
  EXPECT_TRUE(torch::allclose(probs.sum(-1), torch::ones({2, 4, 10})));
  // Prefix columns get weight (score 0 against a visible mask) for every query, even in the padded example;
  // padded key columns (example 1, tokens 7..9 -> columns 10..12) get none.
  EXPECT_GT(probs.narrow(-1, 0, 3).min().item<float>(), 0.0f);
  EXPECT_EQ(probs[1].narrow(-1, 10, 3).max().item<float>(), 0.0f);
  // Zero values: the prefix only dilutes attention, so the output differs from the reference.
  EXPECT_FALSE(torch::allclose(out.last_hidden_state, ref.at("last_hidden_state"), 1e-3, 1e-3));
}

TEST(BertDropout, OnlyWhenTraining) {
  auto model = load_bert(io::read_hf_checkpoint(kFixtures / "bert_tiny_base"));
  auto& bert = model->base_model();
  const io::TensorMap ref = io::read_safetensors(kFixtures / "bert_tiny_base" / "ref.safetensors", std::nullopt);
  torch::NoGradGuard no_grad;
  ForwardContext eval_ctx;
  const auto a = bert.forward(fixture_inputs(ref), eval_ctx).last_hidden_state;
  const auto b = bert.forward(fixture_inputs(ref), eval_ctx).last_hidden_state;
  EXPECT_TRUE(torch::equal(a, b));
  ForwardContext train_ctx;
  train_ctx.training = true;
  torch::manual_seed(0);
  const auto c = bert.forward(fixture_inputs(ref), train_ctx).last_hidden_state;
  EXPECT_FALSE(torch::allclose(a, c, 1e-3, 1e-3));
  model->train();  // the module's own flag turns it on as well
  const auto d = bert.forward(fixture_inputs(ref), eval_ctx).last_hidden_state;
  EXPECT_FALSE(torch::allclose(a, d, 1e-3, 1e-3));
}

}  // namespace
}  // namespace peft::bert
