#include <gtest/gtest.h>

#include "adapters/checkpoint.h"
#include "adapters/inject.h"
#include "adapters/prefix.h"
#include "adapters/prompt.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "toy_model.h"

using namespace peft;
using namespace peft::adapters;
using namespace peft::testing;

namespace {
AdapterSpec prefix_spec(int64_t l = 3, int64_t m = 8) {
  AdapterSpec s;
  s.kind = "prefix";
  s.prefix.num_virtual_tokens = l;
  s.prefix.encoder_hidden_size = m;
  return s;
}
// softmax(q·K^T) V over the visible keys, no score scaling (T5).
torch::Tensor attn(const torch::Tensor& q, const torch::Tensor& K, const torch::Tensor& V) {
  return torch::matmul(torch::softmax(torch::matmul(q, K.t()), -1), V);
}
}  // namespace

TEST(Prefix, GeneratorShapesCountsAndNames) {
  ToyModel model(5);
  AdapterSet set = inject(*model, prefix_spec(3, 8), toy_info());
  EXPECT_EQ(set.site_names(), (std::vector<std::string>{"encoder.block.0.layer.0.SelfAttention",
                                                        "encoder.block.1.layer.0.SelfAttention"}));
  auto params = model->named_parameters();
  EXPECT_EQ(params["prefix_generator_encoder.embedding.weight"].sizes(), (std::vector<int64_t>{3, 16}));
  EXPECT_EQ(params["prefix_generator_encoder.transform_2.weight"].sizes(), (std::vector<int64_t>{2 * 2 * 16, 8}));
  // l·d + d·m + m + m·(L·2·h·d_kv) + L·2·h·d_kv with L = 2, h·d_kv = 16.
  const int64_t expected = PrefixGeneratorImpl::expected_num_parameters(2, 16, 4, 4, 3, 8);
  EXPECT_EQ(expected, 3 * 16 + 16 * 8 + 8 + 8 * 64 + 64);
  EXPECT_EQ(count_parameters(*model).trainable, expected);
  auto p = std::dynamic_pointer_cast<PrefixAdapter>(set.adapters[1]);
  ForwardContext ctx;
  auto [k, v] = p->prefix(2, ctx);
  EXPECT_EQ(k.sizes(), (std::vector<int64_t>{2, 4, 3, 4}));
  EXPECT_EQ(ctx.cache.count("prefix_generator_encoder"), 1u);  // evaluated once per forward
}

// He et al.: attention with prefix = (1 − λ)·Attn(q, K, V) + λ·Attn(q, P_k, P_v), per head and query.
TEST(Prefix, UnifiedViewIdentityPerHeadAndQuery) {
  ToyModel model(5);
  AdapterSet set = inject(*model, prefix_spec(3, 8), toy_info());
  randomize(set.named_trainable_parameters(*model));
  auto attention = model->encoder->blocks[0]->attn->SelfAttention;
  torch::NoGradGuard no_grad;
  torch::manual_seed(11);
  torch::Tensor x = torch::randn({2, 5, 16});
  torch::Tensor mask = torch::ones({2, 5}, torch::kLong);
  mask[1][3] = 0;
  mask[1][4] = 0;
  ForwardContext ctx;
  torch::Tensor context;
  attention->forward(x, mask, ctx, &context);  // [B, h, L, d_kv]
  auto [Pk, Pv] = std::dynamic_pointer_cast<PrefixAdapter>(set.adapters[0])->prefix(2, ctx);
  torch::Tensor Q = attention->heads(attention->q->base_forward(x));
  torch::Tensor K = attention->heads(attention->k->base_forward(x));
  torch::Tensor V = attention->heads(attention->v->base_forward(x));
  double worst = 0;
  for (int64_t b = 0; b < 2; ++b) {
    const int64_t visible = mask[b].sum().item<int64_t>();
    for (int64_t h = 0; h < 4; ++h) {
      torch::Tensor Kb = K[b][h].narrow(0, 0, visible), Vb = V[b][h].narrow(0, 0, visible);
      for (int64_t i = 0; i < 5; ++i) {
        torch::Tensor q = Q[b][h][i].unsqueeze(0);
        const double sp = torch::exp(torch::matmul(q, Pk[b][h].t())).sum().item<double>();
        const double sk = torch::exp(torch::matmul(q, Kb.t())).sum().item<double>();
        const double lambda = sp / (sp + sk);
        torch::Tensor want = (1 - lambda) * attn(q, Kb, Vb) + lambda * attn(q, Pk[b][h], Pv[b][h]);
        worst = std::max(worst, max_diff(context[b][h][i].unsqueeze(0), want));
      }
    }
  }
  EXPECT_LT(worst, 1e-5);
}

