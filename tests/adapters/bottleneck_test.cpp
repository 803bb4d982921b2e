#include <gtest/gtest.h>

#include "adapters/bottleneck.h"
#include "adapters/checkpoint.h"
#include "adapters/inject.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "toy_model.h"

using namespace peft;
using namespace peft::adapters;
using namespace peft::testing;

namespace {
AdapterSpec bn_spec(const std::string& config, int64_t reduction = 4) {
  AdapterSpec s;
  s.kind = "bottleneck";
  s.bottleneck.config = config;
  s.bottleneck.reduction_factor = reduction;
  return s;
}
}  // namespace

TEST(Bottleneck, PlacementAndFreshLoraInitIsNoOp) {
  const std::vector<std::pair<std::string, std::vector<std::string>>> cases = {
      {"houlsby", {"encoder.block.0.layer.0", "encoder.block.0.layer.1", "encoder.block.1.layer.0", "encoder.block.1.layer.1"}},
      {"pfeiffer", {"encoder.block.0.layer.1", "encoder.block.1.layer.1"}},
      {"parallel", {"encoder.block.0.layer.1", "encoder.block.1.layer.1"}},
      {"scaled_parallel", {"encoder.block.0.layer.1", "encoder.block.1.layer.1"}}};
  auto b = toy_batch();
  for (const auto& [config, sites] : cases) {
    ToyModel model(3);
    torch::NoGradGuard no_grad;
    torch::Tensor base = model->forward(b.x, b.mask);
    AdapterSet set = inject(*model, bn_spec(config), toy_info());
    EXPECT_EQ(set.site_names(), sites) << config;
    EXPECT_TRUE(torch::equal(model->forward(b.x, b.mask), base)) << config;
    // Closed form per adapter: 2·d·m + m + d with m = 16/4.
    EXPECT_EQ(BottleneckAdapter::expected_num_parameters(16, 4), 2 * 16 * 4 + 4 + 16);
    EXPECT_EQ(count_parameters(*model).trainable,
              static_cast<int64_t>(sites.size()) * BottleneckAdapter::expected_num_parameters(16, 4))
        << config;
  }
  ToyModel model(3);
  inject(*model, bn_spec("houlsby"), toy_info());
  EXPECT_TRUE(model->named_parameters().contains("encoder.block.0.layer.1.adapter.adapter_down.weight"));
  EXPECT_TRUE(model->named_parameters().contains("encoder.block.1.layer.0.adapter.adapter_up.bias"));
}

TEST(Bottleneck, DefaultsPerConfig) {
  BottleneckOptions o;
  o.config = "houlsby";
  EXPECT_EQ(resolve(o).non_linearity, "swish");
  EXPECT_EQ(*resolve(o).scaling, 1.0);
  o.config = "scaled_parallel";
  EXPECT_EQ(*resolve(o).scaling, 4.0);
  EXPECT_EQ(resolve(o).non_linearity, "relu");
  o.non_linearity = "elu";
  try {
    resolve(o);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "adapter non_linearity: unknown value 'elu', expected relu, swish, silu, gelu, gelu_new or tanh");
  }
}

TEST(Bottleneck, BertInitIsNormal002AndChangesOutput) {
  ToyModel model(3);
  auto b = toy_batch();
  torch::NoGradGuard no_grad;
  torch::Tensor base = model->forward(b.x, b.mask);
  AdapterSpec s = bn_spec("pfeiffer", 1);  // m = 16: enough numbers to check the spread
  s.bottleneck.init = "bert";
  AdapterSet set = inject(*model, s, toy_info());
  auto a = std::dynamic_pointer_cast<BottleneckAdapter>(set.adapters[0]);
  EXPECT_NEAR(a->adapter_down->weight.std().item<double>(), 0.02, 0.006);
  EXPECT_EQ(a->adapter_down->bias.abs().max().item<float>(), 0.0f);
  EXPECT_GT(max_diff(model->forward(b.x, b.mask), base), 1e-6);
}

// Unified view (He et al.): parallel adapter output − base = s·f(z), z = the FFN's (normed) input; s = 0 → base.
TEST(Bottleneck, ParallelAdapterAddsScaledFOfSublayerInput) {
  for (double s : {1.0, 4.0, 0.0}) {
    ToyModel model(3);
    AdapterSpec spec = bn_spec("parallel");
    spec.bottleneck.scaling = s;
    spec.bottleneck.non_linearity = "tanh";
    AdapterSet set = inject(*model, spec, toy_info());
    randomize(set.named_trainable_parameters(*model));
    auto a = std::dynamic_pointer_cast<BottleneckAdapter>(set.adapters[0]);
    auto ff = model->encoder->blocks[0]->ff;
    torch::NoGradGuard no_grad;
    torch::manual_seed(9);
    torch::Tensor x = torch::randn({2, 3, 16});
    ForwardContext ctx;
    torch::Tensor with = ff->forward(x, ctx);
    ff->sublayer_hooks.clear();
    torch::Tensor base = ff->forward(x, ctx);
    torch::Tensor z = rms_norm(x);
    torch::Tensor f = torch::matmul(torch::tanh(torch::matmul(z, a->adapter_down->weight.t()) + a->adapter_down->bias),
                                    a->adapter_up->weight.t()) +
                      a->adapter_up->bias;
    EXPECT_LT(max_diff(with - base, s * f), 1e-5) << "s = " << s;
    if (s == 0.0) {
      EXPECT_TRUE(torch::equal(with, base));
    }
  }
}

TEST(Bottleneck, SequentialAdapterAddsFOfSublayerOutput) {
  ToyModel model(3);
  AdapterSet set = inject(*model, bn_spec("pfeiffer"), toy_info());
  randomize(set.named_trainable_parameters(*model));
  auto a = std::dynamic_pointer_cast<BottleneckAdapter>(set.adapters[0]);
  torch::NoGradGuard no_grad;
  torch::Tensor z = torch::randn({2, 3, 16}), h = torch::randn({2, 3, 16});
  ForwardContext ctx;
  EXPECT_LT(max_diff(a->apply(z, h, ctx), h + a->f(h)), 1e-6);
  torch::Tensor by_hand = torch::matmul(torch::relu(torch::matmul(h, a->adapter_down->weight.t()) + a->adapter_down->bias),
                                        a->adapter_up->weight.t()) + a->adapter_up->bias;
  EXPECT_LT(max_diff(a->f(h), by_hand), 1e-6);
}

TEST(Bottleneck, GradientsSaveLoadAndNoMerge) {
  auto b = toy_batch();
  auto dir = std::filesystem::temp_directory_path() / ("peft_bn_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  torch::Tensor trained;
  {
    ToyModel model(3);
    AdapterSet set = inject(*model, bn_spec("houlsby"), toy_info());
    randomize(set.named_trainable_parameters(*model));
    model->forward(b.x, b.mask).sum().backward();
    for (const auto& p : model->named_parameters())
      EXPECT_EQ(p.value().grad().defined(), p.key().find(".adapter.") != std::string::npos) << p.key();
    EXPECT_THROW(set.merge(), InputError);
    torch::NoGradGuard no_grad;
    trained = model->forward(b.x, b.mask);
    save_adapter(dir, *model, set);
  }
  auto config = io::read_json(dir / "adapter_config.json");
  EXPECT_EQ(config["peft_type"], "BOTTLENECK");
  EXPECT_EQ(config["format_version"], 1);
  EXPECT_EQ(config["non_linearity"], "swish");
  ToyModel fresh(3);
  load_adapter(dir, *fresh, toy_info());
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(fresh->forward(b.x, b.mask), trained));
  std::filesystem::remove_all(dir);
}
