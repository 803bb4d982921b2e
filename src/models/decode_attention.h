// Attention for a few query positions without autograd: greedy decoding attends one new token per example
// to the cached keys/values. At batch 8 with 8 heads, LibTorch 1.13's CPU bmm runs 64 tiny GEMMs through
// select + addmm each (aten::select 136k calls in 32 decoding steps of T5-small) and matmul first copies the
// strided [B, heads, n, d] cache views into contiguous ones: 2/3 of a decoding step. This kernel reads
// each key and value row once, straight from the strided views, and writes the output in the [B, q, heads*d]
// layout the output projection takes (no transpose + contiguous).
#pragma once
#include <torch/torch.h>

namespace peft {

// Query positions at or below which decode_attention is used (decoding is 1; the kernel is not blocked for
// long queries, where bmm's GEMMs win).
inline constexpr int64_t kDecodeAttentionMaxQueries = 8;

// Whether decode_attention applies: CPU float32, no autograd needed, query [B, h, q <= 8, d], key and value
// [B, h, n, d] with contiguous last dims, bias undefined or broadcastable to [B, h, q, n].
bool decode_attention_applies(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                              const torch::Tensor& bias);

// softmax(query key^T + bias) value per (example, head), as [B, q, h * d]. Same result as the matmul /
// softmax / matmul chain up to float summation order.
torch::Tensor decode_attention(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                               const torch::Tensor& bias);

}  // namespace peft
