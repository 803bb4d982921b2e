// LoRA (methods.md §1): y = x W^T + b + s·(Dropout(x) A^T) B^T, s = alpha / r; A ~ U(±1/sqrt(d_in)), B = 0.
#pragma once
#include <torch/nn/modules/linear.h>

#include "adapters/adapter.h"
#include "models/hooks.h"
#include "models/linear.h"

namespace peft::adapters {

struct LoraOptions {
  int64_t r = 8;
  double lora_alpha = 8.0;
  double lora_dropout = 0.0;
};

class LoraAdapter : public Adapter, public LinearHook {
 public:
  LoraAdapter(std::string site_name, AdaptableLinear base, const LoraOptions& options);

  std::string kind() const override { return "lora"; }
  void attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) override;
  bool mergeable() const override { return true; }
  void merge() override;
  void unmerge() override;

  torch::Tensor transform_output(const torch::Tensor& x, torch::Tensor y, const ForwardContext& ctx) override;
  torch::Tensor fused_forward(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              const ForwardContext& ctx) override;
  // s·B·A, the update merge() adds to W ([d_out, d_in]).
  torch::Tensor delta_weight() const;
  double scaling() const { return options_.lora_alpha / static_cast<double>(options_.r); }

  // Closed form: r·(d_in + d_out).
  static int64_t expected_num_parameters(int64_t d_in, int64_t d_out, int64_t r) { return r * (d_in + d_out); }

  torch::nn::Linear lora_A{nullptr}, lora_B{nullptr};  // weights [r, d_in], [d_out, r], as HF PEFT

 private:
  AdaptableLinear base_;
  LoraOptions options_;
};

}  // namespace peft::adapters
