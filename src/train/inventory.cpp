#include "train/inventory.h"

#include <iomanip>
#include <sstream>

#include "common/error.h"
#include "common/files.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "train/pretrain.h"
#include "train/progress.h"

namespace peft::train {

namespace fs = std::filesystem;

routing::PolyOptions poly_options(const Config& config, int64_t n_tasks) {
  routing::PolyOptions o;
  o.n_tasks = n_tasks;
  o.n_skills = config.routing.n_skills;
  o.n_heads = config.routing.method == "poly" ? 1 : config.routing.n_heads;
  o.rank = config.adapter.r;
  o.train_sampling = routing::parse_sampling(config.routing.train_sampling);
  o.temperature = config.routing.temperature;
  o.init = routing::parse_inventory_init(config.routing.init);
  return o;
}

std::string poly_targets(const Config& config) {
  return config.adapter.target_modules.empty() ? kT5AttentionTargets : config.adapter.target_modules;
}

Inventory attach_inventory(torch::nn::Module& model, const Config& config, const std::vector<std::string>& task_names) {
  Inventory inv;
  inv.task_names = task_names;
  inv.sites = routing::attach_poly(model, poly_targets(config), poly_options(config, static_cast<int64_t>(task_names.size())));
  return inv;
}

std::vector<ParamGroup> Inventory::param_groups(const Config& config) const {
  ParamGroup inventory{"inventory", {}, config.train.learning_rate, config.train.weight_decay};
  ParamGroup routing{"routing", {}, config.routing.learning_rate, config.train.weight_decay};
  for (const auto& [name, poly] : sites) {
    if (poly->lora_a.requires_grad()) inventory.params.emplace_back(name + ".poly_lora.lora_a", poly->lora_a);
    if (poly->lora_b.requires_grad()) inventory.params.emplace_back(name + ".poly_lora.lora_b", poly->lora_b);
    if (poly->router->module_logits.requires_grad())
      routing.params.emplace_back(name + ".poly_lora.router.module_logits", poly->router->module_logits);
  }
  std::vector<ParamGroup> groups;
  if (!inventory.params.empty()) groups.push_back(std::move(inventory));
  if (!routing.params.empty()) groups.push_back(std::move(routing));
  return groups;
}

std::vector<std::vector<double>> Inventory::task_skill_matrix() const {
  torch::NoGradGuard no_grad;
  const auto T = static_cast<int64_t>(task_names.size());
  torch::Tensor sum;
  for (const auto& [name, poly] : sites) {
    const auto w = poly->router->weights(torch::arange(T, torch::kLong).to(poly->router->module_logits.device()), false)
                       .mean(1).cpu();  // [T, S], mean over heads
    sum = sum.defined() ? sum + w : w;
  }
  sum = (sum / static_cast<double>(sites.size())).contiguous();
  std::vector<std::vector<double>> m(static_cast<size_t>(T), std::vector<double>(static_cast<size_t>(sum.size(1))));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t s = 0; s < sum.size(1); ++s) m[t][s] = sum[t][s].item<double>();
  return m;
}

nlohmann::json Inventory::manifest(const Config& config) const {
  const auto& o = sites.front().second->options;
  nlohmann::json site_list = nlohmann::json::array();
  for (const auto& [name, poly] : sites)
    site_list.push_back({{"name", name}, {"in_features", poly->in_features}, {"out_features", poly->out_features}});
  return {{"format_version", kInventoryFormatVersion},
          {"method", config.routing.method},
          {"tasks", task_names},
          {"n_skills", o.n_skills},
          {"n_heads", o.n_heads},
          {"rank", o.rank},
          {"train_sampling", config.routing.train_sampling},
          {"temperature", o.temperature},
          {"target_modules", poly_targets(config)},
          {"backbone", config.model.path},
          {"sites", site_list}};
}

void Inventory::save(const fs::path& dir, const torch::nn::Module& model, const Config& config) const {
  io::TensorMap tensors;
  for (const auto& [name, poly] : sites) {
    tensors[name + ".poly_lora.lora_a"] = poly->lora_a.detach().cpu();
    tensors[name + ".poly_lora.lora_b"] = poly->lora_b.detach().cpu();
    tensors[name + ".poly_lora.router.module_logits"] = poly->router->module_logits.detach().cpu();
  }
  io::write_safetensors(dir / "inventory.safetensors", tensors, {{"format", "pt"}, {"peft", "inventory"}});
  write_file_atomic(dir / "manifest.json", manifest(config).dump(2) + "\n");
}

