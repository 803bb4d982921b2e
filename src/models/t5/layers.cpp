#include "models/t5/layers.h"

#include <cmath>
#include <limits>

#include "common/error.h"
#include "models/dropout.h"
#include "models/rms_norm.h"

namespace peft {

T5Activation t5_activation_from_name(const std::string& name) {
  if (name == "relu") return T5Activation::kRelu;
  if (name == "gelu") return T5Activation::kGelu;
  if (name == "gelu_new" || name == "gelu_accurate") return T5Activation::kGeluNew;
  if (name == "gelu_pytorch_tanh") return T5Activation::kGeluPytorchTanh;
  if (name == "gelu_fast") return T5Activation::kGeluFast;
  if (name == "quick_gelu") return T5Activation::kQuickGelu;
  if (name == "silu" || name == "swish") return T5Activation::kSilu;
  if (name == "tanh") return T5Activation::kTanh;
  if (name == "sigmoid") return T5Activation::kSigmoid;
  if (name == "linear") return T5Activation::kLinear;
  if (name == "relu6") return T5Activation::kRelu6;
  if (name == "mish") return T5Activation::kMish;
  fail_input("T5 config: dense_act_fn: unknown activation '" + name + "'");
}

torch::Tensor apply_activation(T5Activation act, const torch::Tensor& x) {
  switch (act) {
    case T5Activation::kRelu: return torch::relu(x);
    case T5Activation::kGelu: return torch::gelu(x);  // exact erf form, as torch.nn.functional.gelu
    case T5Activation::kGeluNew:
      // HF NewGELUActivation, written out so the rounding matches its Python expression.
      return 0.5 * x * (1.0 + torch::tanh(std::sqrt(2.0 / 3.141592653589793) * (x + 0.044715 * torch::pow(x, 3.0))));
    case T5Activation::kGeluPytorchTanh: return torch::gelu(x, "tanh");
    case T5Activation::kGeluFast: return 0.5 * x * (1.0 + torch::tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)));
    case T5Activation::kQuickGelu: return x * torch::sigmoid(1.702 * x);
    case T5Activation::kSilu: return torch::silu(x);
    case T5Activation::kTanh: return torch::tanh(x);
    case T5Activation::kSigmoid: return torch::sigmoid(x);
    case T5Activation::kLinear: return x;
    case T5Activation::kRelu6: return torch::clamp(x, 0.0, 6.0);
    case T5Activation::kMish: return x * torch::tanh(torch::softplus(x));
  }
  return x;
}

// ---------------------------------------------------------------------------------------------------------------

T5LayerNormImpl::T5LayerNormImpl(int64_t hidden_size, double eps) : variance_epsilon(eps) {
  weight = register_parameter("weight", torch::ones({hidden_size}));
}

torch::Tensor T5LayerNormImpl::forward(const torch::Tensor& hidden_states) const {
  return rms_norm(hidden_states, weight, variance_epsilon);
}

// ---------------------------------------------------------------------------------------------------------------

T5DenseReluDenseImpl::T5DenseReluDenseImpl(const T5Config& config)
    : is_gated_act(config.is_gated_act), act(t5_activation_from_name(config.dense_act_fn)), dropout(config.dropout_rate) {
  if (is_gated_act) {
    wi_0 = register_module("wi_0", AdaptableLinear(config.d_model, config.d_ff, false));
    wi_1 = register_module("wi_1", AdaptableLinear(config.d_model, config.d_ff, false));
  } else {
    wi = register_module("wi", AdaptableLinear(config.d_model, config.d_ff, false));
  }
  wo = register_module("wo", AdaptableLinear(config.d_ff, config.d_model, false));
}

torch::Tensor T5DenseReluDenseImpl::forward(const torch::Tensor& x, const ForwardContext& ctx) {
  torch::Tensor h;
  if (is_gated_act) {
    torch::Tensor hidden_gelu = apply_activation(act, wi_0->forward(x, ctx));
    torch::Tensor hidden_linear = wi_1->forward(x, ctx);
    h = peft::dropout(hidden_gelu * hidden_linear, dropout, ctx.training);
  } else if (act == T5Activation::kRelu) {
    h = peft::relu_dropout(wi->forward(x, ctx), dropout, ctx.training);  // one pass forward, one backward
  } else {
    h = peft::dropout(apply_activation(act, wi->forward(x, ctx)), dropout, ctx.training);
  }
  if (h.scalar_type() != wo->weight.scalar_type() && wo->weight.scalar_type() != torch::kChar)
    h = h.to(wo->weight.scalar_type());
  return wo->forward(h, ctx);
}

// ---------------------------------------------------------------------------------------------------------------

T5LayerFFImpl::T5LayerFFImpl(const T5Config& config) : dropout(config.dropout_rate) {
  sublayer_kind = SublayerKind::kFeedForward;
  DenseReluDense = register_module("DenseReluDense", T5DenseReluDense(config));
  layer_norm = register_module("layer_norm", T5LayerNorm(config.d_model, config.layer_norm_epsilon));
}

