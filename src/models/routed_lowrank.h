// Poly/MHR's per-example low-rank update in one differentiable op: out = y + scale * (x_i A_t) B_t for each
// example i routed to task t = index[i]. The mixed factors stay one per distinct task (A as a_t [U, r, d_in],
// B [U, r, d_out]) and are read through the index, instead of being gathered per example and multiplied by
// 2 x B thin sgemm calls (rank 16: OpenBLAS spent as long zeroing and packing as multiplying) plus a y + ...
// pass. Each product is one loop nest over registers, without packing or zeroing: x A and gy B^T as dot
// products along the wide side, the others as outer products over the rank or the rows; y is read once and out
// written once. The factors' gradients are summed per example, then per task in example order, so the result
// does not depend on the thread count.
#pragma once
#include <torch/torch.h>

namespace peft {

// x [B, L, d_in], y [B, L, d_out], a_t [U, r, d_in] (each task's A
// [d_in, r] transposed), b [U, r, d_out], index [B] (values in [0, U)). Differentiable with respect to y, x, a_t and b.
torch::Tensor routed_lowrank_update(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& a_t,
                                    const torch::Tensor& b, const torch::Tensor& index, double scale);

// Whether routed_lowrank_update runs for these operands: CPU float32 with the shapes above.
bool routed_lowrank_applies(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& a_t,
                            const torch::Tensor& b);

// x W^T + bias + the update above, as one op for a frozen base linear (weight [d_out, d_in], bias [d_out] or
// undefined; neither requiring grad): the update is added into the GEMM's output, and in backward its d x into
// the GEMM's d x, each in place. Differentiable with respect to x, a_t and b.
torch::Tensor routed_lowrank_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                    const torch::Tensor& a_t, const torch::Tensor& b, const torch::Tensor& index,
                                    double scale);

// Whether routed_lowrank_linear runs for these operands, checked before the factors exist: `factor` is any tensor
// of their dtype and device (a parameter they are made from).
bool routed_lowrank_linear_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   const torch::Tensor& factor);

}  // namespace peft
