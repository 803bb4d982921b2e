// An adapter folder: adapter_model.safetensors + adapter_config.json. LoRA and (IA)^3 use Hugging Face
// PEFT's tensor names (`base_model.model.<module>.lora_A.weight`, `...ia3_l`) and config fields (PEFT 0.6),
// so the folder loads with `PeftModel.from_pretrained`. Other kinds use the model's parameter names under
// the same `base_model.model.` prefix and a peft_type of our own with a format_version.
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>

#include "adapters/inject.h"

namespace peft::adapters {

inline constexpr int kAdapterFormatVersion = 1;
inline constexpr const char* kSavedPrefix = "base_model.model.";

nlohmann::json adapter_config(const AdapterSet& set, bool folded);
// The spec a config describes (kind and options); InputError naming `source` and the key.
AdapterSpec spec_from_config(const nlohmann::json& config, const std::string& source);

// True when the set's adapters are AdaMix mixtures (AdamixLora / AdamixBottleneck).
bool has_adamix(const AdapterSet& set);

// The tensors save_adapter writes, by saved name. An AdaMix set writes its merged adapter (uniform mean of
// the copies, detached) in the base kind's names, so the folder loads as a plain LoRA / bottleneck adapter.
std::map<std::string, torch::Tensor> adapter_state(const torch::nn::Module& model, const AdapterSet& set);

void save_adapter(const std::filesystem::path& dir, const torch::nn::Module& model, const AdapterSet& set);

// Injects the adapters the folder describes into `model` and loads their tensors. Names and shapes must
// match exactly; a mismatch is an InputError naming the file and the tensor.
AdapterSet load_adapter(const std::filesystem::path& dir, torch::nn::Module& model, const ModelInfo& info);

// Loads tensors into an already injected set (same checks).
void load_adapter_weights(const std::filesystem::path& file, const torch::nn::Module& model, const AdapterSet& set);

}  // namespace peft::adapters
