#include <gtest/gtest.h>

#include "adapters/ia3.h"
#include "adapters/inject.h"
#include "toy_model.h"

using namespace peft;
using namespace peft::adapters;
using namespace peft::testing;

namespace {
AdapterSpec ia3_spec() {
  AdapterSpec s;
  s.kind = "ia3";
  return s;
}
}  // namespace

TEST(Ia3, DefaultsScaleKeysValuesAndFfnInput) {
  ToyModel model(2);
  auto b = toy_batch();
  torch::NoGradGuard no_grad;
  torch::Tensor base = model->forward(b.x, b.mask);
  AdapterSet set = inject(*model, ia3_spec(), toy_info());
  EXPECT_EQ(set.site_names(), (std::vector<std::string>{"encoder.block.0.layer.0.SelfAttention.k",
                                                        "encoder.block.0.layer.0.SelfAttention.v",
                                                        "encoder.block.0.layer.1.DenseReluDense.wo",
                                                        "encoder.block.1.layer.0.SelfAttention.k",
                                                        "encoder.block.1.layer.0.SelfAttention.v",
                                                        "encoder.block.1.layer.1.DenseReluDense.wo"}));
  auto params = model->named_parameters();
  EXPECT_EQ(params["encoder.block.0.layer.0.SelfAttention.k.ia3_l"].sizes(), (std::vector<int64_t>{16, 1}));
  EXPECT_EQ(params["encoder.block.0.layer.1.DenseReluDense.wo.ia3_l"].sizes(), (std::vector<int64_t>{1, 32}));
  EXPECT_TRUE(torch::equal(model->forward(b.x, b.mask), base));  // init ones
  // Closed form: d_out per k/v, d_ff per wo.
  EXPECT_EQ(set.num_adapter_parameters(), 2 * (2 * Ia3Adapter::expected_num_parameters(16, 16, false) +
                                               Ia3Adapter::expected_num_parameters(32, 16, true)));
  EXPECT_EQ(count_parameters(*model).trainable, 2 * (16 + 16 + 32));
}

TEST(Ia3, ScalingIsOutputForKvAndInputForWo) {
  ToyModel model(2);
  AdapterSet set = inject(*model, ia3_spec(), toy_info());
  randomize(set.named_trainable_parameters(*model));
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  ForwardContext ctx;
  auto k = model->encoder->blocks[0]->attn->SelfAttention->k;
  torch::Tensor x = torch::randn({3, 16});
  auto lk = std::dynamic_pointer_cast<Ia3Adapter>(set.adapters[0])->ia3_l;
  EXPECT_LT(max_diff(k->forward(x, ctx), k->base_forward(x) * lk.flatten()), 1e-6);
  auto wo = model->encoder->blocks[0]->ff->DenseReluDense->wo;
  torch::Tensor h = torch::randn({3, 32});
  auto lwo = std::dynamic_pointer_cast<Ia3Adapter>(set.adapters[2])->ia3_l;
  EXPECT_LT(max_diff(wo->forward(h, ctx), wo->base_forward(h * lwo.flatten())), 1e-6);
}

TEST(Ia3, MergeEqualsUnmergedAndUnmergeRestoresW) {
  ToyModel model(2);
  auto b = toy_batch();
  AdapterSet set = inject(*model, ia3_spec(), toy_info());
  randomize(set.named_trainable_parameters(*model));
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> W0;
  for (const auto& p : model->named_parameters())
    if (p.key().find("ia3") == std::string::npos) W0.push_back(p.value().clone());
  torch::Tensor unmerged = model->forward(b.x, b.mask);
  set.merge();
  EXPECT_LT(max_diff(model->forward(b.x, b.mask), unmerged), 1e-5);
  set.unmerge();
  size_t i = 0;
  for (const auto& p : model->named_parameters())
    if (p.key().find("ia3") == std::string::npos) {
      EXPECT_LT(max_diff(p.value(), W0[i++]), 1e-5) << p.key();
    }
  EXPECT_LT(max_diff(model->forward(b.x, b.mask), unmerged), 1e-5);
}

TEST(Ia3, MergeScalesBiasOfOutputScaledLinear) {
  AdaptableLinear lin(4, 3, true);
  auto a = std::make_shared<Ia3Adapter>("lin", lin, false);
  a->attach(*lin, a);
  {
    torch::NoGradGuard no_grad;
    a->ia3_l.copy_(torch::tensor({0.5f, 2.0f, 3.0f}).view({3, 1}));
  }
  ForwardContext ctx;
  torch::NoGradGuard no_grad;
  torch::Tensor x = torch::randn({2, 4});
  torch::Tensor y = lin->forward(x, ctx);
  torch::Tensor b0 = lin->bias.clone();
  a->merge();
  EXPECT_LT(max_diff(lin->bias, b0 * torch::tensor({0.5f, 2.0f, 3.0f})), 1e-7);
  EXPECT_LT(max_diff(lin->forward(x, ctx), y), 1e-6);
}

TEST(Ia3, GradientsReachOnlyIa3Vectors) {
  ToyModel model(2);
  auto b = toy_batch();
  AdapterSet set = inject(*model, ia3_spec(), toy_info());
  model->forward(b.x, b.mask).pow(2).sum().backward();
  for (const auto& p : model->named_parameters()) {
    const bool owned = p.key().find(".ia3_l") != std::string::npos;
    EXPECT_EQ(p.value().grad().defined(), owned) << p.key();
    if (owned) {
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
  }
}
