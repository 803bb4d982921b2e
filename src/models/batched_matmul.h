// Batched matrix products on strided views: attention's per-head products and Poly/MHR's per-example factors.
// LibTorch 1.13's CPU bmm (OpenBLAS builds) runs one select + addmm per matrix (64 per attention product at
// batch 8 with 8 heads: 20,744 aten::select calls in one T5-small training step), and torch::matmul first copies
// views such as the heads of a [B, n, heads * d] projection ([B, heads, n, d] with strides
// (n * heads * d, d, heads * d, 1)) into contiguous tensors, and copies the gradients back in backward. Here
// each matrix goes straight to the BLAS's sgemm with its own leading dimension, the matrices of a batch are
// split over the run.threads cores (sgemm single-threaded inside), and gradients are written in their
// input's layout.
#pragma once
#include <torch/torch.h>

namespace peft {

// a [B, M, K] @ b [B, K, N] or a [B, H, M, K] @ b [B, H, K, N] (equal batch sizes, no broadcasting).
// heads_inner (4-D only): the result [B, H, M, N] is stored as [B, M, H, N] and returned as its transposed
// view, so that out.transpose(1, 2).reshape({B, M, H * N}) costs nothing: the layout an attention's output
// projection reads. Differentiable. CPU float32 goes through the BLAS's cblas_sgemm; other devices and dtypes,
// or a BLAS without it, through torch::matmul.
torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b, bool heads_inner = false);

// Whether batched_matmul calls the BLAS directly for these operands (false: it falls back to torch::matmul).
bool batched_matmul_uses_blas(const torch::Tensor& a, const torch::Tensor& b);

}  // namespace peft
