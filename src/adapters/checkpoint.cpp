#include "adapters/checkpoint.h"

#include <algorithm>
#include <cmath>

#include "common/error.h"
#include "common/files.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace peft::adapters {

namespace {

nlohmann::json number(double v) {
  // HF writes integral values (lora_alpha) as ints.
  if (std::floor(v) == v && std::fabs(v) < 1e15) return static_cast<int64_t>(v);
  return v;
}

nlohmann::json or_null(const std::string& s) { return s.empty() ? nlohmann::json(nullptr) : nlohmann::json(s); }

nlohmann::json modules_to_save_json(const AdapterSpec& spec) {
  if (spec.modules_to_save.empty()) return nullptr;
  return spec.modules_to_save;
}

std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

bool has_folded_prefix(const AdapterSet& set) {
  for (const auto& a : set.adapters)
    if (auto p = std::dynamic_pointer_cast<PrefixAdapter>(a); p && p->folded()) return true;
  return false;
}

}  // namespace

nlohmann::json adapter_config(const AdapterSet& set, bool folded) {
  const AdapterSpec& s = set.spec;
  nlohmann::json j;
  j["base_model_name_or_path"] = or_null(s.base_model_name_or_path);
  j["task_type"] = or_null(s.task_type);
  j["modules_to_save"] = modules_to_save_json(s);
  j["inference_mode"] = true;
  j["revision"] = nullptr;
  if (s.kind == "lora") {  // HF PEFT 0.6 LoraConfig
    j["peft_type"] = "LORA";
    j["auto_mapping"] = nullptr;
    j["r"] = s.lora.r;
    j["lora_alpha"] = number(s.lora.lora_alpha);
    j["lora_dropout"] = s.lora.lora_dropout;
    j["target_modules"] = s.target_modules.to_json();
    j["bias"] = "none";
    j["fan_in_fan_out"] = false;
    j["init_lora_weights"] = true;
    j["layers_to_transform"] = nullptr;
    j["layers_pattern"] = nullptr;
    j["rank_pattern"] = nlohmann::json::object();
    j["alpha_pattern"] = nlohmann::json::object();
    return j;
  }
  if (s.kind == "ia3") {  // HF PEFT 0.6 IA3Config
    j["peft_type"] = "IA3";
    j["auto_mapping"] = nullptr;
    j["target_modules"] = s.target_modules.to_json();
    j["feedforward_modules"] = s.feedforward_modules.to_json();
    j["fan_in_fan_out"] = false;
    j["init_ia3_weights"] = true;
    return j;
  }
  j["format_version"] = kAdapterFormatVersion;
  j["target_modules"] = s.target_modules.to_json();
  if (s.kind == "bottleneck") {
    const BottleneckOptions b = resolve(s.bottleneck);
    j["peft_type"] = "BOTTLENECK";
    j["config"] = b.config;
    j["reduction_factor"] = b.reduction_factor;
    j["bottleneck_size"] = b.bottleneck_size;
    j["non_linearity"] = b.non_linearity;
    j["scaling"] = *b.scaling;
    j["init"] = b.init;
    j["cross_attention"] = b.cross_attention;
  } else if (s.kind == "compacter") {
    const auto& c = s.compacter;
    j["peft_type"] = "COMPACTER";
    j["plus_plus"] = c.plus_plus;
    j["phm_dim"] = c.phm_dim;
    j["reduction_factor"] = c.reduction_factor;
    j["non_linearity"] = c.non_linearity;
    j["phm_init_range"] = c.phm_init_range;
    j["cross_attention"] = c.cross_attention;
  } else if (s.kind == "prefix" || s.kind == "mam") {
    const PrefixOptions& p = s.kind == "prefix" ? s.prefix : s.mam.prefix;
    j["peft_type"] = s.kind == "prefix" ? "PREFIX" : "MAM";
    j["num_virtual_tokens"] = p.num_virtual_tokens;
    j["encoder_hidden_size"] = p.encoder_hidden_size;
    j["folded"] = folded;
    if (s.kind == "mam") {
      j["bottleneck_size"] = s.mam.bottleneck_size;
      j["scaling"] = s.mam.scaling;
      j["non_linearity"] = s.mam.non_linearity;
    }
  } else if (s.kind == "prompt") {
    j["peft_type"] = "PROMPT";
    j["num_virtual_tokens"] = s.prompt.num_virtual_tokens;
  }
  return j;
}

