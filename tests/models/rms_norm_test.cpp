// rms_norm (the fused T5 layer norm) against Hugging Face's formula written with LibTorch ops: values and
// the gradients of input and weight.
#include "models/rms_norm.h"

#include <gtest/gtest.h>

namespace peft {
namespace {

torch::Tensor reference(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  return weight * (x * torch::rsqrt(x.pow(2).mean(-1, /*keepdim=*/true) + eps));
}

TEST(RmsNorm, MatchesTheHfFormulaWithGradients) {
  torch::manual_seed(0);
  for (int64_t n : {8, 13, 512}) {  // 13: a tail after the 8-float chunk
    auto x = torch::randn({3, 5, n}) * 2, w = torch::rand({n}) + 0.5, g = torch::randn({3, 5, n});
    auto x1 = x.clone().requires_grad_(true), w1 = w.clone().requires_grad_(true);
    auto x2 = x.clone().requires_grad_(true), w2 = w.clone().requires_grad_(true);
    auto ours = rms_norm(x1, w1, 1e-6);
    auto want = reference(x2, w2, 1e-6);
    EXPECT_TRUE(torch::allclose(ours, want, 1e-5, 1e-6)) << "n " << n;
    (ours * g).sum().backward();
    (want * g).sum().backward();
    EXPECT_TRUE(torch::allclose(x1.grad(), x2.grad(), 1e-4, 1e-5)) << "n " << n;
    EXPECT_TRUE(torch::allclose(w1.grad(), w2.grad(), 1e-4, 1e-5)) << "n " << n;
  }
}

TEST(RmsNorm, FrozenWeightGetsNoGradientAndNonContiguousInputWorks) {
  auto x = torch::randn({16, 6}).t().requires_grad_(true);  // [6, 16], not contiguous
  auto w = torch::rand({16});
  auto y = rms_norm(x, w, 1e-6);
  EXPECT_TRUE(torch::allclose(y, reference(x.detach(), w, 1e-6), 1e-5, 1e-6));
  y.sum().backward();
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
}

TEST(RmsNorm, OtherDtypesUseTheLibTorchFormula) {
  auto x = torch::randn({4, 8}, torch::kDouble), w = torch::rand({8}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(rms_norm(x, w, 1e-6), reference(x, w, 1e-6)));
}

}  // namespace
}  // namespace peft
