// peft::dropout: the counter-based CPU mask behaves as torch.nn.functional.dropout (rate, scale, gradient,
// identity when off) and is reproduced by the torch RNG state, which checkpoints save for exact resume.
#include <gtest/gtest.h>

#include "models/dropout.h"

#include "common/threads.h"

namespace peft {
namespace {

TEST(Dropout, DropsTheRequestedFractionAndScalesTheRest) {
  torch::manual_seed(3);
  const double p = 0.1;
  auto x = torch::rand({1 << 20}) + 0.5;  // no zeros, so a zero output means a dropped element
  auto y = peft::dropout(x, p, /*training=*/true);
  const auto dropped = (y == 0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(dropped, p, 0.002);  // ~5 standard deviations at n = 2^20
  auto kept = y != 0;
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), x.masked_select(kept) / (1 - p), 1e-6, 0));
  // Expectation preserved (unbiased), as inverted dropout promises.
  EXPECT_NEAR(y.mean().item<double>(), x.mean().item<double>(), 0.002);
}

TEST(Dropout, MasksOfNeighbouringElementsAreIndependent) {
  torch::manual_seed(4);
  auto y = peft::dropout(torch::ones({1 << 20}), 0.5, true) != 0;
  auto a = y.slice(0, 0, -1).to(torch::kDouble), b = y.slice(0, 1).to(torch::kDouble);
  const double joint = (a * b).mean().item<double>();  // P(both kept) = 0.25 when independent
  EXPECT_NEAR(joint, 0.25, 0.003);
  auto even = y.slice(0, 0, c10::nullopt, 2).to(torch::kDouble), odd = y.slice(0, 1, c10::nullopt, 2).to(torch::kDouble);
  EXPECT_NEAR((even * odd).mean().item<double>(), 0.25, 0.004);  // the two halves of one hash
}

TEST(Dropout, SameRngStateSameMaskAndSuccessiveCallsDiffer) {
  auto x = torch::ones({4096});
  torch::manual_seed(7);
  auto first = peft::dropout(x, 0.3, true);
  auto second = peft::dropout(x, 0.3, true);
  torch::manual_seed(7);
  auto again = peft::dropout(x, 0.3, true);
  EXPECT_TRUE(torch::equal(first, again));
  EXPECT_FALSE(torch::equal(first, second));
}

TEST(Dropout, GradientIsTheSameMaskAndScale) {
  torch::manual_seed(5);
  auto x = (torch::rand({37, 53}) + 0.5).requires_grad_(true);
  auto y = peft::dropout(x, 0.25, true);
  auto g = torch::randn({37, 53});
  (y * g).sum().backward();
  // dy/dx is diagonal: 1/(1-p) where kept, 0 where dropped.
  auto expected = torch::where(y != 0, g / 0.75, torch::zeros_like(g));
  EXPECT_TRUE(torch::allclose(x.grad(), expected, 1e-6, 1e-7));
}

TEST(Dropout, NonContiguousInputKeepsItsValues) {
  torch::manual_seed(6);
  auto x = torch::rand({64, 32}) + 0.5;
  auto y = peft::dropout(x.t(), 0.2, true);
  ASSERT_EQ(y.sizes(), x.t().sizes());
  auto kept = y != 0;
  EXPECT_TRUE(torch::allclose(y.masked_select(kept), x.t().masked_select(kept) / 0.8, 1e-6, 0));
}

TEST(Dropout, IdentityWhenNotTrainingOrRateZero) {
  auto x = torch::randn({10, 10});
  EXPECT_TRUE(torch::equal(peft::dropout(x, 0.5, false), x));
  EXPECT_TRUE(torch::equal(peft::dropout(x, 0.0, true), x));
  EXPECT_TRUE(torch::equal(peft::dropout(x, 1.0, true), torch::zeros_like(x)));
}

