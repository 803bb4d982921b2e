// routed_lowrank_update (Poly/MHR's per-example low-rank kernel) and routed_lowrank_linear (the same fused with
// the frozen base linear, which LoRA uses too) against the formula in torch ops: values and the gradients of every
// operand, over shapes that hit each vector loop and tail, and the same bits on 1 and 2 threads.
#include "models/routed_lowrank.h"

#include <gtest/gtest.h>

#include "common/threads.h"
#include "models/skinny_linear.h"

namespace peft {
namespace {

struct Shape {
  int64_t examples, len, d_in, d_out, rank, tasks;
};

// y + s (x_i A_t) B_t with A_t = a_t[t]^T, gathered per example.
torch::Tensor formula(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& a_t, const torch::Tensor& b,
                      const torch::Tensor& index, double scale) {
  const auto a_rows = a_t.index_select(0, index).transpose(1, 2), b_rows = b.index_select(0, index);
  return y + torch::matmul(torch::matmul(x, a_rows), b_rows) * scale;
}

struct Result {
  torch::Tensor out;
  std::vector<torch::Tensor> grads;  // y, x, a_t, b
};

Result run(bool kernel, const std::vector<torch::Tensor>& leaves_in, const torch::Tensor& index, double scale,
           const torch::Tensor& weight, bool x_grad) {
  std::vector<torch::Tensor> leaves;
  for (size_t i = 0; i < leaves_in.size(); ++i)
    leaves.push_back(leaves_in[i].detach().clone().requires_grad_(i != 1 || x_grad));
  const auto& [y, x, a_t, b] = std::tie(leaves[0], leaves[1], leaves[2], leaves[3]);
  Result r;
  r.out = kernel ? routed_lowrank_update(y, x, a_t, b, index, scale) : formula(y, x, a_t, b, index, scale);
  (r.out * weight).sum().backward();  // a loss that weighs every output differently
  for (const auto& leaf : leaves) r.grads.push_back(leaf.grad());
  return r;
}

TEST(RoutedLowRank, MatchesTheFormulaWithGradients) {
  const std::vector<Shape> shapes = {
      {4, 5, 12, 8, 4, 3},     // tails: d_in 12 = 8 + 4, d_out one vector, two column pairs of the rank
      {3, 9, 40, 24, 3, 2},    // odd rank (one column left), rows 9 = 2 x 4 + 1, d_out 16 + 8
      {8, 16, 64, 48, 16, 4},  // the shape of a real step at small width
      {5, 1, 33, 17, 1, 5},    // one row per example (decoding), rank 1, scalar tails on both sides
  };
  for (const Shape& s : shapes) {
    SCOPED_TRACE("examples " + std::to_string(s.examples) + " len " + std::to_string(s.len) + " d_in " +
                 std::to_string(s.d_in) + " d_out " + std::to_string(s.d_out) + " rank " + std::to_string(s.rank));
    torch::manual_seed(3);
    const std::vector<torch::Tensor> leaves = {
        torch::randn({s.examples, s.len, s.d_out}), torch::randn({s.examples, s.len, s.d_in}),
        torch::randn({s.tasks, s.rank, s.d_in}), torch::randn({s.tasks, s.rank, s.d_out})};
    const auto index = torch::randint(s.tasks, {s.examples}, torch::kLong);
    const auto weight = torch::randn({s.examples, s.len, s.d_out});
    const double scale = 1.0 / static_cast<double>(s.rank);
    ASSERT_TRUE(routed_lowrank_applies(leaves[0], leaves[1], leaves[2], leaves[3]));
    const Result ref = run(false, leaves, index, scale, weight, true);
    for (int threads : {1, 2}) {
      set_cpu_threads(threads);
      const Result ours = run(true, leaves, index, scale, weight, true);
      EXPECT_TRUE(torch::allclose(ours.out, ref.out, 1e-4, 1e-5)) << threads << " threads: output";
      const char* names[] = {"y", "x", "a_t", "b"};
      for (size_t i = 0; i < 4; ++i)
        EXPECT_TRUE(torch::allclose(ours.grads[i], ref.grads[i], 1e-4, 1e-4))
            << threads << " threads: grad of " << names[i];
      // Gradients summed per example, then per task in example order: the thread count changes no bit.
      if (threads == 2) {
        set_cpu_threads(1);
        const Result one = run(true, leaves, index, scale, weight, true);
        EXPECT_TRUE(torch::equal(ours.out, one.out));
        for (size_t i = 0; i < 4; ++i) EXPECT_TRUE(torch::equal(ours.grads[i], one.grads[i])) << names[i];
      }
    }
    set_cpu_threads(1);
  }
}

TEST(RoutedLowRank, InputWithoutGradientGetsNone) {
  // The first adapted layer's input is a frozen embedding: no gradient is computed for it.
  torch::manual_seed(4);
  const std::vector<torch::Tensor> leaves = {torch::randn({2, 3, 8}), torch::randn({2, 3, 16}),
                                             torch::randn({2, 4, 16}), torch::randn({2, 4, 8})};
  const auto index = torch::tensor({1, 0}, torch::kLong);
  const auto weight = torch::randn({2, 3, 8});
  const Result ours = run(true, leaves, index, 0.25, weight, /*x_grad=*/false);
  const Result ref = run(false, leaves, index, 0.25, weight, /*x_grad=*/false);
  EXPECT_FALSE(ours.grads[1].defined());
  EXPECT_TRUE(torch::allclose(ours.grads[2], ref.grads[2], 1e-4, 1e-5));
  EXPECT_TRUE(torch::allclose(ours.grads[3], ref.grads[3], 1e-4, 1e-5));
}

TEST(RoutedLowRank, RejectsAnIndexOutOfRange) {
  const auto y = torch::zeros({2, 1, 8}), x = torch::zeros({2, 1, 8});
  const auto a_t = torch::zeros({2, 4, 8}), b = torch::zeros({2, 4, 8});
  EXPECT_THROW(routed_lowrank_update(y, x, a_t, b, torch::tensor({0, 2}, torch::kLong), 1.0), c10::Error);
  EXPECT_FALSE(routed_lowrank_applies(y, x, a_t, torch::zeros({2, 4, 9})));  // B's width is not y's
  EXPECT_FALSE(routed_lowrank_applies(y.to(torch::kDouble), x, a_t, b));
}

// x W^T + bias + s (x_i A_t) B_t, every piece in torch ops.
struct LinearResult {
  torch::Tensor out, grad_x, grad_a_t, grad_b;
};

LinearResult run_linear(bool kernel, const torch::Tensor& x_in, const torch::Tensor& w, const torch::Tensor& bias,
                        const torch::Tensor& a_t_in, const torch::Tensor& b_in, const torch::Tensor& index,
                        double scale, const torch::Tensor& loss_weight, bool x_grad) {
  const auto x = x_in.detach().clone().requires_grad_(x_grad);
  const auto a_t = a_t_in.detach().clone().requires_grad_(true), b = b_in.detach().clone().requires_grad_(true);
  LinearResult r;
  r.out = kernel ? routed_lowrank_linear(x, w, bias, a_t, b, index, scale)
                 : formula(torch::nn::functional::linear(x, w, bias), x, a_t, b, index, scale);
  (r.out * loss_weight).sum().backward();
  r.grad_x = x.grad();
  r.grad_a_t = a_t.grad();
  r.grad_b = b.grad();
  return r;
}

TEST(RoutedLowRankLinear, MatchesTheFormulaWithGradients) {
  const std::vector<Shape> shapes = {
      {4, 5, 12, 8, 4, 3}, {3, 9, 40, 24, 3, 2}, {8, 16, 64, 48, 16, 4},
      {6, 7, 32, 16, 8, 1},  // one task (LoRA's case)
  };
  for (const Shape& s : shapes) {
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE("d_in " + std::to_string(s.d_in) + " rank " + std::to_string(s.rank) + " tasks " +
                   std::to_string(s.tasks) + (with_bias ? " with bias" : ""));
      torch::manual_seed(5);
      const auto x = torch::randn({s.examples, s.len, s.d_in}), w = torch::randn({s.d_out, s.d_in});
      const auto bias = with_bias ? torch::randn({s.d_out}) : torch::Tensor();
      const auto a_t = torch::randn({s.tasks, s.rank, s.d_in}), b = torch::randn({s.tasks, s.rank, s.d_out});
      const auto index = torch::randint(s.tasks, {s.examples}, torch::kLong);
      const auto loss_weight = torch::randn({s.examples, s.len, s.d_out});
      ASSERT_TRUE(routed_lowrank_linear_applies(x, w, bias, a_t));
      const LinearResult ref = run_linear(false, x, w, bias, a_t, b, index, 0.5, loss_weight, true);
      set_cpu_threads(2);
      const LinearResult two = run_linear(true, x, w, bias, a_t, b, index, 0.5, loss_weight, true);
      set_cpu_threads(1);
      const LinearResult one = run_linear(true, x, w, bias, a_t, b, index, 0.5, loss_weight, true);
      EXPECT_TRUE(torch::allclose(two.out, ref.out, 1e-4, 1e-4));
      EXPECT_TRUE(torch::allclose(two.grad_x, ref.grad_x, 1e-4, 1e-4));
      EXPECT_TRUE(torch::allclose(two.grad_a_t, ref.grad_a_t, 1e-4, 1e-3));
      EXPECT_TRUE(torch::allclose(two.grad_b, ref.grad_b, 1e-4, 1e-3));
      // The factors' gradients come from the kernel alone: the thread count changes no bit. (The output and
      // d x also hold the base GEMM's, which OpenBLAS may block differently on 1 and 2 threads.)
      EXPECT_TRUE(torch::equal(two.grad_a_t, one.grad_a_t));
      EXPECT_TRUE(torch::equal(two.grad_b, one.grad_b));
    }
  }
}

TEST(RoutedLowRankLinear, FrozenInputGetsNoGradientAndTrainableBasesAreDeclined) {
  torch::manual_seed(6);
  const auto x = torch::randn({2, 3, 16}), w = torch::randn({8, 16});
  const auto a_t = torch::randn({2, 4, 16}), b = torch::randn({2, 4, 8});
  const auto index = torch::tensor({1, 0}, torch::kLong);
  const auto loss_weight = torch::randn({2, 3, 8});
  const LinearResult ours = run_linear(true, x, w, torch::Tensor(), a_t, b, index, 0.25, loss_weight, false);
  const LinearResult ref = run_linear(false, x, w, torch::Tensor(), a_t, b, index, 0.25, loss_weight, false);
  EXPECT_FALSE(ours.grad_x.defined());
  EXPECT_TRUE(torch::allclose(ours.grad_a_t, ref.grad_a_t, 1e-4, 1e-4));
  EXPECT_TRUE(torch::allclose(ours.grad_b, ref.grad_b, 1e-4, 1e-4));
  // A base that trains needs its own gradient: the op is for frozen bases only.
  EXPECT_FALSE(routed_lowrank_linear_applies(x, w.clone().requires_grad_(true), torch::Tensor(), a_t));
  EXPECT_FALSE(routed_lowrank_linear_applies(x.view({6, 16}), w, torch::Tensor(), a_t));
  EXPECT_THROW(routed_lowrank_linear(x, w, torch::Tensor(), a_t, torch::randn({2, 4, 9}), index, 1.0), c10::Error);
}

TEST(RoutedLowRankLinear, WithoutAutogradMatchesTheFormulaForDecodingAndEvaluation) {
  torch::manual_seed(7);
  const auto w = torch::randn({40, 24}), bias = torch::randn({40});
  const auto a_t = torch::randn({3, 4, 24}).requires_grad_(true), b = torch::randn({3, 4, 40}).requires_grad_(true);
  torch::NoGradGuard no_grad;  // the factors are parameters, but nothing records a graph
  // 8 rows: a decoding step (the base through skinny_linear); 8 x 5 rows: an evaluation forward (sgemm).
  for (int64_t len : {1, 5}) {
    const auto x = torch::randn({8, len, 24});
    const auto index = torch::randint(3, {8}, torch::kLong);
    ASSERT_EQ(skinny_linear_applies(x, w), len == 1);
    const auto out = routed_lowrank_linear(x, w, bias, a_t, b, index, 0.5);
    EXPECT_FALSE(out.requires_grad());
    EXPECT_TRUE(torch::allclose(out, formula(torch::nn::functional::linear(x, w, bias), x, a_t, b, index, 0.5), 1e-4,
                                1e-4))
        << "len " << len;
  }
}

}  // namespace
}  // namespace peft
