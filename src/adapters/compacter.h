// Compacter / Compacter++ (methods.md §5): a bottleneck adapter whose Down and Up are PHM layers,
// H = Σ_i C_i ⊗ (W_left_i W_right_i), y = x H + b. The rule C (n × n × n) is ONE parameter shared by every
// PHM layer of the model (owned by the injector, registered on the model root as `compacter_shared.phm_rule`).
// Compacter = Houlsby placement (attention + FFN), Compacter++ = Pfeiffer placement (FFN only).
#pragma once
#include <string>

#include "adapters/adapter.h"
#include "models/hooks.h"

namespace peft::adapters {

struct CompacterOptions {
  bool plus_plus = false;          // Compacter++ (FFN only)
  int64_t phm_dim = 4;             // n
  int64_t reduction_factor = 32;   // m = d / reduction_factor
  std::string non_linearity = "gelu";
  double phm_init_range = 1e-4;    // C ~ N(0, phm_init_range)
  bool cross_attention = false;    // Compacter: also after T5's cross-attention sub-layer
};

// The shared rule C.
class CompacterSharedImpl : public torch::nn::Module {
 public:
  CompacterSharedImpl(int64_t phm_dim, double init_range);
  torch::Tensor phm_rule;  // [n, n, n]: phm_rule[i] = C_i
};
TORCH_MODULE(CompacterShared);

// H = Σ_i C_i ⊗ (W_left_i W_right_i) as one [in, out] matrix.
torch::Tensor phm_weight(const torch::Tensor& phm_rule, const torch::Tensor& W_left, const torch::Tensor& W_right);

class PhmLinearImpl : public torch::nn::Module {
 public:
  PhmLinearImpl(int64_t in_features, int64_t out_features, int64_t phm_dim, torch::Tensor shared_phm_rule);
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor W_left, W_right, b;  // [n, in/n, 1], [n, 1, out/n], [out]
  torch::Tensor phm_rule;            // shared, not registered here

  // Closed form without the shared rule: in + out (rank-1 factors) + out (bias).
  static int64_t expected_num_parameters(int64_t in, int64_t out) { return in + 2 * out; }
};
TORCH_MODULE(PhmLinear);

class CompacterAdapter : public Adapter, public SublayerHook {
 public:
  CompacterAdapter(std::string site_name, int64_t d_model, const CompacterOptions& options, CompacterShared shared);

  std::string kind() const override { return "compacter"; }
  std::string child_name() const override { return "adapter"; }
  void attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) override;
  torch::Tensor apply(const torch::Tensor& input, torch::Tensor output, const ForwardContext& ctx) override;

  // Per adapter, closed form: 3·d + 3·m (shared rule counted once per model: n³).
  static int64_t expected_num_parameters(int64_t d, int64_t m) { return 3 * d + 3 * m; }

  PhmLinear adapter_down{nullptr}, adapter_up{nullptr};

 private:
  CompacterOptions options_;
};

}  // namespace peft::adapters
