// Prefix tuning (methods.md §6): per attention module, l prefix keys and values [n_heads, l, d_head]
// prepended to K and V (always visible). Training reparameterises them: an embedding E (l × d) ->
// Linear(d, m) -> tanh -> Linear(m, n_layers·2·n_heads·d_head), one generator per group (encoder
// self-attention, decoder self-attention, cross-attention), registered on the model root as
// `prefix_generator_{encoder,decoder,cross}`. fold() evaluates each generator once and keeps only
// P_k, P_v (`...SelfAttention.prefix.prefix_key` / `prefix_value`); the generators are dropped.
#pragma once
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>

#include <string>

#include "adapters/adapter.h"
#include "models/hooks.h"

namespace peft::adapters {

struct PrefixOptions {
  int64_t num_virtual_tokens = 30;  // l
  int64_t encoder_hidden_size = 512;  // m, the MLP's hidden size (HF PEFT's name)
};

class PrefixGeneratorImpl : public torch::nn::Module {
 public:
  PrefixGeneratorImpl(int64_t num_layers, int64_t d_model, int64_t num_heads, int64_t d_kv, const PrefixOptions& options);
  // All layers' prefixes: [n_layers, 2, n_heads, l, d_head] (index 0 = keys, 1 = values).
  torch::Tensor forward();

  torch::nn::Embedding embedding{nullptr};
  torch::nn::Linear transform_0{nullptr}, transform_2{nullptr};  // HF's Sequential(Linear, Tanh, Linear) indices
  int64_t num_layers, num_heads, d_kv, num_virtual_tokens;

  // Closed form: l·d + (d·m + m) + (m·L·2·h·d_kv + L·2·h·d_kv).
  static int64_t expected_num_parameters(int64_t L, int64_t d, int64_t h, int64_t d_kv, int64_t l, int64_t m) {
    const int64_t out = L * 2 * h * d_kv;
    return l * d + d * m + m + m * out + out;
  }
};
TORCH_MODULE(PrefixGenerator);

class PrefixAdapter : public Adapter, public PrefixHook {
 public:
  // `layer`: this attention's index within its generator's group; `cache_key` names the generator.
  PrefixAdapter(std::string site_name, PrefixGenerator generator, std::string cache_key, int64_t layer);

  std::string kind() const override { return "prefix"; }
  std::string child_name() const override { return "prefix"; }
  void attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) override;

  std::pair<torch::Tensor, torch::Tensor> prefix(int64_t batch, const ForwardContext& ctx) override;

  // Replace the generator by this layer's evaluated prefixes (trainable parameters from then on).
  void fold(const torch::Tensor& all_layers);
  bool folded() const { return !generator_; }
  const PrefixGeneratorImpl* generator() const { return generator_ ? generator_.get() : nullptr; }
  // Make room for folded prefixes of the given shape (loading a folded adapter file).
  void fold_empty(int64_t num_heads, int64_t l, int64_t d_kv);

  torch::Tensor prefix_key, prefix_value;  // [n_heads, l, d_head] once folded

 private:
  PrefixGenerator generator_;
  std::string cache_key_;
  int64_t layer_;
};

}  // namespace peft::adapters
