#include "adapters/bottleneck.h"

#include <cmath>

#include "common/error.h"

namespace peft::adapters {

void check_activation(const std::string& name) {
  if (name == "relu" || name == "swish" || name == "silu" || name == "gelu" || name == "gelu_new" || name == "tanh")
    return;
  throw InputError("adapter non_linearity: unknown value '" + name +
                   "', expected relu, swish, silu, gelu, gelu_new or tanh");
}

torch::Tensor activation(const std::string& name, const torch::Tensor& x) {
  if (name == "relu") return torch::relu(x);
  if (name == "swish" || name == "silu") return x * torch::sigmoid(x);
  if (name == "gelu") return torch::gelu(x);
  if (name == "gelu_new") return torch::gelu(x, "tanh");
  if (name == "tanh") return torch::tanh(x);
  check_activation(name);
  return x;
}

BottleneckOptions resolve(BottleneckOptions o) {
  if (o.config != "houlsby" && o.config != "pfeiffer" && o.config != "parallel" && o.config != "scaled_parallel")
    throw InputError("adapter config: unknown value '" + o.config +
                     "', expected houlsby, pfeiffer, parallel or scaled_parallel");
  if (o.non_linearity.empty()) o.non_linearity = o.config == "houlsby" ? "swish" : "relu";
  check_activation(o.non_linearity);
  if (!o.scaling) o.scaling = o.config == "scaled_parallel" ? 4.0 : 1.0;
  if (o.init != "lora" && o.init != "bert")
    throw InputError("adapter init: unknown value '" + o.init + "', expected lora or bert");
  if (o.bottleneck_size <= 0 && o.reduction_factor <= 0)
    throw InputError("adapter reduction_factor: must be positive, got " + std::to_string(o.reduction_factor));
  return o;
}

bool is_parallel(const BottleneckOptions& o) { return o.config == "parallel" || o.config == "scaled_parallel"; }

int64_t bottleneck_dim(const BottleneckOptions& o, int64_t d_model) {
  const int64_t m = o.bottleneck_size > 0 ? o.bottleneck_size : d_model / o.reduction_factor;
  if (m <= 0)
    throw InputError("adapter reduction_factor: " + std::to_string(o.reduction_factor) + " leaves no bottleneck for d = " +
                     std::to_string(d_model));
  return m;
}

BottleneckAdapter::BottleneckAdapter(std::string site_name, int64_t d, const BottleneckOptions& options)
    : Adapter(std::move(site_name)), options_(options), parallel_(is_parallel(options)) {
  const int64_t m = bottleneck_dim(options_, d);
  adapter_down = register_module("adapter_down", torch::nn::Linear(d, m));
  adapter_up = register_module("adapter_up", torch::nn::Linear(m, d));
  torch::NoGradGuard no_grad;
  if (options_.init == "lora") {
    // A fresh adapter is an exact no-op (Up = 0) while Down already passes a signal.
    torch::nn::init::kaiming_uniform_(adapter_down->weight, std::sqrt(5.0));
    adapter_up->weight.zero_();
  } else {
    adapter_down->weight.normal_(0.0, 0.02);
    adapter_up->weight.normal_(0.0, 0.02);
  }
  adapter_down->bias.zero_();
  adapter_up->bias.zero_();
}

void BottleneckAdapter::attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) {
  site.register_module(child_name(), self);
  dynamic_cast<HasSublayerHooks&>(site).sublayer_hooks.push_back(std::dynamic_pointer_cast<BottleneckAdapter>(self));
}

torch::Tensor BottleneckAdapter::f(const torch::Tensor& z) {
  return adapter_up(activation(options_.non_linearity, adapter_down(z)));
}

torch::Tensor BottleneckAdapter::apply(const torch::Tensor& input, torch::Tensor output, const ForwardContext&) {
  if (parallel_) return output + f(input) * *options_.scaling;
  return output + f(output);
}

}  // namespace peft::adapters
