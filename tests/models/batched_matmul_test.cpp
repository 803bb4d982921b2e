// batched_matmul (strided sgemm per matrix, custom backward) against torch::matmul: values and gradients, for
// the views attention and Poly/MHR pass it.
#include "models/batched_matmul.h"

#include <gtest/gtest.h>

#include "common/threads.h"

namespace peft {
namespace {

// [B, n, h * d] -> [B, h, n, d]: the heads of a projection, a strided view.
torch::Tensor heads_view(const torch::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
}

// Values and the gradients of both operands equal torch::matmul's (through the same views).
void expect_matches_matmul(const torch::Tensor& a_leaf, const torch::Tensor& b_leaf,
                           const std::function<torch::Tensor(const torch::Tensor&)>& view_a,
                           const std::function<torch::Tensor(const torch::Tensor&)>& view_b, bool heads_inner,
                           const std::string& what) {
  auto a1 = a_leaf.detach().clone().requires_grad_(true), b1 = b_leaf.detach().clone().requires_grad_(true);
  auto a2 = a_leaf.detach().clone().requires_grad_(true), b2 = b_leaf.detach().clone().requires_grad_(true);
  auto ours = batched_matmul(view_a(a1), view_b(b1), heads_inner);
  auto ref = torch::matmul(view_a(a2), view_b(b2));
  ASSERT_EQ(ours.sizes(), ref.sizes()) << what;
  EXPECT_TRUE(torch::allclose(ours, ref, 1e-5, 1e-5)) << what;
  auto weight = torch::randn(ref.sizes());  // a loss that weighs every output differently
  (ours * weight).sum().backward();
  (ref * weight).sum().backward();
  EXPECT_TRUE(torch::allclose(a1.grad(), a2.grad(), 1e-4, 1e-5)) << what << ": grad of a";
  EXPECT_TRUE(torch::allclose(b1.grad(), b2.grad(), 1e-4, 1e-5)) << what << ": grad of b";
}

TEST(BatchedMatmul, AttentionProductsMatchMatmulWithGradients) {
  torch::manual_seed(0);
  ASSERT_TRUE(batched_matmul_uses_blas(torch::ones({1, 1, 1}), torch::ones({1, 1, 1})));
  auto id = [](const torch::Tensor& t) { return t; };
  for (int threads : {1, 2}) {
    set_cpu_threads(threads);
    const int64_t batch = 3, heads = 4, d = 8;
    for (auto [nq, nk] : {std::pair<int64_t, int64_t>{5, 7}, {1, 6}, {6, 1}}) {
      const std::string shape = "nq " + std::to_string(nq) + " nk " + std::to_string(nk);
      auto q = torch::randn({batch, nq, heads * d}), k = torch::randn({batch, nk, heads * d});
      // scores = Q K^T: both operands are head views of projections, K read transposed.
      expect_matches_matmul(
          q, k, [&](const torch::Tensor& t) { return heads_view(t, heads); },
          [&](const torch::Tensor& t) { return heads_view(t, heads).transpose(2, 3); }, false, "scores " + shape);
      // context = P V, stored heads-inner for the output projection.
      auto p = torch::randn({batch, heads, nq, nk});
      auto v = torch::randn({batch, nk, heads * d});
      for (bool inner : {false, true})
        expect_matches_matmul(
            p, v, id, [&](const torch::Tensor& t) { return heads_view(t, heads); }, inner,
            "context " + shape + (inner ? " heads-inner" : ""));
    }
  }
  set_cpu_threads(1);
}

TEST(BatchedMatmul, ThreeDimensionalPerExampleFactorsMatchBmm) {
  torch::manual_seed(1);
  auto id = [](const torch::Tensor& t) { return t; };
  auto t = [](const torch::Tensor& x) { return x.transpose(1, 2); };
  auto x = torch::randn({4, 9, 12}), a = torch::randn({4, 12, 3});
  expect_matches_matmul(x, a, id, id, false, "x a");
  expect_matches_matmul(x, torch::randn({4, 3, 12}), id, t, false, "x a^T");  // transposed operand
  expect_matches_matmul(torch::randn({4, 12, 9}), a, t, id, false, "x^T a");
  // An expanded operand (stride 0 over the batch) is copied, then multiplied.
  auto shared = torch::randn({1, 12, 3});
  expect_matches_matmul(x, shared, id, [](const torch::Tensor& s) { return s.expand({4, 12, 3}); }, false, "expanded");
}

TEST(BatchedMatmul, HeadsInnerResultIsAFreeTransposeOfTheProjectionLayout) {
  auto p = torch::randn({2, 3, 4, 5}), v = torch::randn({2, 3, 5, 6});
  auto out = batched_matmul(p, v, /*heads_inner=*/true);
  EXPECT_TRUE(out.transpose(1, 2).is_contiguous());  // [B, M, H, N] in memory
  EXPECT_TRUE(torch::allclose(out, torch::matmul(p, v), 1e-5, 1e-5));
}

TEST(BatchedMatmul, EmptyInnerDimensionGivesZeros) {
  auto out = batched_matmul(torch::randn({2, 3, 0}), torch::randn({2, 0, 4}));
  EXPECT_TRUE(torch::equal(out, torch::zeros({2, 3, 4})));
}

TEST(BatchedMatmul, RejectsMismatchedShapes) {
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({3, 4, 5})), c10::Error);
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({2, 5, 5})), c10::Error);
  EXPECT_THROW(batched_matmul(torch::randn({2, 3, 4}), torch::randn({2, 4, 5}), /*heads_inner=*/true), c10::Error);
}

TEST(BatchedMatmul, OtherDtypesFallBackToMatmul) {
  auto a = torch::randn({2, 3, 4}, torch::kDouble), b = torch::randn({2, 4, 5}, torch::kDouble);
  EXPECT_FALSE(batched_matmul_uses_blas(a, b));
  EXPECT_TRUE(torch::allclose(batched_matmul(a, b), torch::matmul(a, b)));
}

}  // namespace
}  // namespace peft
