// The few-shot adaptation variants of methods.md §2 (and the single-adapter baselines): what each one
// attaches to a fresh frozen backbone, what it trains, and how many parameters that is per task.
//
//   poly, mhr        load the inventory, replace the routing by ONE fresh row (task id 0); train A, B and Z_new
//   poly-z, mhr-z    same, inventory frozen: only module_logits train (h·S per adapted linear)
//   poly-mu, mhr-mu  collapse each linear's inventory to one LoRA (Ā, B̄ = per-head mean over skills, heads
//                    stacked), scale 1/r, no routing; implemented with adapters' LoRA (lora_alpha = 1,
//                    lora_A = Āᵀ, lora_B = B̄ᵀ), so it saves and merges like any LoRA
//   lora             a fresh LoRA, scale 1/r (= Poly with S = 1), rank and targets of the inventory when there
//                    is one, else adapter.r / adapter.target_modules
//   ia3, adapter, compacter, prefix, mam
//                    fresh adapters (adapters::inject with train::adapter_spec(config), kind overridden;
//                    adapter = pfeiffer, or houlsby when adapter.kind is houlsby; compacter = compacter, or
//                    compacter++ when adapter.kind is compacterpp)
//   adamix           AdaMix over the `lora` variant's LoRA (methods.md §7): adamix.num_experts copies of A / B
//                    (adamix.share kept single), one random copy per projection per forward, two passes with
//                    the symmetric-KL consistency term (adamix.consistency_weight); evaluated and saved merged
//   adamix-adapter   the same over the `adapter` variant's bottleneck adapter (the paper's reference form)
//   shared-lora      the pre-training run's adapter/ (routing.method none), fine-tuned
//   full             every backbone weight
//   zero-shot        nothing trains: with an inventory the μ adapter untrained (uniform routing), with a
//                    shared-LoRA run its adapter, without a pre-training run the bare backbone
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "adapters/inject.h"
#include "config/config.h"
#include "models/t5/model.h"
#include "train/inventory.h"
#include "train/loop.h"

namespace peft::train {

enum class VariantFamily {
  kRouted,        // poly, mhr
  kRoutingOnly,   // poly-z, mhr-z
  kCollapsed,     // poly-mu, mhr-mu
  kFreshAdapter,  // lora, ia3, adapter, compacter, prefix, mam
  kAdamix,        // adamix, adamix-adapter
  kSharedLora,    // shared-lora
  kFull,          // full
  kZeroShot,      // zero-shot
};

struct VariantInfo {
  std::string name;
  VariantFamily family;
  std::string routing_method;  // "poly" | "mhr" for the inventory variants, else ""
  std::string adapter_kind;    // fresh adapters and AdaMix: lora | ia3 | adapter | compacter | prefix | mam
};

// Every variant, in methods.md order.
const std::vector<VariantInfo>& all_variants();
std::vector<std::string> variant_names();
// InputError "adapt.variants: unknown variant 'x' (valid: poly, mhr, ...)".
const VariantInfo& find_variant(const std::string& name);

// What the pre-training run folder (adapt.pretrained) holds.
struct Pretrained {
  std::filesystem::path dir;  // empty: no pre-training run given
  std::string method;         // "poly" | "mhr" (inventory), "shared" (adapter/), "" (none)
  nlohmann::json manifest;    // inventory runs: manifest.json

  bool has_inventory() const { return method == "poly" || method == "mhr"; }
  bool has_shared_adapter() const { return method == "shared"; }
};

// Reads the folder's kind (manifest.json + inventory.safetensors, or adapter/adapter_config.json). An empty
// path gives an empty Pretrained; a folder holding neither is an InputError naming adapt.pretrained.
Pretrained open_pretrained(const std::filesystem::path& dir);

// InputError (naming adapt.variants / adapt.pretrained) when `variant` cannot run on `pretrained`: an
// inventory variant without an inventory or of the other family (poly-* needs a Poly run, mhr-* an MHR run),
// shared-lora without a shared-LoRA run.
void check_variant_runs_on(const VariantInfo& variant, const Pretrained& pretrained);

// What attach_variant put on the model.
struct AttachedVariant {
  std::string variant;
  Inventory inventory;               // poly/mhr(-z): the loaded inventory, routing reset to one fresh row
  adapters::AdapterSet adapter_set;  // every other variant that attaches something
  bool has_adapter_set = false;
  std::vector<ParamGroup> groups;    // what trains; empty = nothing (zero-shot)
  int64_t trainable_params = 0;      // elements over `groups`, each tensor once
  int64_t merged_params = 0;         // AdaMix: elements of the merged adapter (0 otherwise)
  double consistency_weight = 0;     // AdaMix: weight of the two-pass consistency term (0: one pass)

  bool routed() const { return !inventory.sites.empty(); }
};

// The run a variant adapts: among `runs` (adapt.pretrained first, then adapt.more_pretrained), the first one
// it can run on; runs[0] for the variants that need no particular run. When none fits, the InputError of
// check_variant_runs_on for runs[0].
const Pretrained& pretrained_for(const VariantInfo& variant, const std::vector<Pretrained>& runs);

// Attaches what `variant` needs to a fresh frozen backbone and lists its parameter groups: adapted weights
// at adapt.learning_rate, routing logits at adapt.z_learning_rate, weight decay train.weight_decay.
AttachedVariant attach_variant(T5ForConditionalGenerationImpl& model, const std::string& variant,
                               const Pretrained& pretrained, const Config& config);

// The μ collapse of one adapted linear: lora_a [h, S, d_in/h, r], lora_b [h, S, r, d_out/h] ->
// Ā [d_in, r] (head q owns input rows q·d_in/h ...), B̄ [r, d_out] (head q owns output columns); each head's
// factor is the mean over its S skills. Equals PolyLoRAImpl::mix with uniform weights.
std::pair<torch::Tensor, torch::Tensor> collapse_skills(const torch::Tensor& lora_a, const torch::Tensor& lora_b);

// Elements over the groups' tensors, each tensor counted once.
int64_t count_group_parameters(const std::vector<ParamGroup>& groups);

}  // namespace peft::train