AdapterSpec spec_from_config(const nlohmann::json& j, const std::string& source) {
  auto need = [&](const char* key) -> const nlohmann::json& {
    if (!j.contains(key)) throw InputError(where(source) + "missing key '" + key + "'");
    return j.at(key);
  };
  auto opt = [&](const char* key, auto fallback) {
    using T = decltype(fallback);
    if (!j.contains(key) || j.at(key).is_null()) return fallback;
    try {
      return j.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      throw InputError(where(source) + "key '" + key + "' has the wrong type");
    }
  };
  AdapterSpec s;
  const std::string peft_type = need("peft_type").get<std::string>();
  s.base_model_name_or_path = opt("base_model_name_or_path", std::string());
  s.task_type = opt("task_type", std::string());
  s.modules_to_save = opt("modules_to_save", std::vector<std::string>());
  if (j.contains("target_modules")) s.target_modules = TargetModules::from_json(j.at("target_modules"));
  if (peft_type != "LORA" && peft_type != "IA3") {
    const int version = need("format_version").get<int>();
    if (version > kAdapterFormatVersion)
      throw InputError(where(source) + "format_version " + std::to_string(version) +
                       " is newer than this peft reads (" + std::to_string(kAdapterFormatVersion) + ")");
  }
  if (peft_type == "LORA") {
    s.kind = "lora";
    s.lora.r = need("r").get<int64_t>();
    s.lora.lora_alpha = opt("lora_alpha", 8.0);
    s.lora.lora_dropout = opt("lora_dropout", 0.0);
    if (opt("bias", std::string("none")) != "none")
      throw InputError(where(source) + "key 'bias': only \"none\" is supported");
    if (opt("fan_in_fan_out", false)) throw InputError(where(source) + "key 'fan_in_fan_out': must be false");
  } else if (peft_type == "IA3") {
    s.kind = "ia3";
    if (j.contains("feedforward_modules")) s.feedforward_modules = TargetModules::from_json(j.at("feedforward_modules"));
  } else if (peft_type == "BOTTLENECK") {
    s.kind = "bottleneck";
    auto& b = s.bottleneck;
    b.config = need("config").get<std::string>();
    b.reduction_factor = opt("reduction_factor", b.reduction_factor);
    b.bottleneck_size = opt("bottleneck_size", b.bottleneck_size);
    b.non_linearity = opt("non_linearity", b.non_linearity);
    if (j.contains("scaling") && !j.at("scaling").is_null()) b.scaling = opt("scaling", 1.0);
    b.init = opt("init", b.init);
    b.cross_attention = opt("cross_attention", b.cross_attention);
  } else if (peft_type == "COMPACTER") {
    s.kind = "compacter";
    auto& c = s.compacter;
    c.plus_plus = opt("plus_plus", c.plus_plus);
    c.phm_dim = opt("phm_dim", c.phm_dim);
    c.reduction_factor = opt("reduction_factor", c.reduction_factor);
    c.non_linearity = opt("non_linearity", c.non_linearity);
    c.phm_init_range = opt("phm_init_range", c.phm_init_range);
    c.cross_attention = opt("cross_attention", c.cross_attention);
  } else if (peft_type == "PREFIX" || peft_type == "MAM") {
    s.kind = peft_type == "PREFIX" ? "prefix" : "mam";
    PrefixOptions& p = s.kind == "prefix" ? s.prefix : s.mam.prefix;
    p.num_virtual_tokens = need("num_virtual_tokens").get<int64_t>();
    p.encoder_hidden_size = opt("encoder_hidden_size", p.encoder_hidden_size);
    if (s.kind == "mam") {
      s.mam.bottleneck_size = opt("bottleneck_size", s.mam.bottleneck_size);
      s.mam.scaling = opt("scaling", s.mam.scaling);
      s.mam.non_linearity = opt("non_linearity", s.mam.non_linearity);
    }
  } else if (peft_type == "PROMPT") {
    s.kind = "prompt";
    s.prompt.num_virtual_tokens = need("num_virtual_tokens").get<int64_t>();
  } else {
    throw InputError(where(source) + "unknown peft_type '" + peft_type +
                     "', expected LORA, IA3, BOTTLENECK, COMPACTER, PREFIX, MAM or PROMPT");
  }
  return s;
}

