// skinny_linear (the decoding-time linear for a few rows) against torch's linear, and when it applies.
#include "models/skinny_linear.h"

#include <gtest/gtest.h>

#include "common/threads.h"

namespace peft {
namespace {

TEST(SkinnyLinear, MatchesTorchLinearForEveryRowCountAndTail) {
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  for (int threads : {1, 2}) {
    set_cpu_threads(threads);
    for (int64_t rows = 1; rows <= kSkinnyMaxRows; ++rows)
      for (int64_t k : {8, 13, 24, 100, 512})  // 24: a lone 8-chunk after the 16-float steps; 13, 100: a tail
        for (int64_t n : {1, 64, 300, 2048}) {
          auto x = torch::randn({rows, k});
          auto w = torch::randn({n, k});
          auto b = torch::randn({n});
          ASSERT_TRUE(skinny_linear_applies(x, w));
          EXPECT_TRUE(torch::allclose(skinny_linear(x, w, b), torch::nn::functional::linear(x, w, b), 1e-4, 1e-4))
              << rows << " x " << k << " -> " << n << ", " << threads << " threads";
          EXPECT_TRUE(torch::allclose(skinny_linear(x, w, {}), torch::nn::functional::linear(x, w), 1e-4, 1e-4));
        }
  }
  set_cpu_threads(1);
}

TEST(SkinnyLinear, KeepsLeadingDimsAndReadsNonContiguousInput) {
  torch::NoGradGuard no_grad;
  auto x = torch::randn({16, 2, 4}).transpose(0, 2);  // [4, 2, 16], not contiguous, 8 rows
  auto w = torch::randn({40, 16});
  ASSERT_TRUE(skinny_linear_applies(x, w));
  auto y = skinny_linear(x, w, {});
  ASSERT_EQ(y.sizes(), (std::vector<int64_t>{4, 2, 40}));
  EXPECT_TRUE(torch::allclose(y, torch::nn::functional::linear(x, w), 1e-5, 1e-5));
}

TEST(SkinnyLinear, AppliesOnlyToFewFloatRowsWithoutAutograd) {
  auto w = torch::randn({32, 16});
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(skinny_linear_applies(torch::randn({kSkinnyMaxRows + 1, 16}), w));  // sgemm is faster there
    EXPECT_FALSE(skinny_linear_applies(torch::randn({2, 16}, torch::kDouble), w));
    EXPECT_FALSE(skinny_linear_applies(torch::randn({2, 16}), torch::randn({16, 32}).t()));  // W not contiguous
  }
  EXPECT_TRUE(skinny_linear_applies(torch::randn({2, 16}), w));  // nothing needs a gradient
  EXPECT_FALSE(skinny_linear_applies(torch::randn({2, 16}, torch::requires_grad()), w));
  EXPECT_FALSE(skinny_linear_applies(torch::randn({2, 16}), w.clone().requires_grad_(true)));
}

}  // namespace
}  // namespace peft
