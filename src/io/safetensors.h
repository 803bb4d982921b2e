// safetensors: https://github.com/huggingface/safetensors — 8-byte little-endian header length, a JSON
// header {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}, then the raw bytes.
// Reading memory-maps the file; tensors are views of the mapping when no dtype conversion is needed.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>

namespace peft::io {

using TensorMap = std::map<std::string, torch::Tensor>;

// Reads every tensor. `dtype`: convert floating tensors (F32/F16/BF16) to it; std::nullopt keeps the stored dtype.
// Errors (truncated file, header lying about sizes, unknown dtype, ...) are InputErrors naming file and tensor.
TensorMap read_safetensors(const std::filesystem::path& path, std::optional<torch::Dtype> dtype = torch::kFloat32);

// Only the header: name -> (dtype string, shape). For `peft inspect` without touching the data.
struct TensorHeader {
  std::string dtype;
  std::vector<int64_t> shape;
};
std::map<std::string, TensorHeader> read_safetensors_header(const std::filesystem::path& path,
                                                            std::map<std::string, std::string>* metadata = nullptr);

// Writes atomically (temporary file, then rename). Tensors are written contiguous, on CPU, in their dtype.
void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata = {{"format", "pt"}});

}  // namespace peft::io
