// T5 building blocks below the stack, named as Hugging Face names them: T5LayerNorm (RMS norm),
// DenseReluDense (T5DenseActDense / T5DenseGatedActDense), T5LayerSelfAttention, T5LayerCrossAttention,
// T5LayerFF and T5Block.
#pragma once
#include <torch/torch.h>

#include "models/context.h"
#include "models/hooks.h"
#include "models/linear.h"
#include "models/t5/attention.h"
#include "models/t5/config.h"

namespace peft {

enum class T5Activation { kRelu, kGelu, kGeluNew, kGeluPytorchTanh, kGeluFast, kQuickGelu, kSilu, kTanh, kSigmoid, kLinear, kRelu6, kMish };

// Resolves an HF ACT2FN name; unknown names are an InputError naming the activation.
T5Activation t5_activation_from_name(const std::string& name);
torch::Tensor apply_activation(T5Activation act, const torch::Tensor& x);

// RMS norm: no mean subtraction, no bias, variance accumulated in fp32.
class T5LayerNormImpl : public torch::nn::Module {
 public:
  T5LayerNormImpl(int64_t hidden_size, double eps);
  torch::Tensor forward(const torch::Tensor& hidden_states) const;
  torch::Tensor weight;
  double variance_epsilon;
};
TORCH_MODULE(T5LayerNorm);

// DenseReluDense: wi -> act -> dropout -> wo, or (gated) act(wi_0 x) * wi_1 x -> dropout -> wo.
class T5DenseReluDenseImpl : public torch::nn::Module {
 public:
  explicit T5DenseReluDenseImpl(const T5Config& config);
  torch::Tensor forward(const torch::Tensor& hidden_states, const ForwardContext& ctx);
  bool is_gated_act;
  T5Activation act;
  double dropout;
  AdaptableLinear wi{nullptr}, wi_0{nullptr}, wi_1{nullptr}, wo{nullptr};
};
TORCH_MODULE(T5DenseReluDense);

// Sub-layer hooks see (layer_norm(x), sub-layer output) and run before dropout + residual.
class T5LayerFFImpl : public torch::nn::Module, public HasSublayerHooks {
 public:
  explicit T5LayerFFImpl(const T5Config& config);
  torch::Tensor forward(const torch::Tensor& hidden_states, const ForwardContext& ctx);
  T5DenseReluDense DenseReluDense{nullptr};
  T5LayerNorm layer_norm{nullptr};
  double dropout;
};
TORCH_MODULE(T5LayerFF);

class T5LayerSelfAttentionImpl : public torch::nn::Module, public HasSublayerHooks {
 public:
  T5LayerSelfAttentionImpl(const T5Config& config, bool is_decoder, bool has_relative_attention_bias);
  T5AttentionOutput forward(const torch::Tensor& hidden_states, const torch::Tensor& position_bias,
                            const ForwardContext& ctx, bool output_attentions, T5KVCache* cache = nullptr);
  T5Attention SelfAttention{nullptr};
  T5LayerNorm layer_norm{nullptr};
  double dropout;
};
TORCH_MODULE(T5LayerSelfAttention);

class T5LayerCrossAttentionImpl : public torch::nn::Module, public HasSublayerHooks {
 public:
  explicit T5LayerCrossAttentionImpl(const T5Config& config);
  T5AttentionOutput forward(const torch::Tensor& hidden_states, const torch::Tensor& key_value_states,
                            const torch::Tensor& position_bias, const ForwardContext& ctx, bool output_attentions,
                            T5KVCache* cache = nullptr);
  T5Attention EncDecAttention{nullptr};
  T5LayerNorm layer_norm{nullptr};
  double dropout;
};
TORCH_MODULE(T5LayerCrossAttention);

// Cached keys/values of one decoder block during generation.
struct T5BlockCache {
  T5KVCache self_attention, cross_attention;
};

struct T5BlockOutput {
  torch::Tensor hidden_states;
  torch::Tensor self_attention_weights, cross_attention_weights;  // undefined unless asked
};

// layer.0 = self-attention, layer.1 = cross-attention (decoder only), last = FFN.
class T5BlockImpl : public torch::nn::Module {
 public:
  T5BlockImpl(const T5Config& config, bool is_decoder, bool has_relative_attention_bias);
  T5BlockOutput forward(const torch::Tensor& hidden_states, const torch::Tensor& position_bias,
                        const torch::Tensor& encoder_hidden_states, const torch::Tensor& encoder_decoder_position_bias,
                        const ForwardContext& ctx, bool output_attentions, T5BlockCache* cache = nullptr);
  bool is_decoder;
  torch::nn::ModuleList layer;
  T5LayerSelfAttention self_attention{nullptr};
  T5LayerCrossAttention cross_attention{nullptr};  // decoder only
  T5LayerFF ff{nullptr};
};
TORCH_MODULE(T5Block);

}  // namespace peft
