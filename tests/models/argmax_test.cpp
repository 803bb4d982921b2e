// argmax_last_dim (greedy decoding's pick) against torch's argmax: ties, NaN, infinities and row lengths around
// the kernel's 8- and 16-float steps.
#include "models/argmax.h"

#include <gtest/gtest.h>

#include <limits>

namespace peft {
namespace {

void expect_same_as_torch(const torch::Tensor& logits, const std::string& what) {
  const torch::Tensor got = argmax_last_dim(logits), want = logits.argmax(-1);
  ASSERT_EQ(got.scalar_type(), torch::kLong) << what;
  ASSERT_EQ(got.sizes(), want.sizes()) << what;
  EXPECT_TRUE(torch::equal(got, want)) << what << ": " << got << " vs " << want;
}

TEST(ArgmaxLastDim, MatchesTorchForEveryLengthAroundTheVectorSteps) {
  torch::manual_seed(0);
  for (int64_t n : {8, 9, 15, 16, 17, 31, 32, 33, 100, 32128})
    expect_same_as_torch(torch::randn({8, n}), "n = " + std::to_string(n));
  expect_same_as_torch(torch::randn({2, 3, 40}), "3-D");
  expect_same_as_torch(torch::randn({40, 2}).t(), "non-contiguous");
  expect_same_as_torch(torch::randn({5}), "shorter than a vector");
}

TEST(ArgmaxLastDim, TiesNanAndInfinitiesAsTorch) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (int64_t n : {8, 20, 37}) {
    for (int64_t first = 0; first < n; first += 3)
      for (int64_t second : {first, n - 1}) {
        torch::Tensor tie = torch::zeros({1, n});
        tie[0][first] = 2;
        tie[0][second] = 2;  // the first of the two wins
        expect_same_as_torch(tie, "tie at " + std::to_string(first) + ", " + std::to_string(second));
        torch::Tensor with_nan = torch::randn({1, n});
        with_nan[0][second] = nan;
        with_nan[0][first] = nan;  // the first NaN wins over every number
        expect_same_as_torch(with_nan, "NaN at " + std::to_string(first));
      }
    expect_same_as_torch(torch::full({1, n}, -inf), "all -inf");
    torch::Tensor pos_inf = torch::randn({1, n});
    pos_inf[0][n - 1] = inf;
    expect_same_as_torch(pos_inf, "+inf last");
  }
}

}  // namespace
}  // namespace peft