torch::Tensor T5LayerFFImpl::forward(const torch::Tensor& hidden_states, const ForwardContext& ctx) {
  torch::Tensor forwarded_states = layer_norm->forward(hidden_states);
  torch::Tensor out = DenseReluDense->forward(forwarded_states, ctx);
  out = run_sublayer_hooks(forwarded_states, std::move(out), ctx);
  if (ctx.training && dropout > 0) out = peft::dropout(out, dropout, true);
  return hidden_states + out;
}

T5LayerSelfAttentionImpl::T5LayerSelfAttentionImpl(const T5Config& config, bool is_decoder, bool has_bias)
    : dropout(config.dropout_rate) {
  sublayer_kind = SublayerKind::kSelfAttention;
  SelfAttention = register_module("SelfAttention", T5Attention(config, is_decoder, has_bias));
  layer_norm = register_module("layer_norm", T5LayerNorm(config.d_model, config.layer_norm_epsilon));
}

T5AttentionOutput T5LayerSelfAttentionImpl::forward(const torch::Tensor& hidden_states,
                                                    const torch::Tensor& position_bias, const ForwardContext& ctx,
                                                    bool output_attentions, T5KVCache* cache) {
  torch::Tensor normed_hidden_states = layer_norm->forward(hidden_states);
  T5AttentionOutput attn =
      SelfAttention->forward(normed_hidden_states, torch::Tensor(), position_bias, ctx, output_attentions, cache);
  torch::Tensor out = run_sublayer_hooks(normed_hidden_states, std::move(attn.hidden_states), ctx);
  if (ctx.training && dropout > 0) out = peft::dropout(out, dropout, true);
  return {hidden_states + out, attn.weights};
}

T5LayerCrossAttentionImpl::T5LayerCrossAttentionImpl(const T5Config& config) : dropout(config.dropout_rate) {
  sublayer_kind = SublayerKind::kCrossAttention;
  EncDecAttention = register_module("EncDecAttention", T5Attention(config, /*is_decoder=*/true, false));
  layer_norm = register_module("layer_norm", T5LayerNorm(config.d_model, config.layer_norm_epsilon));
}

T5AttentionOutput T5LayerCrossAttentionImpl::forward(const torch::Tensor& hidden_states,
                                                     const torch::Tensor& key_value_states,
                                                     const torch::Tensor& position_bias, const ForwardContext& ctx,
                                                     bool output_attentions, T5KVCache* cache) {
  torch::Tensor normed_hidden_states = layer_norm->forward(hidden_states);
  T5AttentionOutput attn =
      EncDecAttention->forward(normed_hidden_states, key_value_states, position_bias, ctx, output_attentions, cache);
  torch::Tensor out = run_sublayer_hooks(normed_hidden_states, std::move(attn.hidden_states), ctx);
  if (ctx.training && dropout > 0) out = peft::dropout(out, dropout, true);
  return {hidden_states + out, attn.weights};
}

// ---------------------------------------------------------------------------------------------------------------

T5BlockImpl::T5BlockImpl(const T5Config& config, bool is_decoder_, bool has_bias) : is_decoder(is_decoder_) {
  self_attention = T5LayerSelfAttention(config, is_decoder, has_bias);
  layer->push_back(self_attention);
  if (is_decoder) {
    cross_attention = T5LayerCrossAttention(config);
    layer->push_back(cross_attention);
  }
  ff = T5LayerFF(config);
  layer->push_back(ff);
  layer = register_module("layer", layer);
}

namespace {

// HF clamps inf values in fp16 so training does not blow up; a no-op for other dtypes.
torch::Tensor clamp_fp16(torch::Tensor h) {
  if (h.scalar_type() != torch::kHalf) return h;
  const double max = 65504.0;
  const double clamp_value = torch::isinf(h).any().item<bool>() ? max - 1000 : max;
  return torch::clamp(h, -clamp_value, clamp_value);
}

}  // namespace

T5BlockOutput T5BlockImpl::forward(const torch::Tensor& hidden_states_in, const torch::Tensor& position_bias,
                                   const torch::Tensor& encoder_hidden_states,
                                   const torch::Tensor& encoder_decoder_position_bias, const ForwardContext& ctx,
                                   bool output_attentions, T5BlockCache* cache) {
  T5BlockOutput out;
  T5AttentionOutput self = self_attention->forward(hidden_states_in, position_bias, ctx, output_attentions,
                                                   cache ? &cache->self_attention : nullptr);
  torch::Tensor hidden_states = clamp_fp16(self.hidden_states);
  out.self_attention_weights = self.weights;
  if (is_decoder) {
    TORCH_CHECK(encoder_hidden_states.defined(), "T5 decoder block needs encoder_hidden_states");
    T5AttentionOutput cross =
        cross_attention->forward(hidden_states, encoder_hidden_states, encoder_decoder_position_bias, ctx,
                                 output_attentions, cache ? &cache->cross_attention : nullptr);
    hidden_states = clamp_fp16(cross.hidden_states);
    out.cross_attention_weights = cross.weights;
  }
  out.hidden_states = clamp_fp16(ff->forward(hidden_states, ctx));
  return out;
}

}  // namespace peft
