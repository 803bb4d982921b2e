// y = x W^T + b for a handful of rows (greedy decoding: one new token per example, batch 8) without OpenBLAS.
// For so few rows sgemm spends as long packing W into its block layout as multiplying (perf of `peft bench`
// generation: 32 % of the time in sgemm_incopy, 38 % in the kernel): every decoding step repacks every weight,
// the 66 MB tied LM head included. Here each row of W is read once, straight from memory, and dotted with
// all rows of x, which stay in L1. Vectorised for AVX2/AVX-512 when the CPU has them (chosen at run time).
#pragma once
#include <torch/torch.h>

namespace peft {

// Rows at or below which skinny_linear is used: at 8 rows it still takes about half of sgemm's time per weight
// (512 x 512 to 32128 x 512 weights, 1 and 2 threads, docs/performance.md).
inline constexpr int64_t kSkinnyMaxRows = 8;

// Whether skinny_linear applies: CPU float32, x [..., K] with at most kSkinnyMaxRows rows, W [N, K]
// contiguous, no autograd needed.
bool skinny_linear_applies(const torch::Tensor& x, const torch::Tensor& weight);

// x [..., K], weight [N, K], bias [N] or undefined -> [..., N]. Same result as torch::nn::functional::linear up
// to float summation order.
torch::Tensor skinny_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias);

}  // namespace peft
