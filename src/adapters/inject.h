// Injection by module name (methods.md §0) and everything the training code does with the result:
// list trainable parameters, count them, merge/unmerge, fold prefixes.
//
//   AdapterSpec spec;  spec.kind = "lora";  spec.lora.r = 16;   // target_modules empty: the kind's default
//   AdapterSet set = inject(model, spec, info);                 // freezes the backbone
//   auto params = set.trainable_parameters(model);              // for the optimiser
//   ParameterCount c = count_parameters(model);                 // caller logs it
//   save_adapter(dir, model, set);  ... load_adapter(dir, model2, info);   (adapters/checkpoint.h)
//   set.merge(); set.unmerge();
#pragma once
#include <nlohmann/json.hpp>

#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "adapters/adamix.h"
#include "adapters/adapter.h"
#include "adapters/bottleneck.h"
#include "adapters/compacter.h"
#include "adapters/lora.h"
#include "adapters/mam.h"
#include "adapters/prefix.h"
#include "adapters/prompt.h"

namespace peft::adapters {

// HF PEFT's `target_modules`: a string is a regex that must match the FULL module name; a list matches
// names equal to an entry or ending with "." + entry.
struct TargetModules {
  std::optional<std::string> regex;
  std::vector<std::string> names;

  static TargetModules pattern(std::string regex) { return {std::move(regex), {}}; }
  static TargetModules list(std::vector<std::string> names) { return {std::nullopt, std::move(names)}; }
  bool specified() const { return regex.has_value() || !names.empty(); }
  bool matches(const std::string& module_name) const;
  std::string describe() const;  // as the user wrote it: 'q|v' or [q, v]
  nlohmann::json to_json() const;  // string or list; null when unspecified
  static TargetModules from_json(const nlohmann::json& j);
};

struct AdapterSpec {
  std::string kind = "lora";  // lora | ia3 | bottleneck | compacter | prefix | prompt | mam
  TargetModules target_modules;       // unspecified: default_targets(kind, family)
  TargetModules feedforward_modules;  // (IA)^3: input-scaled linears; unspecified: the default
  std::vector<std::string> modules_to_save;  // whole modules trained too (e.g. "classifier")
  LoraOptions lora;
  BottleneckOptions bottleneck;
  CompacterOptions compacter;
  PrefixOptions prefix;
  PromptOptions prompt;
  MamOptions mam;
  // AdaMix (methods.md §7): E copies of the lora / bottleneck projections instead of one. Saved merged, in
  // the base kind's format (adapter_config.json never mentions it).
  std::optional<AdamixOptions> adamix;
  std::string base_model_name_or_path;  // recorded in adapter_config.json
  std::string task_type;                // SEQ_2_SEQ_LM, SEQ_CLS, ...
};

// Default targets per kind and model family (methods.md §0, §3). LoRA: T5 [q, k, v, o], BERT [query, value].
// (IA)^3: T5 [k, v, wo] with feedforward [wo]; BERT a regex for key, value and the FFN's output.dense
// (not attention.output.dense, which a plain `output.dense` suffix would also catch).
TargetModules default_targets(const std::string& kind, const std::string& family);
TargetModules default_feedforward_modules(const std::string& family);

struct ParameterCount {
  int64_t trainable = 0, total = 0;
  double percent() const { return total ? 100.0 * static_cast<double>(trainable) / static_cast<double>(total) : 0.0; }
};
// Counts every parameter once (tied/shared tensors once), trainable = requires_grad.
ParameterCount count_parameters(const torch::nn::Module& model);

struct AdapterSet {
  AdapterSpec spec;
  ModelInfo info;
  std::vector<std::shared_ptr<Adapter>> adapters;  // in module order
  // Modules shared by many adapters, registered on the model root (compacter rule, prefix generators).
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> shared;
  std::vector<std::string> modules_to_save;  // matched module names

  // Parameters owned by the adapters, the shared modules and modules_to_save, with the model's names.
  std::vector<std::pair<std::string, torch::Tensor>> named_trainable_parameters(const torch::nn::Module& model) const;
  std::vector<torch::Tensor> trainable_parameters(const torch::nn::Module& model) const;
  std::vector<std::string> site_names() const;
  int64_t num_adapter_parameters() const;  // adapters + shared modules

  bool mergeable() const;
  void merge();    // every adapter; InputError for kinds that cannot merge
  void unmerge();
  // Prefix tuning: evaluate each generator once, keep only P_k, P_v, drop the generators from `model`.
  void fold(torch::nn::Module& model);
};

// Attaches adapters of `spec.kind` at every matching site, freezes everything else, unfreezes
// modules_to_save. InputError when target_modules or a modules_to_save entry matches nothing.
AdapterSet inject(torch::nn::Module& model, const AdapterSpec& spec, const ModelInfo& info);

}  // namespace peft::adapters
