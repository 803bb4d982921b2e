// Adapters on the real T5 implementation (tests/fixtures/t5_tiny, t5v11_tiny): no-op at init against the
// transformers reference logits, merge identities, the prefix identity on a T5Attention, and the exact
// tensor names / config keys Hugging Face PEFT writes.
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <set>

#include "adapters/checkpoint.h"
#include "adapters/inject.h"
#include "adapters/prefix.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/t5/load.h"
#include "toy_model.h"

namespace fs = std::filesystem;
using namespace peft;
using namespace peft::adapters;
using peft::testing::max_diff;
using peft::testing::max_rel_diff;
using peft::testing::randomize;

namespace {

const fs::path kFixtures = fs::path(PEFT_SOURCE_DIR) / "tests" / "fixtures";

struct T5Fixture {
  T5ForConditionalGeneration model{nullptr};
  io::TensorMap ref;
  ModelInfo info;
};

T5Fixture load(const std::string& name) {
  T5Fixture f;
  f.model = load_t5(io::read_hf_checkpoint(kFixtures / name));
  f.model->eval();
  f.ref = io::read_safetensors(kFixtures / name / "ref.safetensors");
  const auto& c = f.model->config();
  f.info = {"t5", c.d_model, c.num_heads, c.d_kv};
  return f;
}

torch::Tensor logits(T5Fixture& f, const ForwardContext& ctx = {}) {
  return f.model
      ->forward(f.ref.at("input_ids"), f.ref.at("attention_mask"), f.ref.at("decoder_input_ids"),
                f.ref.at("decoder_attention_mask"), {}, ctx)
      .logits;
}

fs::path temp_dir(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("peft_t5_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir;
}

}  // namespace

TEST(T5Adapters, FreshLoraIa3AndParallelAreNoOpsAgainstReference) {
  for (const std::string fixture : {"t5_tiny", "t5v11_tiny"}) {
    for (const std::string kind : {"lora", "ia3", "bottleneck"}) {
      T5Fixture f = load(fixture);
      torch::NoGradGuard no_grad;
      torch::Tensor base = logits(f);
      EXPECT_LT(max_diff(base, f.ref.at("logits")), 1e-4) << fixture;
      AdapterSpec s;
      s.kind = kind;
      s.bottleneck.config = "scaled_parallel";
      AdapterSet set = inject(*f.model, s, f.info);
      EXPECT_TRUE(torch::equal(logits(f), base)) << fixture << " " << kind;
    }
  }
}

TEST(T5Adapters, DefaultSitesAndClosedFormCounts) {
  T5Fixture f = load("t5v11_tiny");  // d 64, inner 64, d_ff 128, 2 + 2 layers
  const int64_t total = count_parameters(*f.model).total;
  {
    AdapterSpec s;  // LoRA r 8 on q, k, v, o of enc self, dec self, dec cross: 16 linears of 64 -> 64
    AdapterSet set = inject(*f.model, s, f.info);
    EXPECT_EQ(set.adapters.size(), 24u);
    EXPECT_EQ(set.num_adapter_parameters(), 24 * LoraAdapter::expected_num_parameters(64, 64, 8));
    const ParameterCount c = count_parameters(*f.model);
    EXPECT_EQ(c.trainable, 24 * 8 * 128);
    EXPECT_EQ(c.total, total + c.trainable);
  }
  {
    T5Fixture g = load("t5v11_tiny");
    AdapterSpec s;
    s.kind = "ia3";  // k, v (64 each) in 6 attentions + wo input (128) in 4 FFNs
    AdapterSet set = inject(*g.model, s, g.info);
    EXPECT_EQ(count_parameters(*g.model).trainable, 6 * 2 * 64 + 4 * 128);
    auto params = g.model->named_parameters();
    EXPECT_EQ(params["decoder.block.1.layer.2.DenseReluDense.wo.ia3_l"].sizes(), (std::vector<int64_t>{1, 128}));
    EXPECT_EQ(params["decoder.block.1.layer.1.EncDecAttention.v.ia3_l"].sizes(), (std::vector<int64_t>{64, 1}));
  }
  {
    T5Fixture g = load("t5v11_tiny");
    AdapterSpec s;
    s.kind = "bottleneck";
    s.bottleneck.config = "houlsby";  // self-attention + FFN sub-layers: 4 enc + 4 dec
    AdapterSet set = inject(*g.model, s, g.info);
    EXPECT_EQ(set.site_names(),
              (std::vector<std::string>{"encoder.block.0.layer.0", "encoder.block.0.layer.1", "encoder.block.1.layer.0",
                                        "encoder.block.1.layer.1", "decoder.block.0.layer.0", "decoder.block.0.layer.2",
                                        "decoder.block.1.layer.0", "decoder.block.1.layer.2"}));
    EXPECT_EQ(count_parameters(*g.model).trainable, 8 * BottleneckAdapter::expected_num_parameters(64, 4));
  }
  {
    T5Fixture g = load("t5v11_tiny");
    AdapterSpec s;
    s.kind = "prefix";
    s.prefix.num_virtual_tokens = 5;
    s.prefix.encoder_hidden_size = 32;
    AdapterSet set = inject(*g.model, s, g.info);
    ASSERT_EQ(set.shared.size(), 3u);  // encoder self, decoder self, cross: one generator each
    EXPECT_EQ(set.shared[2].first, "prefix_generator_cross");
    EXPECT_EQ(count_parameters(*g.model).trainable,
              3 * PrefixGeneratorImpl::expected_num_parameters(2, 64, 4, 16, 5, 32));
    set.fold(*g.model);
    EXPECT_EQ(count_parameters(*g.model).trainable, 3 * 2 * 2 * 4 * 5 * 16);  // groups·L·2·h·l·d_kv
  }
}

TEST(T5Adapters, MergedEqualsUnmergedAndUnmergeRestores) {
  for (const std::string kind : {"lora", "ia3"}) {
    T5Fixture f = load("t5v11_tiny");
    AdapterSpec s;
    s.kind = kind;
    if (kind == "lora") s.target_modules = TargetModules::list({"q", "k", "v", "o", "wi_0", "wi_1", "wo"});
    AdapterSet set = inject(*f.model, s, f.info);
    randomize(set.named_trainable_parameters(*f.model));
    torch::NoGradGuard no_grad;
    std::map<std::string, torch::Tensor> before;
    for (const auto& p : f.model->named_parameters()) before[p.key()] = p.value().clone();
    torch::Tensor unmerged = logits(f);
    EXPECT_GT(max_diff(unmerged, f.ref.at("logits")), 1e-3) << kind;
    set.merge();
    // fp32 rounding grows with the values: logits reach ~27 here, so compare relative to the largest logit
    // (measured ~6e-7, i.e. ~1.6e-5 absolute, with every linear adapted; 1e-5 absolute holds on the toy model).
    const double scale = unmerged.abs().max().item<double>();
    const double merged_diff = max_diff(logits(f), unmerged);
    EXPECT_LT(merged_diff / scale, 2e-6) << kind << ", max |logit| " << scale;
    set.unmerge();
    double worst = 0;
    for (const auto& p : f.model->named_parameters()) worst = std::max(worst, max_diff(p.value(), before[p.key()]));
    EXPECT_LT(worst, 1e-5) << kind;
    EXPECT_LT(max_diff(logits(f), unmerged) / scale, 2e-6) << kind;
    std::cout << "[ merge ] " << kind << ": max |logit| " << scale << ", merged-unmerged max |diff| "
              << merged_diff << ", unmerged weights within " << worst << "\n";
  }
}

// Prefix identity of methods.md §6 on a real T5Attention (block 1: no relative bias; T5 has no score scaling):
// per head h and query i, context = (1 − λ)·Attn(q, K, V) + λ·Attn(q, P_k, P_v), then `o`.
TEST(T5Adapters, PrefixIdentityOnT5Attention) {
  T5Fixture f = load("t5_tiny");
  AdapterSpec s;
  s.kind = "prefix";
  s.prefix.num_virtual_tokens = 4;
  s.prefix.encoder_hidden_size = 16;
  AdapterSet set = inject(*f.model, s, f.info);
  randomize(set.named_trainable_parameters(*f.model));
  auto& attention = f.model->encoder->blocks[1]->layer[0]->as<T5LayerSelfAttentionImpl>()->SelfAttention;
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  torch::Tensor x = torch::randn({2, 6, 64});
  ForwardContext ctx;
  T5AttentionOutput out = attention->forward(x, {}, {}, ctx, /*output_attentions=*/true);
  auto pre = attention->prefix_hooks.at(0)->prefix(2, ctx);
  const int64_t h = 4, dk = 16;
  auto heads = [&](const torch::Tensor& t) { return t.view({2, 6, h, dk}).transpose(1, 2); };
  torch::Tensor Q = heads(attention->q->base_forward(x)), K = heads(attention->k->base_forward(x)),
                V = heads(attention->v->base_forward(x));
  torch::Tensor s_p = torch::matmul(Q, pre.first.transpose(-1, -2)), s_k = torch::matmul(Q, K.transpose(-1, -2));
  torch::Tensor lambda = s_p.exp().sum(-1, true) / (s_p.exp().sum(-1, true) + s_k.exp().sum(-1, true));
  torch::Tensor mixed = (1 - lambda) * torch::matmul(torch::softmax(s_k, -1), V) +
                        lambda * torch::matmul(torch::softmax(s_p, -1), pre.second);
  torch::Tensor want = attention->o->base_forward(mixed.transpose(1, 2).reshape({2, 6, h * dk}));
  EXPECT_LT(max_diff(out.hidden_states, want), 1e-5);
  // λ is the attention mass on the prefix positions.
  EXPECT_LT(max_diff(out.weights.narrow(-1, 0, 4).sum(-1, true), lambda), 1e-6);
}

TEST(T5Adapters, LoraFileHasHfPeftNamesAndConfig) {
  auto dir = temp_dir("lora");
  T5Fixture f = load("t5_tiny");
  AdapterSpec s;
  s.kind = "lora";
  s.lora.r = 4;
  s.lora.lora_alpha = 32;
  s.lora.lora_dropout = 0.1;
  s.target_modules = TargetModules::list({"q", "v"});
  s.base_model_name_or_path = "t5_tiny";
  s.task_type = "SEQ_2_SEQ_LM";
  AdapterSet set = inject(*f.model, s, f.info);
  randomize(set.named_trainable_parameters(*f.model));
  save_adapter(dir, *f.model, set);
  std::vector<std::string> names;
  for (const auto& kv : io::read_safetensors_header(dir / "adapter_model.safetensors")) names.push_back(kv.first);
  const std::vector<std::string> hf = {
      "base_model.model.decoder.block.0.layer.0.SelfAttention.q.lora_A.weight",
      "base_model.model.decoder.block.0.layer.0.SelfAttention.q.lora_B.weight",
      "base_model.model.decoder.block.0.layer.0.SelfAttention.v.lora_A.weight",
      "base_model.model.decoder.block.0.layer.0.SelfAttention.v.lora_B.weight",
      "base_model.model.decoder.block.0.layer.1.EncDecAttention.q.lora_A.weight",
      "base_model.model.decoder.block.0.layer.1.EncDecAttention.q.lora_B.weight",
      "base_model.model.decoder.block.0.layer.1.EncDecAttention.v.lora_A.weight",
      "base_model.model.decoder.block.0.layer.1.EncDecAttention.v.lora_B.weight",
      "base_model.model.decoder.block.1.layer.0.SelfAttention.q.lora_A.weight",
      "base_model.model.decoder.block.1.layer.0.SelfAttention.q.lora_B.weight",
      "base_model.model.decoder.block.1.layer.0.SelfAttention.v.lora_A.weight",
      "base_model.model.decoder.block.1.layer.0.SelfAttention.v.lora_B.weight",
      "base_model.model.decoder.block.1.layer.1.EncDecAttention.q.lora_A.weight",
      "base_model.model.decoder.block.1.layer.1.EncDecAttention.q.lora_B.weight",
      "base_model.model.decoder.block.1.layer.1.EncDecAttention.v.lora_A.weight",
      "base_model.model.decoder.block.1.layer.1.EncDecAttention.v.lora_B.weight",
      "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight",
      "base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_B.weight",
      "base_model.model.encoder.block.0.layer.0.SelfAttention.v.lora_A.weight",
      "base_model.model.encoder.block.0.layer.0.SelfAttention.v.lora_B.weight",
      "base_model.model.encoder.block.1.layer.0.SelfAttention.q.lora_A.weight",
      "base_model.model.encoder.block.1.layer.0.SelfAttention.q.lora_B.weight",
      "base_model.model.encoder.block.1.layer.0.SelfAttention.v.lora_A.weight",
      "base_model.model.encoder.block.1.layer.0.SelfAttention.v.lora_B.weight"};
  EXPECT_EQ(names, hf);
  auto header = io::read_safetensors_header(dir / "adapter_model.safetensors");
  EXPECT_EQ(header.at(hf[0]).shape, (std::vector<int64_t>{4, 64}));
  EXPECT_EQ(header.at(hf[1]).shape, (std::vector<int64_t>{64, 4}));
  EXPECT_EQ(header.at(hf[0]).dtype, "F32");

  const nlohmann::json config = io::read_json(dir / "adapter_config.json");
  std::vector<std::string> keys;
  for (const auto& kv : config.items()) keys.push_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"alpha_pattern", "auto_mapping", "base_model_name_or_path", "bias",
                                            "fan_in_fan_out", "inference_mode", "init_lora_weights",
                                            "layers_pattern", "layers_to_transform", "lora_alpha", "lora_dropout",
                                            "modules_to_save", "peft_type", "r", "rank_pattern", "revision",
                                            "target_modules", "task_type"}));
  EXPECT_EQ(config["peft_type"], "LORA");
  EXPECT_EQ(config["r"], 4);
  EXPECT_TRUE(config["lora_alpha"].is_number_integer());
  EXPECT_EQ(config["lora_alpha"], 32);
  EXPECT_EQ(config["lora_dropout"], 0.1);
  EXPECT_EQ(config["target_modules"], nlohmann::json({"q", "v"}));
  EXPECT_EQ(config["bias"], "none");
  EXPECT_EQ(config["fan_in_fan_out"], false);
  EXPECT_EQ(config["task_type"], "SEQ_2_SEQ_LM");
  EXPECT_TRUE(config["modules_to_save"].is_null());

  // Load into a fresh model: identical logits.
  torch::Tensor trained;
  {
    torch::NoGradGuard no_grad;
    trained = logits(f);
  }
  T5Fixture g = load("t5_tiny");
  load_adapter(dir, *g.model, g.info);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(logits(g), trained));
  fs::remove_all(dir);
}

