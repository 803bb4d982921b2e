#include "adapters/inject.h"

#include <regex>
#include <set>
#include <stdexcept>

#include "adapters/ia3.h"
#include "common/error.h"
#include "models/linear.h"

namespace peft::adapters {

// ---- matching ---------------------------------------------------------------------------------------------

bool TargetModules::matches(const std::string& name) const {
  if (regex) return std::regex_match(name, std::regex(*regex));
  for (const auto& t : names) {
    if (name == t) return true;
    if (name.size() > t.size() && name.compare(name.size() - t.size(), t.size(), t) == 0 &&
        name[name.size() - t.size() - 1] == '.')
      return true;
  }
  return false;
}

std::string TargetModules::describe() const {
  if (regex) return "'" + *regex + "'";
  std::string s = "[";
  for (size_t i = 0; i < names.size(); ++i) s += (i ? ", " : "") + names[i];
  return s + "]";
}

nlohmann::json TargetModules::to_json() const {
  if (regex) return *regex;
  if (names.empty()) return nullptr;
  return names;
}

TargetModules TargetModules::from_json(const nlohmann::json& j) {
  if (j.is_null()) return {};
  if (j.is_string()) return pattern(j.get<std::string>());
  return list(j.get<std::vector<std::string>>());
}

TargetModules default_targets(const std::string& kind, const std::string& family) {
  if (kind == "lora") {
    if (family == "t5") return TargetModules::list({"q", "k", "v", "o"});
    if (family == "bert") return TargetModules::list({"query", "value"});
  } else if (kind == "ia3") {
    if (family == "t5") return TargetModules::list({"k", "v", "wo"});
    if (family == "bert") return TargetModules::pattern(R"(.*\.(key|value)|(.*\.)?layer\.\d+\.output\.dense)");
  } else {
    return {};  // sub-layer, attention and embedding sites are found by kind, every one by default
  }
  throw InputError("adapters.target_modules: no default for " + kind + " on model family '" + family +
                   "', set target_modules");
}

TargetModules default_feedforward_modules(const std::string& family) {
  if (family == "t5") return TargetModules::list({"wo"});
  if (family == "bert") return TargetModules::pattern(R"((.*\.)?layer\.\d+\.output\.dense)");
  throw InputError("adapters.feedforward_modules: no default for model family '" + family + "'");
}

// ---- counting ---------------------------------------------------------------------------------------------

ParameterCount count_parameters(const torch::nn::Module& model) {
  ParameterCount c;
  std::set<const void*> seen;
  for (const auto& p : model.parameters()) {
    if (!seen.insert(p.unsafeGetTensorImpl()).second) continue;
    c.total += p.numel();
    if (p.requires_grad()) c.trainable += p.numel();
  }
  return c;
}

// ---- AdapterSet -------------------------------------------------------------------------------------------

namespace {

std::set<const void*> impls_of(const std::vector<torch::Tensor>& ts) {
  std::set<const void*> s;
  for (const auto& t : ts) s.insert(t.unsafeGetTensorImpl());
  return s;
}

std::string some_names(const std::vector<std::string>& names) {
  std::string s;
  for (size_t i = 0; i < names.size() && i < 4; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > 4) s += ", ...";
  return s.empty() ? "none" : s;
}

}  // namespace

std::vector<std::pair<std::string, torch::Tensor>> AdapterSet::named_trainable_parameters(
    const torch::nn::Module& model) const {
  std::vector<torch::Tensor> owned;
  for (const auto& a : adapters)
    for (const auto& p : a->parameters()) owned.push_back(p);
  for (const auto& s : shared)
    for (const auto& p : s.second->parameters()) owned.push_back(p);
  auto modules = model.named_modules("", /*include_self=*/false);
  for (const auto& name : modules_to_save)
    for (const auto& p : modules[name]->parameters()) owned.push_back(p);
  const auto wanted = impls_of(owned);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  std::set<const void*> seen;
  for (const auto& p : model.named_parameters())
    if (wanted.count(p.value().unsafeGetTensorImpl()) && seen.insert(p.value().unsafeGetTensorImpl()).second)
      out.emplace_back(p.key(), p.value());
  return out;
}

std::vector<torch::Tensor> AdapterSet::trainable_parameters(const torch::nn::Module& model) const {
  std::vector<torch::Tensor> out;
  for (auto& np : named_trainable_parameters(model)) out.push_back(np.second);
  return out;
}

std::vector<std::string> AdapterSet::site_names() const {
  std::vector<std::string> out;
  for (const auto& a : adapters) out.push_back(a->site_name());
  return out;
}

int64_t AdapterSet::num_adapter_parameters() const {
  std::vector<torch::Tensor> all;
  for (const auto& a : adapters)
    for (const auto& p : a->parameters()) all.push_back(p);
  for (const auto& s : shared)
    for (const auto& p : s.second->parameters()) all.push_back(p);
  int64_t n = 0;
  std::set<const void*> seen;
  for (const auto& p : all)
    if (seen.insert(p.unsafeGetTensorImpl()).second) n += p.numel();
  return n;
}

bool AdapterSet::mergeable() const {
  for (const auto& a : adapters)
    if (!a->mergeable()) return false;
  return !adapters.empty();
}

void AdapterSet::merge() {
  if (!mergeable()) throw InputError("adapters: kind '" + spec.kind + "' cannot be merged into the base weights");
  for (auto& a : adapters) a->merge();
}

void AdapterSet::unmerge() {
  if (!mergeable()) throw InputError("adapters: kind '" + spec.kind + "' cannot be merged into the base weights");
  for (auto& a : adapters) a->unmerge();
}

void AdapterSet::fold(torch::nn::Module& model) {
  torch::NoGradGuard no_grad;
  std::vector<std::pair<std::string, std::shared_ptr<torch::nn::Module>>> kept;
  for (auto& s : shared) {
    auto generator = std::dynamic_pointer_cast<PrefixGeneratorImpl>(s.second);
    if (!generator) {
      kept.push_back(s);
      continue;
    }
    const torch::Tensor all = generator->forward();
    for (auto& a : adapters)
      if (auto p = std::dynamic_pointer_cast<PrefixAdapter>(a); p && p->generator() == generator.get())
        p->fold(all);
    model.unregister_module(s.first);
  }
  shared = std::move(kept);
  for (auto& a : adapters)
    for (auto& p : a->parameters()) p.set_requires_grad(true);
}

// ---- injection --------------------------------------------------------------------------------------------

namespace {

using ModulePtr = std::shared_ptr<torch::nn::Module>;
using NamedModules = std::vector<std::pair<std::string, ModulePtr>>;

NamedModules all_modules(torch::nn::Module& model) {
  NamedModules out;
  for (const auto& m : model.named_modules("", /*include_self=*/false)) out.emplace_back(m.key(), m.value());
  return out;
}

template <typename Site>
NamedModules sites_of(const NamedModules& modules) {
  NamedModules out;
  for (const auto& m : modules)
    if (std::dynamic_pointer_cast<Site>(m.second)) out.push_back(m);
  return out;
}

NamedModules filter_by(const NamedModules& candidates, const TargetModules& targets, const std::string& what) {
  if (!targets.specified()) return candidates;
  NamedModules out;
  for (const auto& m : candidates)
    if (targets.matches(m.first)) out.push_back(m);
  if (out.empty()) {
    std::vector<std::string> names;
    for (const auto& m : candidates) names.push_back(m.first);
    throw InputError("adapters.target_modules: " + targets.describe() + " matched no " + what + " of the model (" +
                     what + "s are e.g. " + some_names(names) + ")");
  }
  return out;
}

void attach(AdapterSet& set, torch::nn::Module& site, std::shared_ptr<Adapter> adapter, const torch::Device& device) {
  adapter->to(device);
  adapter->attach(site, adapter);
  set.adapters.push_back(std::move(adapter));
}

NamedModules sublayers(const NamedModules& modules, bool attention, bool cross, const TargetModules& targets) {
  NamedModules out;
  for (const auto& m : sites_of<HasSublayerHooks>(modules)) {
    const auto kind = std::dynamic_pointer_cast<HasSublayerHooks>(m.second)->sublayer_kind;
    if (kind == SublayerKind::kFeedForward || (attention && kind == SublayerKind::kSelfAttention) ||
        (attention && cross && kind == SublayerKind::kCrossAttention))
      out.push_back(m);
  }
  if (out.empty()) throw InputError("adapters: the model exposes no sub-layer adapter sites");
  return filter_by(out, targets, "sub-layer");
}

std::string prefix_group(const std::string& name) {
  if (name.find("EncDecAttention") != std::string::npos) return "cross";
  if (name.rfind("decoder.", 0) == 0 || name.find(".decoder.") != std::string::npos) return "decoder";
  return "encoder";
}

void inject_prefix(AdapterSet& set, torch::nn::Module& model, const NamedModules& modules, const PrefixOptions& o,
                   const TargetModules& targets, const ModelInfo& info, const torch::Device& device) {
  if (info.num_heads <= 0 || info.d_kv <= 0 || info.d_model <= 0)
    throw std::invalid_argument("prefix tuning needs ModelInfo d_model, num_heads and d_kv");
  auto attn = sites_of<HasPrefixHooks>(modules);
  if (attn.empty()) throw InputError("adapters: the model exposes no attention (prefix) sites");
  attn = filter_by(attn, targets, "attention module");
  for (const std::string group : {"encoder", "decoder", "cross"}) {
    NamedModules members;
    for (const auto& m : attn)
      if (prefix_group(m.first) == group) members.push_back(m);
    if (members.empty()) continue;
    const std::string name = "prefix_generator_" + group;
    PrefixGenerator generator(static_cast<int64_t>(members.size()), info.d_model, info.num_heads, info.d_kv, o);
    generator->to(device);
    model.register_module(name, generator);
    set.shared.emplace_back(name, generator.ptr());
    for (size_t i = 0; i < members.size(); ++i)
      attach(set, *members[i].second,
             std::make_shared<PrefixAdapter>(members[i].first, generator, name, static_cast<int64_t>(i)), device);
  }
}

void inject_bottleneck(AdapterSet& set, const NamedModules& modules, const BottleneckOptions& resolved,
                       const TargetModules& targets, const ModelInfo& info, const torch::Device& device,
                       const std::optional<AdamixOptions>& adamix = std::nullopt) {
  const bool houlsby = resolved.config == "houlsby";
  for (const auto& m : sublayers(modules, houlsby, resolved.cross_attention, targets)) {
    std::shared_ptr<Adapter> a;
    if (adamix)
      a = std::make_shared<AdamixBottleneck>(m.first, info.d_model, resolved, *adamix);
    else
      a = std::make_shared<BottleneckAdapter>(m.first, info.d_model, resolved);
    attach(set, *m.second, a, device);
  }
}

}  // namespace

AdapterSet inject(torch::nn::Module& model, const AdapterSpec& spec, const ModelInfo& info) {
  AdapterSet set;
  set.spec = spec;
  set.info = info;
  const auto modules = all_modules(model);
  torch::Device device(torch::kCPU);
  for (const auto& p : model.parameters()) {
    device = p.device();
    break;
  }
  const std::string& kind = spec.kind;
  if (spec.adamix && kind != "lora" && kind != "bottleneck")
    throw InputError("adamix: mixes lora or bottleneck adapters, not '" + kind + "'");

  if (kind == "lora" || kind == "ia3") {
    const TargetModules targets = spec.target_modules.specified() ? spec.target_modules
                                                                  : default_targets(kind, info.family);
    set.spec.target_modules = targets;
    TargetModules feedforward;
    if (kind == "ia3") {
      feedforward = spec.feedforward_modules.specified() ? spec.feedforward_modules
                                                         : default_feedforward_modules(info.family);
      set.spec.feedforward_modules = feedforward;
    }
    for (const auto& m : filter_by(sites_of<AdaptableLinearImpl>(modules), targets, "linear layer")) {
      AdaptableLinear linear(std::dynamic_pointer_cast<AdaptableLinearImpl>(m.second));
      std::shared_ptr<Adapter> a;
      if (kind == "lora" && spec.adamix)
        a = std::make_shared<AdamixLora>(m.first, linear, spec.lora, *spec.adamix);
      else if (kind == "lora")
        a = std::make_shared<LoraAdapter>(m.first, linear, spec.lora);
      else
        a = std::make_shared<Ia3Adapter>(m.first, linear, feedforward.matches(m.first));
      attach(set, *m.second, a, device);
    }
  } else if (kind == "bottleneck") {
    inject_bottleneck(set, modules, resolve(spec.bottleneck), spec.target_modules, info, device, spec.adamix);
  } else if (kind == "compacter") {
    const auto& o = spec.compacter;
    CompacterShared shared(o.phm_dim, o.phm_init_range);
    shared->to(device);
    model.register_module("compacter_shared", shared);
    set.shared.emplace_back("compacter_shared", shared.ptr());
    for (const auto& m : sublayers(modules, !o.plus_plus, o.cross_attention, spec.target_modules))
      attach(set, *m.second, std::make_shared<CompacterAdapter>(m.first, info.d_model, o, shared), device);
  } else if (kind == "prefix") {
    inject_prefix(set, model, modules, spec.prefix, spec.target_modules, info, device);
  } else if (kind == "mam") {
    inject_prefix(set, model, modules, spec.mam.prefix, {}, info, device);
    inject_bottleneck(set, modules, mam_parallel_options(spec.mam, info.d_model), {}, info, device);
  } else if (kind == "prompt") {
    NamedModules sites;
    for (const auto& m : sites_of<HasEmbeddingHooks>(modules))
      if (prefix_group(m.first) == "encoder") sites.push_back(m);
    if (sites.empty()) throw InputError("adapters: the model exposes no encoder embedding site for prompt tuning");
    attach(set, *sites.front().second, std::make_shared<PromptAdapter>(sites.front().first, info.d_model, spec.prompt),
           device);
  } else {
    throw InputError("adapters.kind: unknown value '" + kind +
                     "', expected lora, ia3, bottleneck, compacter, prefix, prompt or mam");
  }

  // Only what the adapters own trains (decided by ownership, never by name substrings).
  for (auto& p : model.parameters()) p.set_requires_grad(false);
  for (const auto& t : spec.modules_to_save) {
    bool found = false;
    for (const auto& m : modules)
      if (TargetModules::list({t}).matches(m.first)) {
        set.modules_to_save.push_back(m.first);
        found = true;
      }
    if (!found) throw InputError("adapters.modules_to_save: '" + t + "' matched no module of the model");
  }
  for (auto& p : set.trainable_parameters(model)) p.set_requires_grad(true);
  return set;
}

}  // namespace peft::adapters