Inventory load_inventory(const fs::path& dir, torch::nn::Module& model) {
  const fs::path manifest_path = dir / "manifest.json";
  const auto manifest = io::read_json(manifest_path);
  auto get = [&](const char* key) -> const nlohmann::json& {
    if (!manifest.contains(key)) fail_input(where(manifest_path.string()) + "missing key '" + key + "'");
    return manifest.at(key);
  };
  const int version = get("format_version").get<int>();
  if (version != kInventoryFormatVersion)
    fail_input(where(manifest_path.string()) + "format_version " + std::to_string(version) +
               (version > kInventoryFormatVersion ? " is newer than this peft supports (" : " is older than supported (") +
               std::to_string(kInventoryFormatVersion) + ")");
  Inventory inv;
  inv.task_names = get("tasks").get<std::vector<std::string>>();
  routing::PolyOptions o;
  o.n_tasks = static_cast<int64_t>(inv.task_names.size());
  o.n_skills = get("n_skills").get<int64_t>();
  o.n_heads = get("n_heads").get<int64_t>();
  o.rank = get("rank").get<int64_t>();
  o.train_sampling = routing::parse_sampling(get("train_sampling").get<std::string>());
  o.temperature = get("temperature").get<double>();
  inv.sites = routing::attach_poly(model, get("target_modules").get<std::string>(), o);
  const fs::path file = dir / "inventory.safetensors";
  const auto tensors = io::read_safetensors(file);
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, torch::Tensor& dst) {
    auto it = tensors.find(name);
    if (it == tensors.end()) fail_input(where(file.string()) + "missing tensor '" + name + "'");
    if (it->second.sizes() != dst.sizes()) {
      std::ostringstream msg;
      msg << "wrong shape for '" << name << "': file " << it->second.sizes() << " vs model " << dst.sizes();
      fail_input(where(file.string()) + msg.str());
    }
    dst.copy_(it->second);
  };
  for (auto& [name, poly] : inv.sites) {
    copy(name + ".poly_lora.lora_a", poly->lora_a);
    copy(name + ".poly_lora.lora_b", poly->lora_b);
    copy(name + ".poly_lora.router.module_logits", poly->router->module_logits);
  }
  if (tensors.size() != inv.sites.size() * 3)
    fail_input(where(file.string()) + "holds " + std::to_string(tensors.size()) + " tensors, the manifest's " +
               std::to_string(inv.sites.size()) + " sites need " + std::to_string(inv.sites.size() * 3));
  return inv;
}

adapters::AdamixOptions adamix_options(const Config& config) {
  return {config.adamix.num_experts, config.adamix.share};
}

adapters::AdapterSpec adapter_spec(const Config& config) {
  const auto& a = config.adapter;
  adapters::AdapterSpec spec;
  spec.base_model_name_or_path = config.model.path;
  spec.task_type = "SEQ_2_SEQ_LM";
  if (!a.target_modules.empty()) spec.target_modules = adapters::TargetModules::pattern(a.target_modules);
  spec.modules_to_save = a.modules_to_save;
  spec.lora.r = a.r;
  spec.lora.lora_alpha = a.alpha;
  spec.lora.lora_dropout = a.dropout;
  const std::string& k = a.kind;
  if (k == "lora" || k == "ia3" || k == "prefix" || k == "prompt" || k == "mam") {
    spec.kind = k;
  } else if (k == "houlsby" || k == "pfeiffer" || k == "parallel" || k == "scaled_parallel") {
    spec.kind = "bottleneck";
    spec.bottleneck.config = k;
  } else if (k == "compacter" || k == "compacterpp") {
    spec.kind = "compacter";
    spec.compacter.plus_plus = k == "compacterpp";
  } else {
    fail_input("adapter.kind: '" + k + "' is not a single-adapter kind");
  }
  spec.bottleneck.reduction_factor = a.reduction_factor;
  spec.bottleneck.non_linearity = a.non_linearity;
  if (a.scaling != 1.0) spec.bottleneck.scaling = a.scaling;
  spec.bottleneck.init = a.init;
  spec.compacter.phm_dim = a.phm_dim;
  spec.prefix.num_virtual_tokens = a.prefix_length;
  spec.prefix.encoder_hidden_size = a.prefix_hidden;
  spec.mam.prefix = spec.prefix;
  spec.prompt.num_virtual_tokens = a.num_virtual_tokens;
  return spec;
}

adapters::ModelInfo model_info(const T5ForConditionalGenerationImpl& model) {
  const auto& c = model.config();
  adapters::ModelInfo info;
  info.family = "t5";
  info.d_model = c.d_model;
  info.num_heads = c.num_heads;
  info.d_kv = c.d_kv;
  return info;
}

void write_pretrain_summary(const fs::path& path, const Config& config, const PretrainSummary& s, size_t n_tasks) {
  std::ostringstream md;
  md << std::fixed << std::setprecision(4);
  md << "# Pre-training summary\n\n";
  md << "| | |\n|---|---|\n";
  md << "| method | " << (config.routing.method == "none" ? config.adapter.kind : config.routing.method) << " |\n";
  md << "| backbone | " << (config.model.path.empty() ? "(embedded default)" : config.model.path) << " |\n";
  md << "| training tasks | " << n_tasks << " |\n";
  md << "| steps | " << config.train.steps << " (batch " << config.train.batch_size << ") |\n";
  md << "| trainable parameters | " << s.trainable_parameters << " of " << s.total_parameters << " ("
     << 100.0 * s.trainable_parameters / std::max<int64_t>(1, s.total_parameters) << "%) |\n";
  md << "| train loss (first step → last window) | " << s.first_train_loss << " → " << s.final_train_loss << " |\n";
  auto metric = [](const nlohmann::json& j, const char* k) {
    return j.is_object() && j.contains(k) ? j.at(k).get<double>() : std::nan("");
  };
  md << std::setprecision(2);
  md << "| held-out Rouge-L of training tasks (start → end) | " << metric(s.first_eval, "rouge_l") << " → "
     << metric(s.final_eval, "rouge_l") << " |\n";
  md << "| held-out exact match (start → end) | " << metric(s.first_eval, "exact_match") << " → "
     << metric(s.final_eval, "exact_match") << " |\n";
  md << "| wall time | " << format_duration(s.seconds) << " |\n";
  write_file_atomic(path, md.str());
}

}  // namespace peft::train
