#include "adapters/prefix.h"

#include "common/error.h"

namespace peft::adapters {

PrefixGeneratorImpl::PrefixGeneratorImpl(int64_t L, int64_t d, int64_t h, int64_t dkv, const PrefixOptions& o)
    : num_layers(L), num_heads(h), d_kv(dkv), num_virtual_tokens(o.num_virtual_tokens) {
  if (o.num_virtual_tokens <= 0) throw InputError("prefix num_virtual_tokens: must be positive");
  if (o.encoder_hidden_size <= 0) throw InputError("prefix encoder_hidden_size: must be positive");
  embedding = register_module("embedding", torch::nn::Embedding(o.num_virtual_tokens, d));
  transform_0 = register_module("transform_0", torch::nn::Linear(d, o.encoder_hidden_size));
  transform_2 = register_module("transform_2", torch::nn::Linear(o.encoder_hidden_size, L * 2 * h * dkv));
}

torch::Tensor PrefixGeneratorImpl::forward() {
  torch::Tensor h = transform_2(torch::tanh(transform_0(embedding->weight)));  // [l, L·2·h·d_kv]
  return h.view({num_virtual_tokens, num_layers, 2, num_heads, d_kv}).permute({1, 2, 3, 0, 4});
}

PrefixAdapter::PrefixAdapter(std::string site_name, PrefixGenerator generator, std::string cache_key, int64_t layer)
    : Adapter(std::move(site_name)), generator_(std::move(generator)), cache_key_(std::move(cache_key)), layer_(layer) {}

void PrefixAdapter::attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) {
  site.register_module(child_name(), self);
  dynamic_cast<HasPrefixHooks&>(site).prefix_hooks.push_back(std::dynamic_pointer_cast<PrefixAdapter>(self));
}

std::pair<torch::Tensor, torch::Tensor> PrefixAdapter::prefix(int64_t batch, const ForwardContext& ctx) {
  torch::Tensor keys, values;
  if (generator_) {
    // The generator runs once per forward pass; every layer of the group slices the cached result.
    torch::Tensor all;
    auto it = ctx.cache.find(cache_key_);
    if (it != ctx.cache.end()) {
      all = std::any_cast<torch::Tensor>(it->second);
    } else {
      all = generator_->forward();
      ctx.cache[cache_key_] = all;
    }
    keys = all[layer_][0];
    values = all[layer_][1];
  } else {
    keys = prefix_key;
    values = prefix_value;
  }
  return {keys.unsqueeze(0).expand({batch, -1, -1, -1}), values.unsqueeze(0).expand({batch, -1, -1, -1})};
}

void PrefixAdapter::fold(const torch::Tensor& all_layers) {
  prefix_key = register_parameter("prefix_key", all_layers[layer_][0].detach().clone());
  prefix_value = register_parameter("prefix_value", all_layers[layer_][1].detach().clone());
  generator_ = nullptr;
}

void PrefixAdapter::fold_empty(int64_t h, int64_t l, int64_t dkv) {
  fold(torch::zeros({layer_ + 1, 2, h, l, dkv}));
}

}  // namespace peft::adapters
