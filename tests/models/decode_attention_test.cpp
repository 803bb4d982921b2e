// decode_attention (the fused attention for a few query positions) against matmul / softmax / matmul, and when
// it applies. Greedy generation through it is checked end to end by the T5 cache and fixture tests.
#include "models/decode_attention.h"

#include <gtest/gtest.h>

#include "common/threads.h"

namespace peft {
namespace {

// The unfused computation, as T5Attention writes it: [B, h, q, d] -> [B, q, h * d].
torch::Tensor reference(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, const torch::Tensor& bias) {
  torch::Tensor scores = torch::matmul(q, k.transpose(3, 2));
  if (bias.defined()) scores = scores + bias;
  torch::Tensor out = torch::matmul(torch::softmax(scores, -1), v);
  return out.transpose(1, 2).contiguous().view({q.size(0), q.size(2), -1});
}

// [B, n, h * d] -> [B, h, n, d] as the attention sees a projection's output: a strided view.
torch::Tensor heads_view(const torch::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, -1}).transpose(1, 2);
}

TEST(DecodeAttention, MatchesMatmulSoftmaxMatmul) {
  torch::manual_seed(0);
  torch::NoGradGuard no_grad;
  for (int threads : {1, 2}) {
    set_cpu_threads(threads);
    for (int64_t queries : {int64_t{1}, int64_t{3}, kDecodeAttentionMaxQueries})
      for (int64_t dim : {8, 12, 64})  // 12: a tail after the 8-float chunk
        for (int64_t keys : {1, 5, 130}) {
          const int64_t batch = 3, heads = 4;
          auto q = heads_view(torch::randn({batch, queries, heads * dim}), heads);
          auto k = heads_view(torch::randn({batch, keys, heads * dim}), heads);
          auto v = heads_view(torch::randn({batch, keys, heads * dim}), heads);
          auto full_bias = torch::randn({batch, heads, queries, keys});
          auto shared_bias = torch::randn({1, heads, queries, keys});      // relative bias, every example
          auto mask = torch::zeros({batch, 1, 1, keys});                   // padding mask, every head
          mask.index_put_({0, 0, 0, 0}, std::numeric_limits<float>::lowest());
          auto permuted_bias = torch::randn({queries, keys, heads}).permute({2, 0, 1}).unsqueeze(0);  // compute_bias
          for (const auto& bias : {torch::Tensor(), full_bias, shared_bias, shared_bias + mask, permuted_bias}) {
            ASSERT_TRUE(decode_attention_applies(q, k, v, bias));
            EXPECT_TRUE(torch::allclose(decode_attention(q, k, v, bias), reference(q, k, v, bias), 1e-5, 1e-5))
                << "q " << queries << " d " << dim << " n " << keys << " threads " << threads;
          }
          // Contiguous [B, h, n, d] caches (cross-attention) read the same.
          EXPECT_TRUE(torch::allclose(decode_attention(q, k.contiguous(), v.contiguous(), {}),
                                      reference(q, k, v, {}), 1e-5, 1e-5));
        }
  }
  set_cpu_threads(1);
}

TEST(DecodeAttention, AllMaskedKeysButOneGiveThatValue) {
  torch::NoGradGuard no_grad;
  auto q = torch::randn({1, 2, 1, 8});
  auto k = torch::randn({1, 2, 4, 8});
  auto v = torch::randn({1, 2, 4, 8});
  auto bias = torch::full({1, 1, 1, 4}, std::numeric_limits<float>::lowest());
  bias.index_put_({0, 0, 0, 2}, 0.0);
  auto out = decode_attention(q, k, v, bias).view({2, 8});
  EXPECT_TRUE(torch::allclose(out, v.select(2, 2).view({2, 8})));
}

TEST(DecodeAttention, AppliesOnlyToFewFloatQueriesWithoutAutograd) {
  auto q = torch::randn({2, 4, 1, 8});
  auto kv = torch::randn({2, 4, 6, 8});
  {
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(decode_attention_applies(q, kv, kv, torch::randn({1, 4, 1, 6})));
    EXPECT_FALSE(decode_attention_applies(torch::randn({2, 4, kDecodeAttentionMaxQueries + 1, 8}), kv, kv, {}));
    EXPECT_FALSE(decode_attention_applies(q.to(torch::kDouble), kv, kv, {}));
    EXPECT_FALSE(decode_attention_applies(q, kv.transpose(2, 3).contiguous().transpose(2, 3), kv, {}));  // d strided
    EXPECT_FALSE(decode_attention_applies(q, kv, kv, torch::randn({1, 4, 1, 5})));  // bias does not broadcast
    EXPECT_FALSE(decode_attention_applies(q, kv, torch::randn({2, 4, 7, 8}), {}));   // keys and values differ
  }
  EXPECT_TRUE(decode_attention_applies(q, kv, kv, {}));  // nothing needs a gradient
  EXPECT_FALSE(decode_attention_applies(q.clone().requires_grad_(true), kv, kv, {}));
}

}  // namespace
}  // namespace peft
