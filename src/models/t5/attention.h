// T5Attention (Hugging Face modeling_t5.py): multi-head attention without score scaling, with an optional
// learned relative-position bias (block 0 of each stack only; the other blocks reuse block 0's bias).
#pragma once
#include <torch/torch.h>

#include "models/context.h"
#include "models/hooks.h"
#include "models/linear.h"
#include "models/t5/config.h"

namespace peft {

// Keys/values kept between generation steps for one attention module.
// Self-attention: a buffer [B, heads, capacity, d_kv] of which the first `length` positions are filled.
// Cross-attention: the encoder's keys/values [B, heads, S, d_kv], computed once.
struct T5KVCache {
  torch::Tensor key, value;
  int64_t length = 0;
  torch::Tensor prefix_key, prefix_value;  // from prefix hooks, computed once per generation
};

struct T5AttentionOutput {
  torch::Tensor hidden_states;  // [B, q, d_model]
  torch::Tensor weights;        // [B, heads, q, (prefix +) k] softmax probabilities; undefined unless asked
};

class T5AttentionImpl : public torch::nn::Module, public HasPrefixHooks {
 public:
  T5AttentionImpl(const T5Config& config, bool is_decoder, bool has_relative_attention_bias);

  // hidden_states [B, q, d_model]; key_value_states: encoder output for cross-attention, undefined for
  // self-attention. position_bias: [1 or B, heads, q, k] relative bias plus additive mask (undefined = none).
  // With `cache`, self-attention appends this call's keys/values to it and attends over everything cached;
  // cross-attention computes the encoder keys/values on the first call and reuses them afterwards.
  // Prefix-hook keys/values are prepended, always visible, with zero position bias.
  T5AttentionOutput forward(const torch::Tensor& hidden_states, const torch::Tensor& key_value_states,
                            const torch::Tensor& position_bias, const ForwardContext& ctx, bool output_attentions,
                            T5KVCache* cache = nullptr);

  // Relative-position bias [1, heads, query_length, key_length] for queries at positions
  // query_offset .. query_offset + query_length - 1 (query_offset > 0 when decoding with a cache).
  torch::Tensor compute_bias(int64_t query_length, int64_t key_length, int64_t query_offset = 0) const;

  static torch::Tensor relative_position_bucket(const torch::Tensor& relative_position, bool bidirectional,
                                                int64_t num_buckets, int64_t max_distance);

  bool is_decoder, has_relative_attention_bias;
  int64_t d_model, key_value_proj_dim, n_heads, inner_dim;
  int64_t relative_attention_num_buckets, relative_attention_max_distance;
  double dropout;
  AdaptableLinear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
  torch::nn::Embedding relative_attention_bias{nullptr};  // only when has_relative_attention_bias
};
TORCH_MODULE(T5Attention);

}  // namespace peft
