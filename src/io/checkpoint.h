// A Hugging Face model directory: config.json + model.safetensors (or a sharded index).
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "io/safetensors.h"

namespace peft::io {

struct HfCheckpoint {
  std::filesystem::path dir;
  nlohmann::json config;  // config.json as written by transformers
  TensorMap tensors;      // stored names, as in the file(s)
};

// Reads config.json and the weights (model.safetensors, or model.safetensors.index.json shards).
// A directory holding only pytorch_model.bin gets an InputError that says how to convert it.
HfCheckpoint read_hf_checkpoint(const std::filesystem::path& dir, torch::Dtype dtype = torch::kFloat32);

// Reads and parses a JSON file; syntax errors are InputErrors naming the file and line.
nlohmann::json read_json(const std::filesystem::path& path);

// Copies `tensors` into the module's parameters and buffers by name. Reports every missing, unexpected and
// wrongly shaped name in one InputError (naming `source`). `ignore`: stored names to skip silently
// (e.g. BERT's `embeddings.position_ids`).
void load_weights(torch::nn::Module& module, const TensorMap& tensors, const std::string& source,
                  const std::vector<std::string>& ignore = {});

}  // namespace peft::io