namespace {

bool is_adamix(const Adapter& a) {
  return dynamic_cast<const AdamixLora*>(&a) != nullptr || dynamic_cast<const AdamixBottleneck*>(&a) != nullptr;
}

// An AdaMix set saves its merged adapter (the mean of the copies) under the names the base kind uses:
// LoRA `<site>.lora_A.weight` / `.lora_B.weight`, a bottleneck `<site>.adapter.adapter_down.weight` ...
std::map<std::string, torch::Tensor> adamix_merged_state(const AdapterSet& set) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& a : set.adapters) {
    const std::string site = kSavedPrefix + a->site_name();
    if (const auto* lora = dynamic_cast<const AdamixLora*>(a.get())) {
      const auto [A, B] = lora->averaged_lora();
      out[site + ".lora_A.weight"] = A;
      out[site + ".lora_B.weight"] = B;
    } else if (const auto* bn = dynamic_cast<const AdamixBottleneck*>(a.get())) {
      const AveragedBottleneck m = bn->averaged();
      const std::string child = site + "." + bn->child_name();
      out[child + ".adapter_down.weight"] = m.down_weight;
      out[child + ".adapter_down.bias"] = m.down_bias;
      out[child + ".adapter_up.weight"] = m.up_weight;
      out[child + ".adapter_up.bias"] = m.up_bias;
    } else {
      throw std::logic_error("adapter set mixes AdaMix and other adapters at '" + a->site_name() + "'");
    }
  }
  return out;
}

}  // namespace

bool has_adamix(const AdapterSet& set) {
  return std::any_of(set.adapters.begin(), set.adapters.end(), [](const auto& a) { return is_adamix(*a); });
}

std::map<std::string, torch::Tensor> adapter_state(const torch::nn::Module& model, const AdapterSet& set) {
  if (has_adamix(set)) return adamix_merged_state(set);
  std::map<std::string, torch::Tensor> out;
  for (const auto& np : set.named_trainable_parameters(model)) out[kSavedPrefix + np.first] = np.second;
  return out;
}

void save_adapter(const std::filesystem::path& dir, const torch::nn::Module& model, const AdapterSet& set) {
  std::filesystem::create_directories(dir);
  io::TensorMap tensors;
  for (const auto& kv : adapter_state(model, set)) tensors[kv.first] = kv.second.detach().to(torch::kCPU).contiguous();
  io::write_safetensors(dir / "adapter_model.safetensors", tensors);
  write_file_atomic(dir / "adapter_config.json", adapter_config(set, has_folded_prefix(set)).dump(2) + "\n");
}

void load_adapter_weights(const std::filesystem::path& file, const torch::nn::Module& model, const AdapterSet& set) {
  if (has_adamix(set))
    throw std::logic_error("load_adapter_weights: an AdaMix set is saved merged; load it as its base kind");
  const io::TensorMap stored = io::read_safetensors(file);
  const auto expected = adapter_state(model, set);
  std::vector<std::string> problems;
  for (const auto& kv : expected) {
    auto it = stored.find(kv.first);
    if (it == stored.end())
      problems.push_back("missing tensor '" + kv.first + "'");
    else if (it->second.sizes() != kv.second.sizes())
      problems.push_back("tensor '" + kv.first + "': shape " + shape_str(it->second.sizes()) + ", expected " +
                         shape_str(kv.second.sizes()));
  }
  for (const auto& kv : stored)
    if (!expected.count(kv.first)) problems.push_back("unexpected tensor '" + kv.first + "'");
  if (!problems.empty()) {
    std::string msg = where(file.string()) + problems.front();
    if (problems.size() > 1) msg += " (and " + std::to_string(problems.size() - 1) + " more problems)";
    throw InputError(msg);
  }
  torch::NoGradGuard no_grad;
  for (const auto& kv : expected) {
    torch::Tensor target = kv.second;
    target.copy_(stored.at(kv.first).to(target.device(), target.scalar_type()));
  }
}

AdapterSet load_adapter(const std::filesystem::path& dir, torch::nn::Module& model, const ModelInfo& info) {
  const auto config_path = dir / "adapter_config.json";
  const nlohmann::json config = io::read_json(config_path);
  AdapterSet set = inject(model, spec_from_config(config, config_path.string()), info);
  if (config.value("folded", false)) set.fold(model);
  load_adapter_weights(dir / "adapter_model.safetensors", model, set);
  return set;
}

}  // namespace peft::adapters