TEST(Dropout, OtherDtypesFallBackToTorch) {
  torch::manual_seed(8);
  auto x = torch::ones({1 << 16}, torch::kDouble);
  auto y = peft::dropout(x, 0.5, true);
  EXPECT_EQ(y.scalar_type(), torch::kDouble);
  EXPECT_NEAR((y == 0).to(torch::kDouble).mean().item<double>(), 0.5, 0.01);
}

TEST(Dropout, MaskDoesNotDependOnTheThreadCount) {
  auto x = torch::ones({(1 << 18) + 3});  // large enough to be split, odd length
  set_cpu_threads(1);
  torch::manual_seed(9);
  auto one = peft::dropout(x, 0.3, true);
  set_cpu_threads(2);
  torch::manual_seed(9);
  auto two = peft::dropout(x, 0.3, true);
  set_cpu_threads(1);
  EXPECT_TRUE(torch::equal(one, two));
}

TEST(Dropout, VectorisedMaskKernelEqualsTheScalarReferenceBitForBit) {
  torch::manual_seed(12);
  for (int64_t n : {0, 1, 2, 7, 8, 9, 15, 16, 17, 31, 1000, 4099}) {
    auto x = torch::randn({n});
    if (n > 4) x[3] = 0.0f, x[4] = -0.0f;
    for (double p : {0.1, 0.5, 0.9}) {
      for (bool relu : {false, true}) {
        auto y_ref = torch::empty({n}), y_vec = torch::full({n}, 42.0f);
        auto keep_ref = torch::empty({n}, torch::kByte), keep_vec = torch::full({n}, 7, torch::kByte);
        const uint64_t seed = 0x0123456789ABCDEFULL + static_cast<uint64_t>(n);
        dropout_mask_kernel(x.data_ptr<float>(), y_ref.data_ptr<float>(), keep_ref.data_ptr<uint8_t>(), n, p, seed,
                            relu, /*vectorised=*/false);
        dropout_mask_kernel(x.data_ptr<float>(), y_vec.data_ptr<float>(), keep_vec.data_ptr<uint8_t>(), n, p, seed,
                            relu, /*vectorised=*/true);
        const std::string where = "n " + std::to_string(n) + " p " + std::to_string(p) + " relu " + std::to_string(relu);
        EXPECT_TRUE(torch::equal(keep_ref, keep_vec)) << where;
        // Bit patterns, so -0.0 and 0.0 differ.
        EXPECT_TRUE(torch::equal(y_ref.view(torch::kInt), y_vec.view(torch::kInt))) << where;
        if (n > 0) {
          EXPECT_TRUE(torch::allclose(y_ref, x * keep_ref.to(torch::kFloat) / (1 - p), 1e-6, 0)) << where;
        }
      }
    }
  }
}

TEST(ReluDropout, EqualsDropoutOfReluWithTheSameRngStateValuesAndGradient) {
  for (int threads : {1, 2}) {
    set_cpu_threads(threads);
    auto x = torch::randn({300, 257});
    x.index_put_({0, torch::indexing::Slice(0, 10)}, 0.0);  // relu'(0) = 0, as torch's threshold_backward
    auto x1 = x.clone().requires_grad_(true), x2 = x.clone().requires_grad_(true);
    torch::manual_seed(11);
    auto fused = peft::relu_dropout(x1, 0.1, true);
    torch::manual_seed(11);
    auto plain = peft::dropout(torch::relu(x2), 0.1, true);
    EXPECT_TRUE(torch::equal(fused, plain)) << threads << " threads";
    auto g = torch::randn(x.sizes());
    (fused * g).sum().backward();
    (plain * g).sum().backward();
    EXPECT_TRUE(torch::equal(x1.grad(), x2.grad())) << threads << " threads";
  }
  set_cpu_threads(1);
  auto x = torch::randn({5, 7});
  EXPECT_TRUE(torch::equal(peft::relu_dropout(x, 0.1, /*training=*/false), torch::relu(x)));
  EXPECT_TRUE(torch::equal(peft::relu_dropout(x, 0.0, true), torch::relu(x)));
}

}  // namespace
}  // namespace peft
