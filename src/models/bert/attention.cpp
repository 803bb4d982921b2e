#include "models/bert/attention.h"

#include <cmath>

#include "models/batched_matmul.h"
#include "models/dropout.h"

namespace peft::bert {

BertSelfAttentionImpl::BertSelfAttentionImpl(const BertConfig& config)
    : num_attention_heads(config.num_attention_heads),
      attention_head_size(config.head_dim()),
      attention_probs_dropout_prob(config.attention_probs_dropout_prob) {
  const int64_t h = config.hidden_size;
  query = register_module("query", AdaptableLinear(h, h, true));
  key = register_module("key", AdaptableLinear(h, h, true));
  value = register_module("value", AdaptableLinear(h, h, true));
}

torch::Tensor BertSelfAttentionImpl::transpose_for_scores(const torch::Tensor& x) const {
  return x.view({x.size(0), x.size(1), num_attention_heads, attention_head_size}).permute({0, 2, 1, 3});
}

std::pair<torch::Tensor, torch::Tensor> BertSelfAttentionImpl::forward(const torch::Tensor& hidden_states,
                                                                       const torch::Tensor& extended_attention_mask,
                                                                       const ForwardContext& ctx) {
  const int64_t batch = hidden_states.size(0);
  torch::Tensor query_layer = transpose_for_scores(query(hidden_states, ctx));
  torch::Tensor key_layer = transpose_for_scores(key(hidden_states, ctx));
  torch::Tensor value_layer = transpose_for_scores(value(hidden_states, ctx));
  torch::Tensor mask = extended_attention_mask;
  for (auto& hook : prefix_hooks) {
    auto [prefix_key, prefix_value] = hook->prefix(batch, ctx);
    key_layer = torch::cat({prefix_key.to(key_layer.dtype()), key_layer}, 2);
    value_layer = torch::cat({prefix_value.to(value_layer.dtype()), value_layer}, 2);
    if (mask.defined()) {
      auto sizes = mask.sizes().vec();
      sizes.back() = prefix_key.size(2);
      mask = torch::cat({torch::zeros(sizes, mask.options()), mask}, -1);  // 0 = visible in an additive mask
    }
  }
  // Same order of operations as transformers (matmul, then divide by sqrt(d_head), then add the mask).
  torch::Tensor attention_scores = batched_matmul(query_layer, key_layer.transpose(-1, -2));
  attention_scores = attention_scores / std::sqrt(static_cast<double>(attention_head_size));
  if (mask.defined()) attention_scores = attention_scores + mask;
  torch::Tensor attention_probs = torch::softmax(attention_scores, -1);
  attention_probs = peft::dropout(attention_probs, attention_probs_dropout_prob, ctx.training || is_training());
  // Stored heads-inner, so the [B, n, hidden] view the output dense reads is free.
  torch::Tensor context_layer = batched_matmul(attention_probs, value_layer, /*heads_inner=*/true).permute({0, 2, 1, 3});
  context_layer = context_layer.reshape({batch, context_layer.size(1), num_attention_heads * attention_head_size});
  return {context_layer, attention_probs};
}

BertSelfOutputImpl::BertSelfOutputImpl(const BertConfig& config) : hidden_dropout_prob(config.hidden_dropout_prob) {
  sublayer_kind = SublayerKind::kSelfAttention;
  dense = register_module("dense", AdaptableLinear(config.hidden_size, config.hidden_size, true));
  LayerNorm = register_module(
      "LayerNorm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
}

torch::Tensor BertSelfOutputImpl::forward(const torch::Tensor& hidden_states, const torch::Tensor& input_tensor,
                                          const ForwardContext& ctx) {
  torch::Tensor out = peft::dropout(dense(hidden_states, ctx), hidden_dropout_prob, ctx.training || is_training());
  out = run_sublayer_hooks(input_tensor, std::move(out), ctx);
  return LayerNorm(out + input_tensor);
}

BertAttentionImpl::BertAttentionImpl(const BertConfig& config) {
  self = register_module("self", BertSelfAttention(config));
  output = register_module("output", BertSelfOutput(config));
}

std::pair<torch::Tensor, torch::Tensor> BertAttentionImpl::forward(const torch::Tensor& hidden_states,
                                                                   const torch::Tensor& extended_attention_mask,
                                                                   const ForwardContext& ctx) {
  auto [context, probs] = self(hidden_states, extended_attention_mask, ctx);
  return {output(context, hidden_states, ctx), probs};
}

}  // namespace peft::bert
