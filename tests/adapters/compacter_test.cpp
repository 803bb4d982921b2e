#include <gtest/gtest.h>

#include "adapters/checkpoint.h"
#include "adapters/compacter.h"
#include "adapters/inject.h"
#include "common/error.h"
#include "toy_model.h"

using namespace peft;
using namespace peft::adapters;
using namespace peft::testing;

namespace {
AdapterSpec compacter_spec(bool plus_plus) {
  AdapterSpec s;
  s.kind = "compacter";
  s.compacter.plus_plus = plus_plus;
  s.compacter.reduction_factor = 2;  // m = 8, divisible by n = 4
  return s;
}
}  // namespace

TEST(Compacter, PhmWeightIsSumOfKroneckerProducts) {
  torch::manual_seed(0);
  const int64_t n = 4;
  torch::Tensor C = torch::randn({n, n, n}), Wl = torch::randn({n, 16 / n, 1}), Wr = torch::randn({n, 1, 8 / n});
  torch::Tensor H = torch::zeros({16, 8});
  for (int64_t i = 0; i < n; ++i) H += torch::kron(C[i], torch::matmul(Wl[i], Wr[i]));
  EXPECT_LT(max_diff(phm_weight(C, Wl, Wr), H), 1e-5);
  // n = 1: H = c·W.
  torch::Tensor c = torch::full({1, 1, 1}, 2.5);
  torch::Tensor wl = torch::randn({1, 6, 1}), wr = torch::randn({1, 1, 3});
  EXPECT_LT(max_diff(phm_weight(c, wl, wr), 2.5 * torch::matmul(wl[0], wr[0])), 1e-6);
}

TEST(Compacter, PlacementSharedRuleAndCounts) {
  for (bool pp : {false, true}) {
    ToyModel model(4);
    AdapterSet set = inject(*model, compacter_spec(pp), toy_info());
    EXPECT_EQ(set.adapters.size(), pp ? 2u : 4u);
    auto params = model->named_parameters();
    ASSERT_TRUE(params.contains("compacter_shared.phm_rule"));
    const void* rule = params["compacter_shared.phm_rule"].unsafeGetTensorImpl();
    for (const auto& a : set.adapters) {
      auto c = std::dynamic_pointer_cast<CompacterAdapter>(a);
      EXPECT_EQ(c->adapter_down->phm_rule.unsafeGetTensorImpl(), rule);
      EXPECT_EQ(c->adapter_up->phm_rule.unsafeGetTensorImpl(), rule);
    }
    EXPECT_NEAR(params["compacter_shared.phm_rule"].std().item<double>(), 1e-4, 3e-5);
    // Per adapter 3·d + 3·m (rank-1 factors and biases), plus n³ for the one shared rule.
    EXPECT_EQ(CompacterAdapter::expected_num_parameters(16, 8), 16 + 2 * 8 + 8 + 2 * 16);
    const int64_t expected = static_cast<int64_t>(set.adapters.size()) * (3 * 16 + 3 * 8) + 4 * 4 * 4;
    EXPECT_EQ(set.num_adapter_parameters(), expected);
    EXPECT_EQ(count_parameters(*model).trainable, expected);
  }
}

TEST(Compacter, ForwardIsSequentialPhmBottleneckAndGradientsReachRule) {
  ToyModel model(4);
  auto b = toy_batch();
  AdapterSet set = inject(*model, compacter_spec(true), toy_info());
  auto a = std::dynamic_pointer_cast<CompacterAdapter>(set.adapters[0]);
  torch::Tensor h = torch::randn({2, 3, 16});
  ForwardContext ctx;
  {
    torch::NoGradGuard no_grad;
    auto& d = a->adapter_down;
    auto& u = a->adapter_up;
    torch::Tensor down = torch::matmul(h, phm_weight(d->phm_rule, d->W_left, d->W_right)) + d->b;
    torch::Tensor by_hand = h + torch::matmul(torch::gelu(down), phm_weight(u->phm_rule, u->W_left, u->W_right)) + u->b;
    EXPECT_LT(max_diff(a->apply(h, h, ctx), by_hand), 1e-6);
  }
  model->forward(b.x, b.mask).pow(2).sum().backward();
  for (const auto& p : model->named_parameters()) {
    const bool owned = p.key().find(".adapter.") != std::string::npos || p.key() == "compacter_shared.phm_rule";
    EXPECT_EQ(p.value().grad().defined(), owned) << p.key();
  }
}

TEST(Compacter, IndivisibleSizesFailClearly) {
  ToyModel model(4);
  AdapterSpec s = compacter_spec(true);
  s.compacter.reduction_factor = 8;  // m = 2, not divisible by n = 4
  try {
    inject(*model, s, toy_info());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "compacter phm_dim: 4 must divide both sizes of a PHM layer, got 16 -> 2 (choose another reduction_factor)");
  }
}

TEST(Compacter, SaveLoadIdentical) {
  auto b = toy_batch();
  auto dir = std::filesystem::temp_directory_path() / ("peft_compacter_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  torch::Tensor trained;
  {
    ToyModel model(4);
    AdapterSet set = inject(*model, compacter_spec(false), toy_info());
    randomize(set.named_trainable_parameters(*model));
    torch::NoGradGuard no_grad;
    trained = model->forward(b.x, b.mask);
    save_adapter(dir, *model, set);
  }
  ToyModel fresh(4);
  load_adapter(dir, *fresh, toy_info());
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(fresh->forward(b.x, b.mask), trained));
  std::filesystem::remove_all(dir);
}
