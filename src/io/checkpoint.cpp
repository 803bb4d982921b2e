#include "io/checkpoint.h"

#include <algorithm>
#include <set>
#include <sstream>

#include "common/error.h"
#include "common/files.h"

namespace peft::io {
namespace {

std::string shape_str(torch::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

}  // namespace

nlohmann::json read_json(const std::filesystem::path& path) {
  const std::string content = read_file(path);
  try {
    return nlohmann::json::parse(content);
  } catch (const nlohmann::json::parse_error& e) {
    // e.byte is 1-based and points just past the offending character.
    const size_t end = std::min(content.size(), e.byte > 0 ? e.byte - 1 : 0);
    const int line = 1 + static_cast<int>(std::count(content.begin(), content.begin() + end, '\n'));
    std::string msg = e.what();
    // Drop nlohmann's "[json.exception.parse_error.101] parse error at line 3, column 5: " prefix: we say the line.
    const auto colon = msg.find(": ");
    if (colon != std::string::npos && msg.rfind("[json.exception", 0) == 0) msg = msg.substr(colon + 2);
    std::replace(msg.begin(), msg.end(), '\n', ' ');
    fail_input(where(path.string(), line) + "invalid JSON: " + msg);
  }
}

HfCheckpoint read_hf_checkpoint(const std::filesystem::path& dir, torch::Dtype dtype) {
  if (!std::filesystem::is_directory(dir))
    fail_input(where(dir.string()) + "not a directory (expected a Hugging Face model folder with config.json)");
  HfCheckpoint ckpt;
  ckpt.dir = dir;
  const auto config_path = dir / "config.json";
  if (!std::filesystem::exists(config_path))
    fail_input(where(config_path.string()) + "missing (a Hugging Face model folder needs config.json)");
  ckpt.config = read_json(config_path);
  if (!ckpt.config.is_object()) fail_input(where(config_path.string()) + "not a JSON object");

  const auto single = dir / "model.safetensors";
  const auto index = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(single)) {
    ckpt.tensors = read_safetensors(single, dtype);
    return ckpt;
  }
  if (std::filesystem::exists(index)) {
    const nlohmann::json idx = read_json(index);
    if (!idx.is_object() || !idx.contains("weight_map") || !idx["weight_map"].is_object())
      fail_input(where(index.string()) + "missing key 'weight_map'");
    // shard file -> names the index puts there
    std::map<std::string, std::vector<std::string>> shards;
    for (auto it = idx["weight_map"].begin(); it != idx["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        fail_input(where(index.string()) + "weight_map['" + it.key() + "'] is not a file name");
      shards[it.value().get<std::string>()].push_back(it.key());
    }
    for (const auto& [shard, names] : shards) {
      const auto shard_path = dir / shard;
      if (!std::filesystem::exists(shard_path))
        fail_input(where(index.string()) + "shard '" + shard + "' (for tensor '" + names.front() + "') not found");
      TensorMap part = read_safetensors(shard_path, dtype);
      for (const auto& name : names) {
        auto found = part.find(name);
        if (found == part.end())
          fail_input(where(shard_path.string()) + "missing tensor '" + name + "' listed in " +
                     index.filename().string());
        ckpt.tensors[name] = found->second;
      }
    }
    return ckpt;
  }
  if (std::filesystem::exists(dir / "pytorch_model.bin") || std::filesystem::exists(dir / "pytorch_model.bin.index.json")) {
    const std::string d = dir.string();
    fail_input(where((dir / "pytorch_model.bin").string()) +
               "PyTorch pickle checkpoints are not read; convert to safetensors with: python -c \"from transformers "
               "import AutoModel; AutoModel.from_pretrained('" + d + "').save_pretrained('" + d +
               "', safe_serialization=True)\"");
  }
  fail_input(where(single.string()) + "missing (no model.safetensors or model.safetensors.index.json in the folder)");
}

void load_weights(torch::nn::Module& module, const TensorMap& tensors, const std::string& source,
                  const std::vector<std::string>& ignore) {
  const std::set<std::string> ignored(ignore.begin(), ignore.end());
  // Parameters first, then buffers, each in the module's registration order (the order errors are listed in).
  std::vector<std::pair<std::string, torch::Tensor>> targets;
  for (const auto& p : module.named_parameters(true)) targets.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers(true)) targets.emplace_back(b.key(), b.value());

  std::vector<std::string> problems;
  std::set<std::string> used;
  for (auto& [name, target] : targets) {
    used.insert(name);
    auto found = tensors.find(name);
    if (found == tensors.end()) {
      if (!ignored.count(name)) problems.push_back("missing tensor '" + name + "'");
      continue;
    }
    if (found->second.sizes() != target.sizes())
      problems.push_back("wrong shape for '" + name + "': file " + shape_str(found->second.sizes()) + " vs model " +
                         shape_str(target.sizes()));
  }
  for (const auto& [name, tensor] : tensors)
    if (!used.count(name) && !ignored.count(name)) problems.push_back("unexpected tensor '" + name + "'");
  if (!problems.empty()) {
    std::string msg = where(source);
    for (size_t i = 0; i < problems.size(); ++i) msg += (i ? "; " : "") + problems[i];
    fail_input(msg);
  }
  // Copy only once everything matched, so a failed load leaves the module untouched.
  torch::NoGradGuard no_grad;
  for (auto& [name, target] : targets) {
    auto found = tensors.find(name);
    if (found != tensors.end()) target.copy_(found->second);
  }
}

}  // namespace peft::io
