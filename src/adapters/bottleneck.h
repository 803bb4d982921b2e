// Bottleneck adapters (methods.md §4): f(z) = Up(act(Down(z))), Down: d -> m, Up: m -> d.
//  - sequential (Houlsby: after attention and FFN; Pfeiffer: FFN only): output <- output + f(output);
//  - parallel (He et al.): output <- output + s·f(input), input = the FFN's own input (T5: RMSNorm(x)),
//    s = 1 (parallel) or 4 (scaled parallel).
// Attached to a HasSublayerHooks module as its child `adapter` (`encoder.block.0.layer.1.adapter.adapter_down.weight`).
#pragma once
#include <torch/nn/modules/linear.h>

#include <optional>
#include <string>

#include "adapters/adapter.h"
#include "models/hooks.h"

namespace peft::adapters {

// The non-linearities the references use: relu, swish (= silu), gelu (erf), gelu_new (tanh approx.), tanh.
torch::Tensor activation(const std::string& name, const torch::Tensor& x);
void check_activation(const std::string& name);  // throws InputError naming the value

struct BottleneckOptions {
  std::string config = "pfeiffer";   // houlsby | pfeiffer | parallel | scaled_parallel
  int64_t reduction_factor = 16;     // m = d / reduction_factor ...
  int64_t bottleneck_size = 0;       // ... unless this is > 0
  std::string non_linearity;         // empty: the config's default (houlsby swish, others relu)
  std::optional<double> scaling;     // unset: the config's default (scaled_parallel 4, others 1)
  std::string init = "lora";         // lora: Down kaiming-uniform, Up 0, biases 0; bert: N(0, 0.02)
  bool cross_attention = false;      // Houlsby: also after T5's cross-attention sub-layer
};

// Fills the config-dependent defaults; throws InputError on an unknown config/init/non-linearity.
BottleneckOptions resolve(BottleneckOptions options);
bool is_parallel(const BottleneckOptions& resolved);
int64_t bottleneck_dim(const BottleneckOptions& resolved, int64_t d_model);

class BottleneckAdapter : public Adapter, public SublayerHook {
 public:
  // `options` must be resolved.
  BottleneckAdapter(std::string site_name, int64_t d_model, const BottleneckOptions& options);

  std::string kind() const override { return "bottleneck"; }
  std::string child_name() const override { return "adapter"; }
  void attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) override;

  torch::Tensor apply(const torch::Tensor& input, torch::Tensor output, const ForwardContext& ctx) override;
  torch::Tensor f(const torch::Tensor& z);  // Up(act(Down(z)))
  double scaling() const { return *options_.scaling; }

  // Closed form: 2·d·m + m + d (weights and biases of Down and Up).
  static int64_t expected_num_parameters(int64_t d, int64_t m) { return 2 * d * m + m + d; }

  torch::nn::Linear adapter_down{nullptr}, adapter_up{nullptr};

 private:
  BottleneckOptions options_;
  bool parallel_;
};

}  // namespace peft::adapters
