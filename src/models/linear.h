// A frozen linear layer that adapters can attach to. Parameters are named as torch.nn.Linear names them
// (`weight` [out, in], optional `bias`), so the module path is the Hugging Face name.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <vector>

#include "models/context.h"
#include "models/hooks.h"

namespace peft {

class AdaptableLinearImpl : public torch::nn::Module {
 public:
  AdaptableLinearImpl(int64_t in_features, int64_t out_features, bool with_bias);

  torch::Tensor forward(const torch::Tensor& x, const ForwardContext& ctx);
  // The base computation only (no hooks): x W^T + b.
  torch::Tensor base_forward(const torch::Tensor& x) const;

  void add_hook(std::shared_ptr<LinearHook> hook) { hooks_.push_back(std::move(hook)); }
  void clear_hooks() { hooks_.clear(); }
  const std::vector<std::shared_ptr<LinearHook>>& hooks() const { return hooks_; }

  int64_t in_features, out_features;
  torch::Tensor weight, bias;  // bias undefined when absent

 private:
  std::vector<std::shared_ptr<LinearHook>> hooks_;
};
TORCH_MODULE(AdaptableLinear);

}  // namespace peft
