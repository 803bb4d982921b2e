// (IA)^3 (methods.md §3): a vector l (init ones) scaling a linear's output (attention k, v:
// y = (x W^T + b) ⊙ l) or its input (FFN output projection, "feedforward": y = (x ⊙ l) W^T + b).
// Stored as HF PEFT stores it: `ia3_l` of shape [d_out, 1] (output scaling) or [1, d_in] (input scaling).
#pragma once
#include "adapters/adapter.h"
#include "models/hooks.h"
#include "models/linear.h"

namespace peft::adapters {

class Ia3Adapter : public Adapter, public LinearHook {
 public:
  Ia3Adapter(std::string site_name, AdaptableLinear base, bool is_feedforward);

  std::string kind() const override { return "ia3"; }
  void attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) override;
  bool mergeable() const override { return true; }
  void merge() override;
  void unmerge() override;

  torch::Tensor transform_input(const torch::Tensor& x, const ForwardContext& ctx) override;
  torch::Tensor transform_output(const torch::Tensor& x, torch::Tensor y, const ForwardContext& ctx) override;

  bool is_feedforward() const { return is_feedforward_; }
  // Closed form: d_in for input scaling, d_out for output scaling.
  static int64_t expected_num_parameters(int64_t d_in, int64_t d_out, bool is_feedforward) {
    return is_feedforward ? d_in : d_out;
  }

  torch::Tensor ia3_l;

 private:
  AdaptableLinear base_;
  bool is_feedforward_;
};

}  // namespace peft::adapters
