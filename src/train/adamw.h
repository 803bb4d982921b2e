// AdamW as torch::optim::AdamW computes it (decoupled weight decay, bias corrections, eps outside the square
// root), with each CPU float32 parameter updated in one pass: LibTorch 1.13's step runs eight element-wise
// ops per parameter (mul_, mul_ + add_, mul_ + addcmul_, sqrt, div, add_, addcdiv_), each a trip through
// memory. The state (step, exp_avg, exp_avg_sq) is torch::optim::AdamW's own, so optimizer checkpoints load
// into either class. amsgrad, other devices and dtypes go through torch::optim::AdamW::step.
#pragma once
#include <torch/torch.h>

#include <vector>

namespace peft::train {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;

  // Parameter updates done by the fused loop so far (those that fell back to AdamW::step are not counted).
  int64_t fused_updates() const { return fused_updates_; }

 private:
  int64_t fused_updates_ = 0;
};

}  // namespace peft::train
