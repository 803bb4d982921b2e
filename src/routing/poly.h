// Poly (Polytropon) and MHR (multi-head routing) over an inventory of LoRA skills — methods.md §2.
//
// Per adapted linear: A-inventory lora_a (h, S, d_in/h, r), B-inventory lora_b (h, S, r, d_out/h) and a
// router with module_logits Z (T, h*S). For a task t and head q the routing weights over skills are
// w = u / (sum_s u + 1e-12), u = sigmoid(Z[t]) in evaluation and a relaxed-Bernoulli sample in training.
// Parameters are mixed, not outputs: A_t = [sum_s w_1s A_1s; ...; sum_s w_hs A_hs] (d_in, r), likewise B_t
// (r, d_out), and y = x W^T + (x A_t B_t) / r. Poly is h = 1.
#pragma once
#include <torch/torch.h>

#include <string>

#include "models/hooks.h"
#include "models/linear.h"

namespace peft::routing {

enum class Sampling { kRelaxedBernoulli, kSigmoid, kStraightThrough };
enum class InventoryInit { kMhr, kKaimingPerHead };

struct PolyOptions {
  int64_t n_tasks = 1;
  int64_t n_skills = 8;   // S
  int64_t n_heads = 1;    // h: 1 = Poly, > 1 = MHR
  int64_t rank = 16;      // r
  Sampling train_sampling = Sampling::kRelaxedBernoulli;
  double temperature = 1.0;  // tau of the relaxed Bernoulli
  InventoryInit init = InventoryInit::kMhr;
};

Sampling parse_sampling(const std::string& name);
InventoryInit parse_inventory_init(const std::string& name);

// The routing matrix of one adapted linear. Its only parameter is `module_logits` (own learning rate).
class RouterImpl : public torch::nn::Module {
 public:
  RouterImpl(int64_t n_tasks, int64_t n_heads, int64_t n_skills, Sampling train_sampling, double temperature);
  // Routing weights for the given task ids: [n, h, S], each head's row summing to 1.
  torch::Tensor weights(const torch::Tensor& task_ids, bool training) const;
  // Replaces the rows with `n_tasks` fresh ones ~ U(-1e-3, 1e-3) (few-shot adaptation to new tasks).
  void reset_tasks(int64_t n_tasks);

  torch::Tensor module_logits;  // [T, h*S]
  int64_t n_heads, n_skills;
  Sampling train_sampling;
  double temperature;
};
TORCH_MODULE(Router);

// Inventory + router on one linear; attaches as a LinearHook. Registered as child `poly_lora` of the linear,
// so its parameters are named `<linear>.poly_lora.lora_a`, `.lora_b`, `.router.module_logits`.
class PolyLoRAImpl : public torch::nn::Module, public LinearHook {
 public:
  PolyLoRAImpl(int64_t in_features, int64_t out_features, const PolyOptions& options, const std::string& name);

  torch::Tensor transform_output(const torch::Tensor& x, torch::Tensor y, const ForwardContext& ctx) override;
  torch::Tensor fused_forward(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                              const ForwardContext& ctx) override;

  // Mixed factors for each of the given (distinct) tasks: A [U, d_in, r] (the transposed view of a contiguous
  // [U, r, d_in]), B [U, r, d_out].
  std::pair<torch::Tensor, torch::Tensor> mixed_factors(const torch::Tensor& unique_tasks, bool training) const;
  // Mixed factors for explicit routing weights [U, h, S] (uniform weights give the MHR-mu collapse).
  std::pair<torch::Tensor, torch::Tensor> mix(const torch::Tensor& weights) const;

  torch::Tensor lora_a, lora_b;  // [h, S, d_in/h, r], [h, S, r, d_out/h]
  Router router{nullptr};
  int64_t in_features, out_features;
  PolyOptions options;

 private:
  // The mixed factors of the context's distinct tasks (mixed_factors, cached across decoding steps), and 1/r.
  std::pair<torch::Tensor, torch::Tensor> context_factors(const ForwardContext& ctx) const;
  double scale() const { return 1.0 / static_cast<double>(options.rank); }
};
TORCH_MODULE(PolyLoRA);

// Attaches a PolyLoRA to every AdaptableLinear whose full module name matches `target_regex`
// (std::regex_match, as HF PEFT). Fails (InputError) when nothing matches or a dimension is not divisible
// by h, naming the layer and suggesting a divisor. Returns the attached modules by linear name.
std::vector<std::pair<std::string, PolyLoRA>> attach_poly(torch::nn::Module& model, const std::string& target_regex,
                                                          const PolyOptions& options);

// Task grouping of the batch, computed once per forward and shared by every adapted layer.
struct TaskGroups {
  torch::Tensor unique;   // [U] distinct task ids, sorted
  torch::Tensor inverse;  // [B] index into `unique` for each row
};
const TaskGroups& task_groups(const ForwardContext& ctx);

}  // namespace peft::routing
