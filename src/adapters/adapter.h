// The one interface every adapter kind implements (methods.md §0-§6). An adapter is created for one site
// (a module found by its Hugging Face name), owns its parameters as a torch Module, registers them on the
// site so the model's named_parameters() show them (`...SelfAttention.q.lora_A.weight`), and contributes to
// the forward pass through the hook of models/hooks.h it implements.
#pragma once
#include <torch/nn/module.h>

#include <cstdint>
#include <memory>
#include <string>

namespace peft::adapters {

// Backbone dimensions an adapter needs and cannot read off its site (heads for prefixes).
struct ModelInfo {
  std::string family;     // "t5" or "bert"
  int64_t d_model = 0;    // hidden size
  int64_t num_heads = 0;  // attention heads
  int64_t d_kv = 0;       // per-head size (T5 d_kv; BERT hidden/heads)
};

class Adapter : public torch::nn::Module {
 public:
  explicit Adapter(std::string site_name) : site_name_(std::move(site_name)) {}

  // "lora", "ia3", "bottleneck", "compacter", "prefix", "prompt".
  virtual std::string kind() const = 0;
  // The Hugging Face name of the module this adapter is attached to.
  const std::string& site_name() const { return site_name_; }

  // Registers the parameters on `site` and installs the hook there. Default: the adapter becomes the child
  // `child_name()` of the site; kinds with an empty child_name() (LoRA, (IA)^3) put their own children and
  // parameters directly on the site, as Hugging Face PEFT names them (`q.lora_A.weight`, `k.ia3_l`).
  virtual void attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) = 0;
  virtual std::string child_name() const { return {}; }

  // Merge into the base weights where the kind allows it (LoRA, (IA)^3). Merging twice or unmerging an
  // unmerged adapter is a logic error.
  virtual bool mergeable() const { return false; }
  virtual void merge();
  virtual void unmerge();
  bool merged() const { return merged_; }

 protected:
  // Registers this adapter's direct children and parameters on `site` under the same names.
  void register_flat_on(torch::nn::Module& site);
  bool merged_ = false;

 private:
  std::string site_name_;
};

// Number of elements of the module's parameters (adapter sizes for the closed-form checks).
int64_t numel_of(const torch::nn::Module& module);

}  // namespace peft::adapters
