#include "models/t5/attention.h"

#include <cmath>

#include "models/batched_matmul.h"
#include "models/decode_attention.h"
#include "models/dropout.h"

namespace peft {

T5AttentionImpl::T5AttentionImpl(const T5Config& config, bool is_decoder_, bool has_bias)
    : is_decoder(is_decoder_),
      has_relative_attention_bias(has_bias),
      d_model(config.d_model),
      key_value_proj_dim(config.d_kv),
      n_heads(config.num_heads),
      inner_dim(config.num_heads * config.d_kv),
      relative_attention_num_buckets(config.relative_attention_num_buckets),
      relative_attention_max_distance(config.relative_attention_max_distance),
      dropout(config.dropout_rate) {
  q = register_module("q", AdaptableLinear(d_model, inner_dim, false));
  k = register_module("k", AdaptableLinear(d_model, inner_dim, false));
  v = register_module("v", AdaptableLinear(d_model, inner_dim, false));
  o = register_module("o", AdaptableLinear(inner_dim, d_model, false));
  if (has_relative_attention_bias)
    relative_attention_bias = register_module(
        "relative_attention_bias", torch::nn::Embedding(relative_attention_num_buckets, n_heads));
}

// Same arithmetic as HF's _relative_position_bucket (including the float log and truncating cast), so the
// buckets agree for every distance.
torch::Tensor T5AttentionImpl::relative_position_bucket(const torch::Tensor& relative_position_in, bool bidirectional,
                                                        int64_t num_buckets, int64_t max_distance) {
  torch::Tensor relative_position = relative_position_in;
  torch::Tensor relative_buckets = torch::zeros_like(relative_position);
  if (bidirectional) {
    num_buckets /= 2;
    relative_buckets = relative_buckets + (relative_position > 0).to(torch::kLong) * num_buckets;
    relative_position = torch::abs(relative_position);
  } else {
    relative_position = -torch::min(relative_position, torch::zeros_like(relative_position));
  }
  // now relative_position is in [0, inf)
  const int64_t max_exact = num_buckets / 2;
  torch::Tensor is_small = relative_position < max_exact;
  torch::Tensor relative_position_if_large =
      max_exact + (torch::log(relative_position.to(torch::kFloat) / static_cast<double>(max_exact)) /
                   std::log(static_cast<double>(max_distance) / static_cast<double>(max_exact)) *
                   static_cast<double>(num_buckets - max_exact))
                      .to(torch::kLong);
  relative_position_if_large =
      torch::min(relative_position_if_large, torch::full_like(relative_position_if_large, num_buckets - 1));
  return relative_buckets + torch::where(is_small, relative_position, relative_position_if_large);
}

torch::Tensor T5AttentionImpl::compute_bias(int64_t query_length, int64_t key_length, int64_t query_offset) const {
  TORCH_CHECK(has_relative_attention_bias, "compute_bias on an attention without relative_attention_bias");
  const auto device = relative_attention_bias->weight.device();
  auto opts = torch::TensorOptions().dtype(torch::kLong).device(device);
  torch::Tensor context_position = torch::arange(query_offset, query_offset + query_length, opts).unsqueeze(1);
  torch::Tensor memory_position = torch::arange(key_length, opts).unsqueeze(0);
  torch::Tensor relative_position = memory_position - context_position;  // [q, k]
  torch::Tensor bucket = relative_position_bucket(relative_position, /*bidirectional=*/!is_decoder,
                                                  relative_attention_num_buckets, relative_attention_max_distance);
  torch::Tensor values = torch::embedding(relative_attention_bias->weight, bucket);  // [q, k, heads]
  return values.permute({2, 0, 1}).unsqueeze(0);                   // [1, heads, q, k]
}

namespace {

// Appends `add` [B, h, n, d] to a growable buffer along dim 2 (doubling), returns the filled view.
torch::Tensor append_to(torch::Tensor& buffer, int64_t length, const torch::Tensor& add) {
  const int64_t n = add.size(2);
  if (!buffer.defined() || length + n > buffer.size(2)) {
    const int64_t capacity = std::max<int64_t>(buffer.defined() ? 2 * buffer.size(2) : 16, length + n);
    torch::Tensor grown = torch::empty({add.size(0), add.size(1), capacity, add.size(3)}, add.options());
    if (length > 0) grown.narrow(2, 0, length).copy_(buffer.narrow(2, 0, length));
    buffer = grown;
  }
  buffer.narrow(2, length, n).copy_(add);
  return buffer.narrow(2, 0, length + n);
}

}  // namespace

T5AttentionOutput T5AttentionImpl::forward(const torch::Tensor& hidden_states, const torch::Tensor& key_value_states,
                                           const torch::Tensor& position_bias, const ForwardContext& ctx,
                                           bool output_attentions, T5KVCache* cache) {
  const int64_t batch_size = hidden_states.size(0);
  auto shape = [&](const torch::Tensor& x) {  // [B, n, inner] -> [B, heads, n, d_kv]
    return x.view({batch_size, -1, n_heads, key_value_proj_dim}).transpose(1, 2);
  };

  torch::Tensor query_states = shape(q->forward(hidden_states, ctx));
  torch::Tensor key_states, value_states;
  if (key_value_states.defined()) {  // cross-attention
    if (cache != nullptr && cache->key.defined()) {
      key_states = cache->key;
      value_states = cache->value;
    } else {
      key_states = shape(k->forward(key_value_states, ctx));
      value_states = shape(v->forward(key_value_states, ctx));
      if (cache != nullptr) {  // contiguous once, so no later step copies the strided views again
        key_states = key_states.contiguous();
        value_states = value_states.contiguous();
        cache->key = key_states;
        cache->value = value_states;
        cache->length = key_states.size(2);
      }
    }
  } else {
    key_states = shape(k->forward(hidden_states, ctx));
    value_states = shape(v->forward(hidden_states, ctx));
    if (cache != nullptr) {
      key_states = append_to(cache->key, cache->length, key_states);
      value_states = append_to(cache->value, cache->length, value_states);
      cache->length += hidden_states.size(1);
    }
  }

  // Decoding (a few new positions, no autograd): one fused pass over the cached keys and values.
  if (prefix_hooks.empty() && !output_attentions && !(ctx.training && dropout > 0) &&
      decode_attention_applies(query_states, key_states, value_states, position_bias))
    return {o->forward(decode_attention(query_states, key_states, value_states, position_bias), ctx), torch::Tensor()};

  // No 1/sqrt(d) scaling: T5 folds it into the initialisation of q.
  // The per-head products read the projections' [B, n, h * d] memory in place (no head-major copies).
  torch::Tensor scores = batched_matmul(query_states, key_states.transpose(3, 2));  // [B, h, q, k]
  if (position_bias.defined()) scores = scores + position_bias;

  if (!prefix_hooks.empty()) {
    torch::Tensor prefix_key, prefix_value;
    if (cache != nullptr && cache->prefix_key.defined()) {
      prefix_key = cache->prefix_key;
      prefix_value = cache->prefix_value;
    } else {
      std::vector<torch::Tensor> keys, values;
      for (auto& hook : prefix_hooks) {
        auto [pk, pv] = hook->prefix(batch_size, ctx);
        keys.push_back(pk.to(key_states.dtype()));
        values.push_back(pv.to(value_states.dtype()));
      }
      prefix_key = keys.size() == 1 ? keys[0] : torch::cat(keys, 2);
      prefix_value = values.size() == 1 ? values[0] : torch::cat(values, 2);
      if (cache != nullptr) {
        cache->prefix_key = prefix_key;
        cache->prefix_value = prefix_value;
      }
    }
    // Prefix positions: visible to every query, no position bias.
    torch::Tensor prefix_scores = torch::matmul(query_states, prefix_key.transpose(3, 2));
    if (prefix_scores.size(0) != scores.size(0)) prefix_scores = prefix_scores.expand({scores.size(0), -1, -1, -1});
    scores = torch::cat({prefix_scores, scores}, -1);
    value_states = torch::cat({prefix_value.expand({batch_size, -1, -1, -1}), value_states}, 2);
  }

  torch::Tensor attn_weights = torch::softmax(scores.to(torch::kFloat), -1).to(scores.scalar_type());
  if (ctx.training && dropout > 0) attn_weights = peft::dropout(attn_weights, dropout, true);
  torch::Tensor attn_output = batched_matmul(attn_weights, value_states, /*heads_inner=*/true)
                                  .transpose(1, 2)
                                  .reshape({batch_size, -1, inner_dim});  // a view: stored heads-inner
  attn_output = o->forward(attn_output, ctx);
  return {attn_output, output_attentions ? attn_weights : torch::Tensor()};
}

}  // namespace peft