TEST(Prefix, FoldKeepsOutputsAndOnlyPrefixTensors) {
  ToyModel model(5);
  auto b = toy_batch();
  AdapterSet set = inject(*model, prefix_spec(3, 8), toy_info());
  randomize(set.named_trainable_parameters(*model));
  torch::Tensor before;
  {
    torch::NoGradGuard no_grad;
    before = model->forward(b.x, b.mask);
  }
  set.fold(*model);
  EXPECT_TRUE(set.shared.empty());
  std::vector<std::string> names;
  for (const auto& np : set.named_trainable_parameters(*model)) names.push_back(np.first);
  EXPECT_EQ(names, (std::vector<std::string>{"encoder.block.0.layer.0.SelfAttention.prefix.prefix_key",
                                             "encoder.block.0.layer.0.SelfAttention.prefix.prefix_value",
                                             "encoder.block.1.layer.0.SelfAttention.prefix.prefix_key",
                                             "encoder.block.1.layer.0.SelfAttention.prefix.prefix_value"}));
  EXPECT_EQ(count_parameters(*model).trainable, 2 * 2 * 4 * 3 * 4);  // L·2·h·l·d_kv
  model->forward(b.x, b.mask).sum().backward();
  for (const auto& p : model->named_parameters())
    EXPECT_EQ(p.value().grad().defined(), p.key().find(".prefix.") != std::string::npos) << p.key();
  torch::NoGradGuard no_grad;
  EXPECT_LT(max_diff(model->forward(b.x, b.mask), before), 1e-6);
}

TEST(Prefix, SaveLoadUnfoldedAndFolded) {
  auto b = toy_batch();
  for (bool fold : {false, true}) {
    auto dir = std::filesystem::temp_directory_path() / ("peft_prefix_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    torch::Tensor trained;
    {
      ToyModel model(5);
      AdapterSet set = inject(*model, prefix_spec(3, 8), toy_info());
      randomize(set.named_trainable_parameters(*model));
      if (fold) set.fold(*model);
      torch::NoGradGuard no_grad;
      trained = model->forward(b.x, b.mask);
      save_adapter(dir, *model, set);
    }
    EXPECT_EQ(io::read_json(dir / "adapter_config.json")["folded"], fold);
    ToyModel fresh(5);
    load_adapter(dir, *fresh, toy_info());
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(fresh->forward(b.x, b.mask), trained)) << "folded " << fold;
    std::filesystem::remove_all(dir);
  }
}

TEST(Prompt, PrependsSoftTokensAndExtendsMask) {
  ToyModel model(6);
  AdapterSpec s;
  s.kind = "prompt";
  s.prompt.num_virtual_tokens = 3;
  AdapterSet set = inject(*model, s, toy_info());
  EXPECT_EQ(set.site_names(), std::vector<std::string>{"encoder"});
  EXPECT_EQ(count_parameters(*model).trainable, PromptAdapter::expected_num_parameters(3, 16));
  auto p = std::dynamic_pointer_cast<PromptAdapter>(set.adapters[0]);
  EXPECT_TRUE(model->named_parameters().contains("encoder.prompt.embedding"));
  auto b = toy_batch();
  ForwardContext ctx;
  auto [emb, mask] = p->prepend(b.x, b.mask, ctx);
  EXPECT_EQ(emb.sizes(), (std::vector<int64_t>{2, 8, 16}));
  EXPECT_TRUE(torch::equal(emb.narrow(1, 3, 5), b.x));
  EXPECT_TRUE(torch::equal(emb[1].narrow(0, 0, 3), p->embedding));
  EXPECT_TRUE(torch::equal(mask[1], torch::tensor({1, 1, 1, 1, 1, 1, 1, 0}, torch::kLong)));
  torch::Tensor out = model->forward(b.x, b.mask);
  EXPECT_EQ(out.size(1), 8);
  out.sum().backward();
  for (const auto& np : model->named_parameters())
    EXPECT_EQ(np.value().grad().defined(), np.key() == "encoder.prompt.embedding") << np.key();
}

TEST(Mam, PrefixPlusScaledParallelAdapter) {
  ToyModel model(7);
  auto b = toy_batch();
  AdapterSpec s;
  s.kind = "mam";
  s.mam.prefix.num_virtual_tokens = 2;
  s.mam.prefix.encoder_hidden_size = 8;
  AdapterSet set = inject(*model, s, toy_info());
  ASSERT_EQ(set.adapters.size(), 4u);
  EXPECT_EQ(set.adapters[0]->kind(), "prefix");
  EXPECT_EQ(set.adapters[2]->kind(), "bottleneck");
  auto par = std::dynamic_pointer_cast<BottleneckAdapter>(set.adapters[2]);
  EXPECT_EQ(par->site_name(), "encoder.block.0.layer.1");
  EXPECT_EQ(par->adapter_down->weight.size(0), 8);  // min(512, d/2)
  EXPECT_EQ(par->scaling(), 4.0);
  EXPECT_EQ(par->adapter_up->weight.abs().max().item<float>(), 0.0f);  // lora init
  const int64_t expected = PrefixGeneratorImpl::expected_num_parameters(2, 16, 4, 4, 2, 8) +
                           2 * BottleneckAdapter::expected_num_parameters(16, 8);
  EXPECT_EQ(count_parameters(*model).trainable, expected);
  // Fresh parallel adapters are no-ops: the MAM model equals prefix tuning alone with the same prefixes.
  torch::NoGradGuard no_grad;
  torch::Tensor mam = model->forward(b.x, b.mask);
  for (int i = 0; i < 2; ++i) model->encoder->blocks[i]->ff->sublayer_hooks.clear();
  EXPECT_TRUE(torch::equal(model->forward(b.x, b.mask), mam));
}