TEST(T5Adapters, Ia3FileHasHfPeftNamesAndConfig) {
  auto dir = temp_dir("ia3");
  T5Fixture f = load("t5_tiny");
  AdapterSpec s;
  s.kind = "ia3";
  AdapterSet set = inject(*f.model, s, f.info);
  save_adapter(dir, *f.model, set);
  auto header = io::read_safetensors_header(dir / "adapter_model.safetensors");
  EXPECT_EQ(header.size(), 6u * 2u + 4u);
  EXPECT_EQ(header.at("base_model.model.encoder.block.0.layer.0.SelfAttention.k.ia3_l").shape,
            (std::vector<int64_t>{64, 1}));
  EXPECT_EQ(header.at("base_model.model.decoder.block.1.layer.2.DenseReluDense.wo.ia3_l").shape,
            (std::vector<int64_t>{1, 128}));
  const nlohmann::json config = io::read_json(dir / "adapter_config.json");
  std::vector<std::string> keys;
  for (const auto& kv : config.items()) keys.push_back(kv.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"auto_mapping", "base_model_name_or_path", "fan_in_fan_out",
                                            "feedforward_modules", "inference_mode", "init_ia3_weights",
                                            "modules_to_save", "peft_type", "revision", "target_modules",
                                            "task_type"}));
  EXPECT_EQ(config["peft_type"], "IA3");
  EXPECT_EQ(config["target_modules"], nlohmann::json({"k", "v", "wo"}));
  EXPECT_EQ(config["feedforward_modules"], nlohmann::json({"wo"}));
  fs::remove_all(dir);
}

