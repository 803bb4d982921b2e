// A pre-trained Poly/MHR inventory on a model: attaching it from a config, its parameter groups (routing
// logits get their own learning rate), and its files: inventory.safetensors (the model's parameter names)
// plus manifest.json (format_version, method, task names in routing order, S, h, r, targets, sites).
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "adapters/inject.h"
#include "config/config.h"
#include "models/t5/model.h"
#include "routing/poly.h"
#include "train/loop.h"

namespace peft::train {

inline constexpr int kInventoryFormatVersion = 1;

struct Inventory {
  std::vector<std::pair<std::string, routing::PolyLoRA>> sites;  // by linear name, in module order
  std::vector<std::string> task_names;                         // routing rows

  std::vector<ParamGroup> param_groups(const Config& config) const;
  // Routing weights in evaluation mode (sigmoid, normalised), averaged over heads and adapted layers: [T][S].
  std::vector<std::vector<double>> task_skill_matrix() const;
  nlohmann::json manifest(const Config& config) const;
  void save(const std::filesystem::path& dir, const torch::nn::Module& model, const Config& config) const;
};

routing::PolyOptions poly_options(const Config& config, int64_t n_tasks);
std::string poly_targets(const Config& config);

// Attaches a fresh inventory (Z ~ U(±1e-3), B = 0) for `task_names` at the configured targets.
Inventory attach_inventory(torch::nn::Module& model, const Config& config, const std::vector<std::string>& task_names);

// Attaches the inventory saved in `dir` (manifest.json + inventory.safetensors) and loads its tensors. Every
// mismatch (names, shapes, format_version) is an InputError naming the file and the tensor or key.
Inventory load_inventory(const std::filesystem::path& dir, torch::nn::Module& model);

// Config -> adapter spec for the single-adapter kinds; ModelInfo of a T5 model.
adapters::AdapterSpec adapter_spec(const Config& config);
// The adamix.* keys as the adapters' options (E copies, the shared projection).
adapters::AdamixOptions adamix_options(const Config& config);
adapters::ModelInfo model_info(const T5ForConditionalGenerationImpl& model);

struct PretrainSummary;
void write_pretrain_summary(const std::filesystem::path& path, const Config& config, const PretrainSummary& summary,
                            size_t n_tasks);

}  // namespace peft::train
