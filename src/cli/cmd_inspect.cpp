// `peft inspect PATH`: what is in a checkpoint, without loading any tensor data (headers only).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <map>

#include "cli/commands.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace fs = std::filesystem;

namespace peft::cli {
namespace {

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// 1234567 -> "1,234,567"
std::string grouped(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

// 1234567 -> "1.23M"
std::string human(int64_t n) {
  char buf[32];
  if (n >= 1000000000) std::snprintf(buf, sizeof buf, "%.2fB", n / 1e9);
  else if (n >= 1000000) std::snprintf(buf, sizeof buf, "%.2fM", n / 1e6);
  else if (n >= 1000) std::snprintf(buf, sizeof buf, "%.2fK", n / 1e3);
  else std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

struct Totals {
  int64_t tensors = 0, params = 0;
  std::map<std::string, int64_t> by_dtype;
};

Totals describe_safetensors(const fs::path& path, std::ostream& out) {
  std::map<std::string, std::string> metadata;
  const auto header = io::read_safetensors_header(path, &metadata);
  out << "== " << path.string();
  if (!metadata.empty()) {
    out << "  (metadata:";
    for (const auto& [k, v] : metadata) out << " " << k << "=" << v;
    out << ")";
  }
  out << "\n";
  size_t name_width = 4, shape_width = 5;
  for (const auto& [name, t] : header) {
    name_width = std::max(name_width, name.size());
    shape_width = std::max(shape_width, shape_text(t.shape).size());
  }
  auto row = [&](const std::string& name, const std::string& dtype, const std::string& shape,
                 const std::string& params) {
    out << "  " << name << std::string(name_width - name.size() + 2, ' ') << dtype
        << std::string(dtype.size() < 6 ? 6 - dtype.size() : 1, ' ') << shape
        << std::string(shape_width - shape.size() + 2, ' ') << params << "\n";
  };
  row("name", "dtype", "shape", "params");
  Totals totals;
  for (const auto& [name, t] : header) {
    int64_t n = 1;
    for (int64_t d : t.shape) n *= d;
    row(name, t.dtype, shape_text(t.shape), std::to_string(n));
    totals.tensors += 1;
    totals.params += n;
    totals.by_dtype[t.dtype] += n;
  }
  out << "  total: " << totals.tensors << " tensors, " << grouped(totals.params) << " parameters (" << human(totals.params)
      << ")";
  for (const auto& [dtype, n] : totals.by_dtype) out << ", " << dtype << " " << grouped(n);
  out << "\n";
  return totals;
}

void describe_json(const fs::path& path, std::ostream& out) {
  out << "== " << path.string() << "\n" << io::read_json(path).dump(2) << "\n";
}

}  // namespace

int cmd_inspect(const std::string& path_text, std::ostream& out) {
  const fs::path path = path_text;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(where(path_text) + "no such file or directory");
  if (!fs::is_directory(path, ec)) {
    if (path.extension() == ".json") describe_json(path, out);
    else describe_safetensors(path, out);
    return 0;
  }
  // A directory: the configs first, then every safetensors file (shards included) in name order.
  std::vector<fs::path> jsons, tensors;
  for (const char* name : {"config.json", "adapter_config.json", "model.safetensors.index.json"})
    if (fs::is_regular_file(path / name)) jsons.push_back(path / name);
  for (const auto& entry : fs::directory_iterator(path))
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors") tensors.push_back(entry.path());
  std::sort(tensors.begin(), tensors.end());
  if (jsons.empty() && tensors.empty())
    throw InputError(where(path_text) + "no config.json, adapter_config.json or *.safetensors in this directory");
  for (const auto& j : jsons) describe_json(j, out);
  Totals all;
  for (const auto& t : tensors) {
    const Totals one = describe_safetensors(t, out);
    all.tensors += one.tensors;
    all.params += one.params;
  }
  if (tensors.size() > 1)
    out << "== all files: " << all.tensors << " tensors, " << grouped(all.params) << " parameters ("
        << human(all.params) << ")\n";
  return 0;
}

}  // namespace peft::cli