TEST(T5Adapters, PromptAndMamRunAndRoundTrip) {
  for (const std::string kind : {"prompt", "mam", "compacter"}) {
    auto dir = temp_dir(kind);
    T5Fixture f = load("t5v11_tiny");
    AdapterSpec s;
    s.kind = kind;
    s.prompt.num_virtual_tokens = 3;
    s.mam.prefix.num_virtual_tokens = 3;
    s.mam.prefix.encoder_hidden_size = 16;
    s.compacter.reduction_factor = 8;  // m = 8
    AdapterSet set = inject(*f.model, s, f.info);
    randomize(set.named_trainable_parameters(*f.model));
    torch::Tensor trained;
    {
      // Gradients reach exactly the adapter parameters.
      auto out = f.model->forward(f.ref.at("input_ids"), f.ref.at("attention_mask"), f.ref.at("decoder_input_ids"),
                                  f.ref.at("decoder_attention_mask"), f.ref.at("labels"), {});
      out.loss.backward();
      std::set<const void*> owned;
      for (const auto& p : set.trainable_parameters(*f.model)) owned.insert(p.unsafeGetTensorImpl());
      for (const auto& p : f.model->named_parameters())
        EXPECT_EQ(p.value().grad().defined(), owned.count(p.value().unsafeGetTensorImpl()) > 0) << kind << " " << p.key();
      torch::NoGradGuard no_grad;
      trained = logits(f);
      EXPECT_GT(max_diff(trained, f.ref.at("logits")), 1e-4) << kind;
    }
    save_adapter(dir, *f.model, set);
    T5Fixture g = load("t5v11_tiny");
    load_adapter(dir, *g.model, g.info);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(logits(g), trained)) << kind;
    fs::remove_all(dir);
  }
}
