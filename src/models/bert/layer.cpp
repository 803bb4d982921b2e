#include "models/bert/layer.h"

#include <cmath>

#include "common/error.h"
#include "models/dropout.h"

namespace peft::bert {

torch::Tensor activation(const std::string& name, const torch::Tensor& x) {
  if (name == "gelu") return torch::gelu(x);  // exact erf form
  if (name == "gelu_new") {
    // transformers NewGELUActivation, written out so the float ops match it exactly.
    const double c = std::sqrt(2.0 / M_PI);
    return 0.5 * x * (1.0 + torch::tanh(c * (x + 0.044715 * torch::pow(x, 3.0))));
  }
  if (name == "gelu_pytorch_tanh") return torch::gelu(x, "tanh");
  if (name == "gelu_fast") return 0.5 * x * (1.0 + torch::tanh(x * 0.7978845608 * (1.0 + 0.044715 * x * x)));
  if (name == "relu") return torch::relu(x);
  if (name == "silu" || name == "swish") return torch::silu(x);
  if (name == "tanh") return torch::tanh(x);
  fail_input("hidden_act '" + name + "' is not supported");
}

BertIntermediateImpl::BertIntermediateImpl(const BertConfig& config) : hidden_act(config.hidden_act) {
  dense = register_module("dense", AdaptableLinear(config.hidden_size, config.intermediate_size, true));
}

torch::Tensor BertIntermediateImpl::forward(const torch::Tensor& hidden_states, const ForwardContext& ctx) {
  return activation(hidden_act, dense(hidden_states, ctx));
}

BertOutputImpl::BertOutputImpl(const BertConfig& config) : hidden_dropout_prob(config.hidden_dropout_prob) {
  sublayer_kind = SublayerKind::kFeedForward;
  dense = register_module("dense", AdaptableLinear(config.intermediate_size, config.hidden_size, true));
  LayerNorm = register_module(
      "LayerNorm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
}

torch::Tensor BertOutputImpl::forward(const torch::Tensor& hidden_states, const torch::Tensor& input_tensor,
                                      const ForwardContext& ctx) {
  torch::Tensor out = peft::dropout(dense(hidden_states, ctx), hidden_dropout_prob, ctx.training || is_training());
  out = run_sublayer_hooks(input_tensor, std::move(out), ctx);
  return LayerNorm(out + input_tensor);
}

BertLayerImpl::BertLayerImpl(const BertConfig& config) {
  attention = register_module("attention", BertAttention(config));
  intermediate = register_module("intermediate", BertIntermediate(config));
  output = register_module("output", BertOutput(config));
}

std::pair<torch::Tensor, torch::Tensor> BertLayerImpl::forward(const torch::Tensor& hidden_states,
                                                               const torch::Tensor& extended_attention_mask,
                                                               const ForwardContext& ctx) {
  auto [attention_output, probs] = attention(hidden_states, extended_attention_mask, ctx);
  torch::Tensor layer_output = output(intermediate(attention_output, ctx), attention_output, ctx);
  return {layer_output, probs};
}

BertEncoderImpl::BertEncoderImpl(const BertConfig& config) {
  layer = register_module("layer", torch::nn::ModuleList());
  for (int64_t i = 0; i < config.num_hidden_layers; ++i) {
    layers.emplace_back(config);
    layer->push_back(layers.back());
  }
}

BertEncoderOutput BertEncoderImpl::forward(const torch::Tensor& hidden_states,
                                           const torch::Tensor& extended_attention_mask, const ForwardContext& ctx,
                                           bool output_hidden_states, bool output_attentions) {
  BertEncoderOutput out;
  torch::Tensor h = hidden_states;
  for (auto& l : layers) {
    if (output_hidden_states) out.hidden_states.push_back(h);
    auto [next, probs] = l(h, extended_attention_mask, ctx);
    if (output_attentions) out.attentions.push_back(probs);
    h = next;
  }
  if (output_hidden_states) out.hidden_states.push_back(h);
  out.last_hidden_state = h;
  return out;
}

}  // namespace peft::bert
