#include "train/variants.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <sstream>

#include "adapters/checkpoint.h"
#include "adapters/lora.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"

namespace peft::train {

namespace fs = std::filesystem;

const std::vector<VariantInfo>& all_variants() {
  using F = VariantFamily;
  static const std::vector<VariantInfo> v = {
      {"poly", F::kRouted, "poly", ""},          {"mhr", F::kRouted, "mhr", ""},
      {"poly-z", F::kRoutingOnly, "poly", ""},   {"mhr-z", F::kRoutingOnly, "mhr", ""},
      {"poly-mu", F::kCollapsed, "poly", ""},    {"mhr-mu", F::kCollapsed, "mhr", ""},
      {"lora", F::kFreshAdapter, "", "lora"},    {"ia3", F::kFreshAdapter, "", "ia3"},
      {"adapter", F::kFreshAdapter, "", "adapter"}, {"compacter", F::kFreshAdapter, "", "compacter"},
      {"prefix", F::kFreshAdapter, "", "prefix"}, {"mam", F::kFreshAdapter, "", "mam"},
      {"adamix", F::kAdamix, "", "lora"},         {"adamix-adapter", F::kAdamix, "", "adapter"},
      {"shared-lora", F::kSharedLora, "", ""},   {"full", F::kFull, "", ""},
      {"zero-shot", F::kZeroShot, "", ""},
  };
  return v;
}

std::vector<std::string> variant_names() {
  std::vector<std::string> out;
  for (const auto& v : all_variants()) out.push_back(v.name);
  return out;
}

const VariantInfo& find_variant(const std::string& name) {
  for (const auto& v : all_variants())
    if (v.name == name) return v;
  std::string valid;
  for (const auto& n : variant_names()) valid += (valid.empty() ? "" : ", ") + n;
  fail_input("adapt.variants: unknown variant '" + name + "' (valid: " + valid + ")");
}

Pretrained open_pretrained(const fs::path& dir) {
  Pretrained p;
  if (dir.empty()) return p;
  p.dir = dir;
  if (!fs::is_directory(dir)) fail_input("adapt.pretrained: '" + dir.string() + "' is not a directory");
  if (fs::exists(dir / "manifest.json")) {
    if (!fs::exists(dir / "inventory.safetensors"))
      fail_input("adapt.pretrained: '" + (dir / "inventory.safetensors").string() +
                 "' not found (the pre-training run has a manifest.json but no inventory)");
    p.manifest = io::read_json(dir / "manifest.json");
    const std::string where_m = where((dir / "manifest.json").string());
    if (!p.manifest.contains("method") || !p.manifest["method"].is_string())
      fail_input(where_m + "missing key 'method'");
    p.method = p.manifest["method"].get<std::string>();
    if (p.method != "poly" && p.method != "mhr")
      fail_input(where_m + "method '" + p.method + "' is not poly or mhr");
    return p;
  }
  if (fs::exists(dir / "adapter" / "adapter_config.json")) {
    p.method = "shared";
    return p;
  }
  fail_input("adapt.pretrained: '" + dir.string() +
             "' holds neither manifest.json + inventory.safetensors (a Poly/MHR pre-training run) nor "
             "adapter/adapter_config.json (a shared-adapter run, routing.method none)");
}

void check_variant_runs_on(const VariantInfo& v, const Pretrained& p) {
  if (!v.routing_method.empty()) {
    if (p.dir.empty())
      fail_input("adapt.pretrained: empty, but variant '" + v.name + "' adapts a pre-trained " + v.routing_method +
                 " inventory (set adapt.pretrained to the pre-training run folder)");
    if (!p.has_inventory())
      fail_input("adapt.variants: variant '" + v.name + "' needs a Poly/MHR inventory, but '" + p.dir.string() +
                 "' is a shared-adapter run (routing.method none)");
    if (p.method != v.routing_method)
      fail_input("adapt.variants: variant '" + v.name + "' needs a " + v.routing_method + " inventory, but " +
                 (p.dir / "manifest.json").string() + " has method '" + p.method + "' (use the " + p.method +
                 v.name.substr(v.routing_method.size()) + " variant)");
  }
  if (v.family == VariantFamily::kSharedLora) {
    if (p.dir.empty())
      fail_input("adapt.pretrained: empty, but variant 'shared-lora' fine-tunes the adapter of a shared-LoRA "
                 "pre-training run");
    if (!p.has_shared_adapter())
      fail_input("adapt.variants: variant 'shared-lora' needs a shared-LoRA pre-training run (routing.method none, "
                 "saving adapter/), but '" + p.dir.string() + "' is a " + p.method + " inventory run");
  }
}

const Pretrained& pretrained_for(const VariantInfo& v, const std::vector<Pretrained>& runs) {
  if (runs.empty()) throw std::logic_error("pretrained_for: no runs (runs[0] is adapt.pretrained, maybe empty)");
  const bool needs_inventory = !v.routing_method.empty(), needs_shared = v.family == VariantFamily::kSharedLora;
  if (needs_inventory || needs_shared)
    for (const auto& r : runs)
      if ((needs_inventory && r.method == v.routing_method) || (needs_shared && r.has_shared_adapter())) return r;
  check_variant_runs_on(v, runs.front());
  return runs.front();
}

std::pair<torch::Tensor, torch::Tensor> collapse_skills(const torch::Tensor& lora_a, const torch::Tensor& lora_b) {
  const int64_t h = lora_a.size(0), r = lora_a.size(3);
  // [h, S, d_in/h, r] -> mean over S -> [h, d_in/h, r] -> heads stacked along the input dim.
  auto a = lora_a.mean(1).reshape({h * lora_a.size(2), r});
  // [h, S, r, d_out/h] -> [h, r, d_out/h] -> [r, h, d_out/h] -> heads side by side along the output dim.
  auto b = lora_b.mean(1).permute({1, 0, 2}).reshape({r, h * lora_b.size(3)});
  return {a.contiguous(), b.contiguous()};
}

int64_t count_group_parameters(const std::vector<ParamGroup>& groups) {
  std::set<const void*> seen;
  int64_t n = 0;
  for (const auto& g : groups)
    for (const auto& [name, p] : g.params)
      if (seen.insert(p.unsafeGetTensorImpl()).second) n += p.numel();
  return n;
}

namespace {

// The μ adapter: a LoRA per inventory site (scale 1/r) whose factors are the collapsed inventory.
adapters::AdapterSet attach_collapsed(T5ForConditionalGenerationImpl& model, const Pretrained& p) {
  const fs::path manifest_path = p.dir / "manifest.json";
  auto get = [&](const char* key) -> const nlohmann::json& {
    if (!p.manifest.contains(key)) fail_input(where(manifest_path.string()) + "missing key '" + key + "'");
    return p.manifest.at(key);
  };
  adapters::AdapterSpec spec;
  spec.kind = "lora";
  spec.lora.r = get("rank").get<int64_t>();
  spec.lora.lora_alpha = 1.0;  // Poly/MHR scale the update by 1/r
  spec.lora.lora_dropout = 0.0;
  spec.target_modules = adapters::TargetModules::pattern(get("target_modules").get<std::string>());
  spec.base_model_name_or_path = p.manifest.value("backbone", "");
  spec.task_type = "SEQ_2_SEQ_LM";
  adapters::AdapterSet set = adapters::inject(model, spec, model_info(model));

  std::vector<std::string> expected;
  for (const auto& s : get("sites")) expected.push_back(s.at("name").get<std::string>());
  auto got = set.site_names();
  std::vector<std::string> a = expected, b = got;
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  if (a != b)
    fail_input(where(manifest_path.string()) + "its " + std::to_string(expected.size()) +
               " sites differ from the " + std::to_string(got.size()) + " linears its target_modules match in " +
               "this backbone (is model.path the pre-training backbone?)");

  const fs::path file = p.dir / "inventory.safetensors";
  const auto tensors = io::read_safetensors(file);
  auto tensor = [&](const std::string& name) -> const torch::Tensor& {
    auto it = tensors.find(name);
    if (it == tensors.end()) fail_input(where(file.string()) + "missing tensor '" + name + "'");
    return it->second;
  };
  torch::NoGradGuard no_grad;
  for (auto& adapter : set.adapters) {
    auto lora = std::dynamic_pointer_cast<adapters::LoraAdapter>(adapter);
    const std::string& name = adapter->site_name();
    const auto& inv_a = tensor(name + ".poly_lora.lora_a");
    const auto& inv_b = tensor(name + ".poly_lora.lora_b");
    const auto [a, b] = collapse_skills(inv_a, inv_b);
    auto& wa = lora->lora_A->weight;  // [r, d_in]
    auto& wb = lora->lora_B->weight;  // [d_out, r]
    if (a.size(0) != wa.size(1) || a.size(1) != wa.size(0) || b.size(1) != wb.size(0) || b.size(0) != wb.size(1)) {
      std::ostringstream msg;
      msg << "wrong shape for '" << name << ".poly_lora.lora_a/lora_b': collapse " << a.sizes() << " / " << b.sizes()
          << " vs LoRA " << wa.sizes() << " / " << wb.sizes();
      fail_input(where(file.string()) + msg.str());
    }
    wa.copy_(a.t());
    wb.copy_(b.t());
  }
  return set;
}

ParamGroup adapter_group(const torch::nn::Module& model, const adapters::AdapterSet& set, const Config& config) {
  return {"adapter", set.named_trainable_parameters(model), config.adapt.learning_rate, config.train.weight_decay};
}

// The single-adapter spec of a fresh baseline adapter.
adapters::AdapterSpec fresh_spec(const VariantInfo& v, const Pretrained& p, const Config& config) {
  Config c = config;
  const std::string& k = v.adapter_kind;
  if (k == "adapter") {
    c.adapter.kind = config.adapter.kind == "houlsby" ? "houlsby" : "pfeiffer";
  } else if (k == "compacter") {
    c.adapter.kind = config.adapter.kind == "compacterpp" ? "compacterpp" : "compacter";
  } else {
    c.adapter.kind = k;
  }
  // A Poly/MHR config's target_modules name LoRA sites; other kinds take their own defaults.
  if (k != "lora") c.adapter.target_modules.clear();
  adapters::AdapterSpec spec = adapter_spec(c);
  if (k == "lora") {
    // = Poly with S = 1 (methods.md §2): scale 1/r, at the inventory's rank and sites when there is one.
    spec.lora.lora_alpha = 1.0;
    if (p.has_inventory()) {
      spec.lora.r = p.manifest.at("rank").get<int64_t>();
      spec.target_modules = adapters::TargetModules::pattern(p.manifest.at("target_modules").get<std::string>());
    } else {
      spec.target_modules = adapters::TargetModules::pattern(poly_targets(config));
    }
  }
  return spec;
}

}  // namespace

AttachedVariant attach_variant(T5ForConditionalGenerationImpl& model, const std::string& name,
                               const Pretrained& pretrained, const Config& config) {
  const VariantInfo& v = find_variant(name);
  check_variant_runs_on(v, pretrained);
  AttachedVariant out;
  out.variant = v.name;
  switch (v.family) {
    case VariantFamily::kRouted:
    case VariantFamily::kRoutingOnly: {
      out.inventory = load_inventory(pretrained.dir, model);
      const bool z_only = v.family == VariantFamily::kRoutingOnly;
      ParamGroup inventory{"inventory", {}, config.adapt.learning_rate, config.train.weight_decay};
      ParamGroup routing{"routing", {}, config.adapt.z_learning_rate, config.train.weight_decay};
      for (auto& [site, poly] : out.inventory.sites) {
        // The new task gets a fresh row; the pre-trained tasks' rows are not used (methods.md §2).
        poly->router->reset_tasks(1);
        poly->lora_a.set_requires_grad(!z_only);
        poly->lora_b.set_requires_grad(!z_only);
        if (!z_only) {
          inventory.params.emplace_back(site + ".poly_lora.lora_a", poly->lora_a);
          inventory.params.emplace_back(site + ".poly_lora.lora_b", poly->lora_b);
        }
        routing.params.emplace_back(site + ".poly_lora.router.module_logits", poly->router->module_logits);
      }
      out.inventory.task_names = {"adapted task"};
      if (!inventory.params.empty()) out.groups.push_back(std::move(inventory));
      out.groups.push_back(std::move(routing));
      break;
    }
    case VariantFamily::kCollapsed:
      out.adapter_set = attach_collapsed(model, pretrained);
      out.has_adapter_set = true;
      out.groups.push_back(adapter_group(model, out.adapter_set, config));
      break;
    case VariantFamily::kFreshAdapter:
      out.adapter_set = adapters::inject(model, fresh_spec(v, pretrained, config), model_info(model));
      out.has_adapter_set = true;
      out.groups.push_back(adapter_group(model, out.adapter_set, config));
      break;
    case VariantFamily::kAdamix: {
      adapters::AdapterSpec spec = fresh_spec(v, pretrained, config);
      spec.adamix = adamix_options(config);
      out.adapter_set = adapters::inject(model, spec, model_info(model));
      out.has_adapter_set = true;
      out.groups.push_back(adapter_group(model, out.adapter_set, config));
      for (const auto& [name, t] : adapters::adapter_state(model, out.adapter_set)) out.merged_params += t.numel();
      out.consistency_weight = config.adamix.consistency_weight;
      break;
    }
    case VariantFamily::kSharedLora: {
      out.adapter_set = adapters::load_adapter(pretrained.dir / "adapter", model, model_info(model));
      out.has_adapter_set = true;
      if (out.adapter_set.spec.kind != "lora")
        fail_input("adapt.variants: variant 'shared-lora' needs a shared LoRA, but " +
                   (pretrained.dir / "adapter" / "adapter_config.json").string() + " holds a '" +
                   out.adapter_set.spec.kind + "' adapter");
      for (auto& p : out.adapter_set.trainable_parameters(model)) p.set_requires_grad(true);
      out.groups.push_back(adapter_group(model, out.adapter_set, config));
      break;
    }
    case VariantFamily::kFull: {
      // HF Trainer's convention: no weight decay on biases and layer norms.
      ParamGroup decay{"backbone", {}, config.adapt.learning_rate, config.train.weight_decay};
      ParamGroup no_decay{"backbone_no_decay", {}, config.adapt.learning_rate, 0.0};
      std::set<const void*> seen;
      for (auto& kv : model.named_parameters()) {
        kv.value().set_requires_grad(true);
        if (!seen.insert(kv.value().unsafeGetTensorImpl()).second) continue;  // tied: once
        const bool nd = kv.key().find("layer_norm") != std::string::npos || kv.key().find("bias") != std::string::npos;
        (nd ? no_decay : decay).params.emplace_back(kv.key(), kv.value());
      }
      if (!decay.params.empty()) out.groups.push_back(std::move(decay));
      if (!no_decay.params.empty()) out.groups.push_back(std::move(no_decay));
      break;
    }
    case VariantFamily::kZeroShot:
      if (pretrained.has_inventory()) {
        out.adapter_set = attach_collapsed(model, pretrained);
        out.has_adapter_set = true;
      } else if (pretrained.has_shared_adapter()) {
        out.adapter_set = adapters::load_adapter(pretrained.dir / "adapter", model, model_info(model));
        out.has_adapter_set = true;
      }
      for (auto& p : model.parameters()) p.set_requires_grad(false);
      break;
  }
  out.trainable_params = count_group_parameters(out.groups);
  return out;
}

}  // namespace peft::train
