// AdaMix, mixture of adaptations (methods.md §7): E copies of each adapter projection; in training every
// forward draws ONE copy per projection uniformly at random for the whole batch (independently per
// projection and per site; torch's CPU generator), so only that copy gets gradients; evaluation uses the
// uniform mean of the copies, recomputed from the current copies at every call (never cached), with no
// randomness. merge_to_base-style accessors return that mean as a plain adapter of the base kind.
//  - AdamixLora: LoRA variant on an AdaptableLinear (default share "up": one B, E copies of A).
//  - AdamixBottleneck: bottleneck variant on a sub-layer (Pfeiffer: FFN output; default share "up").
// Copies are separate parameters (`lora_A.0.weight`, `adapter_down.1.weight`, ...) as in microsoft/AdaMix,
// so a copy not drawn in a step has an undefined grad and the optimizer skips it (no decay, no momentum).
#pragma once
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/linear.h>

#include <string>
#include <utility>

#include "adapters/adapter.h"
#include "adapters/bottleneck.h"
#include "adapters/lora.h"
#include "models/hooks.h"
#include "models/linear.h"

namespace peft::adapters {

struct AdamixOptions {
  int64_t num_experts = 4;    // E
  std::string share = "up";   // up: one shared Up/B copy; down: one shared Down/A copy; none
};

// Throws InputError naming the key on E < 1 or an unknown `share`.
void check_adamix(const AdamixOptions& options);

// Uniform draw of one index in [0, n) from torch's default CPU generator (0 without drawing when n == 1).
int64_t draw_copy(int64_t n);

class AdamixLora : public Adapter, public LinearHook {
 public:
  AdamixLora(std::string site_name, AdaptableLinear base, const LoraOptions& lora, const AdamixOptions& adamix);

  std::string kind() const override { return "adamix_lora"; }
  void attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) override;
  bool mergeable() const override { return true; }
  void merge() override;    // W += s·B̄Ā
  void unmerge() override;

  torch::Tensor transform_output(const torch::Tensor& x, torch::Tensor y, const ForwardContext& ctx) override;

  // The merged (mean) LoRA: {Ā [r, d_in], B̄ [d_out, r]}, detached; save it in the LoRA format.
  std::pair<torch::Tensor, torch::Tensor> averaged_lora() const;
  double scaling() const { return lora_.lora_alpha / static_cast<double>(lora_.r); }
  int64_t num_A() const { return static_cast<int64_t>(lora_A->size()); }
  int64_t num_B() const { return static_cast<int64_t>(lora_B->size()); }
  torch::Tensor A(int64_t i) const;  // copy i's weight [r, d_in]
  torch::Tensor B(int64_t i) const;  // copy i's weight [d_out, r]
  // Copies drawn by the last training forward ({-1, -1} before any).
  std::pair<int64_t, int64_t> last_route() const { return last_route_; }

  torch::nn::ModuleList lora_A{nullptr}, lora_B{nullptr};  // Linear(d_in, r) / Linear(r, d_out), no bias

 private:
  AdaptableLinear base_;
  LoraOptions lora_;
  AdamixOptions adamix_;
  std::pair<int64_t, int64_t> last_route_{-1, -1};
};

// The averaged bottleneck (Down: d -> m, Up: m -> d), in BottleneckAdapter's parameter layout.
struct AveragedBottleneck {
  torch::Tensor down_weight, down_bias;  // [m, d], [m]
  torch::Tensor up_weight, up_bias;      // [d, m], [d]
};

class AdamixBottleneck : public Adapter, public SublayerHook {
 public:
  // `bottleneck` must be resolved (adapters::resolve); its init is ignored: copies are N(0, 0.02), biases 0.
  AdamixBottleneck(std::string site_name, int64_t d_model, const BottleneckOptions& bottleneck,
                   const AdamixOptions& adamix);

  std::string kind() const override { return "adamix_bottleneck"; }
  std::string child_name() const override { return "adapter"; }
  void attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) override;

  torch::Tensor apply(const torch::Tensor& input, torch::Tensor output, const ForwardContext& ctx) override;

  AveragedBottleneck averaged() const;
  // Writes the average into a plain BottleneckAdapter with the same options (for saving as "bottleneck").
  void copy_averaged_into(BottleneckAdapter& target) const;
  int64_t num_down() const { return static_cast<int64_t>(adapter_down->size()); }
  int64_t num_up() const { return static_cast<int64_t>(adapter_up->size()); }
  torch::nn::Linear down(int64_t i) const { return adapter_down->ptr<torch::nn::LinearImpl>(i); }
  torch::nn::Linear up(int64_t i) const { return adapter_up->ptr<torch::nn::LinearImpl>(i); }
  std::pair<int64_t, int64_t> last_route() const { return last_route_; }
  double scaling() const { return *bottleneck_.scaling; }

  torch::nn::ModuleList adapter_down{nullptr}, adapter_up{nullptr};

 private:
  BottleneckOptions bottleneck_;
  AdamixOptions adamix_;
  bool parallel_;
  std::pair<int64_t, int64_t> last_route_{-1, -1};
};

// AdaMix consistency term: ½[KL(p₂‖p₁) + KL(p₁‖p₂)], p = softmax(logits, -1), each KL's target side
// detached (KL(p₂‖p₁) trains only logits_p, KL(p₁‖p₂) only logits_q), KL summed over the last dim and
// averaged over the positions where `mask` is nonzero (all positions when `mask` is undefined). Computed
// in fp32; 0 when no position is selected. Shapes: logits [..., V], mask [...].
torch::Tensor consistency_loss(const torch::Tensor& logits_p, const torch::Tensor& logits_q,
                               const torch::Tensor& mask = {});

}  // namespace peft::adapters
