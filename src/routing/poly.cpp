#include "routing/poly.h"

#include <cmath>
#include <numeric>
#include <regex>

#include "common/error.h"
#include "models/batched_matmul.h"
#include "models/routed_lowrank.h"
#include "routing/mix.h"

namespace peft::routing {

Sampling parse_sampling(const std::string& name) {
  if (name == "relaxed_bernoulli") return Sampling::kRelaxedBernoulli;
  if (name == "sigmoid") return Sampling::kSigmoid;
  if (name == "straight_through") return Sampling::kStraightThrough;
  fail_input("routing.train_sampling: unknown value '" + name + "'");
}

InventoryInit parse_inventory_init(const std::string& name) {
  if (name == "mhr") return InventoryInit::kMhr;
  if (name == "kaiming_per_head") return InventoryInit::kKaimingPerHead;
  fail_input("routing.init: unknown value '" + name + "'");
}

RouterImpl::RouterImpl(int64_t n_tasks, int64_t heads, int64_t skills, Sampling sampling, double tau)
    : n_heads(heads), n_skills(skills), train_sampling(sampling), temperature(tau) {
  module_logits = register_parameter("module_logits", torch::empty({n_tasks, heads * skills}));
  torch::NoGradGuard no_grad;
  module_logits.uniform_(-1e-3, 1e-3);
}

void RouterImpl::reset_tasks(int64_t n_tasks) {
  torch::NoGradGuard no_grad;
  module_logits.set_data(torch::empty({n_tasks, n_heads * n_skills}, module_logits.options()).uniform_(-1e-3, 1e-3));
}

torch::Tensor RouterImpl::weights(const torch::Tensor& task_ids, bool training) const {
  const auto z = module_logits.index_select(0, task_ids).view({-1, n_heads, n_skills});
  const bool relaxed = training && train_sampling != Sampling::kSigmoid;
  if (routing_weights_applies(z, torch::Tensor())) {  // CPU: one op; the noise drawn as below (same stream)
    const torch::Tensor noise = relaxed ? torch::rand_like(z) : torch::Tensor();
    return routing_weights(z, noise, temperature, relaxed && train_sampling == Sampling::kStraightThrough);
  }
  torch::Tensor u;
  if (!training || train_sampling == Sampling::kSigmoid) {
    u = torch::sigmoid(z);
  } else {
    // Relaxed Bernoulli (binary Concrete): logistic noise log U - log(1-U), reparameterised.
    const auto noise = torch::rand_like(z).clamp(1e-6, 1.0 - 1e-6);
    u = torch::sigmoid((z + noise.log() - (1 - noise).log()) / temperature);
    if (train_sampling == Sampling::kStraightThrough) {
      const auto hard = (u > 0.5).to(u.scalar_type());
      u = hard + u - u.detach();
    }
  }
  return u / (u.sum(-1, /*keepdim=*/true) + 1e-12);
}

PolyLoRAImpl::PolyLoRAImpl(int64_t in, int64_t out, const PolyOptions& opts, const std::string& name)
    : in_features(in), out_features(out), options(opts) {
  const int64_t h = opts.n_heads, S = opts.n_skills, r = opts.rank;
  if (h < 1 || in % h != 0 || out % h != 0) {
    int64_t g = std::gcd(in, out), suggestion = 1;
    for (int64_t d = 1; d <= std::min<int64_t>(g, h); ++d)
      if (g % d == 0) suggestion = d;
    fail_input("routing.n_heads: " + std::to_string(h) + " does not divide the input (" + std::to_string(in) +
               ") and output (" + std::to_string(out) + ") size of '" + name + "' (try " +
               std::to_string(suggestion) + ")");
  }
  lora_a = register_parameter("lora_a", torch::empty({h, S, in / h, r}));
  lora_b = register_parameter("lora_b", torch::zeros({h, S, r, out / h}));
  {
    torch::NoGradGuard no_grad;
    // mhr: U(±1/sqrt(3 d_in)) over the whole tensor (MHR reference); kaiming_per_head: kaiming-uniform(a=√5)
    // with fan-in d_in/h, as HF PEFT's Poly draws it.
    const double bound = opts.init == InventoryInit::kMhr ? 1.0 / std::sqrt(3.0 * in) : std::sqrt(double(h) / in);
    lora_a.uniform_(-bound, bound);
  }
  router = register_module("router", Router(opts.n_tasks, h, S, opts.train_sampling, opts.temperature));
}

std::pair<torch::Tensor, torch::Tensor> PolyLoRAImpl::mix(const torch::Tensor& w) const {
  if (mix_inventory_applies(w, lora_a, lora_b)) {  // CPU: one op, straight into the kernel's layouts
    auto [a_t, b] = mix_inventory(w, lora_a, lora_b);
    return {a_t.transpose(1, 2), b};
  }
  const int64_t U = w.size(0), h = options.n_heads, S = options.n_skills, r = options.rank;
  // Elsewhere, per head q, one [U, S] x [S, ...] product (batched_matmul over the heads; einsum's bmm went through
  // LibTorch 1.13's select + addmm per head). The reshapes copy into the layouts the per-example products read.
  const torch::Tensor w_heads = w.permute({1, 0, 2});  // [h, U, S]
  // A: sum_s w[u,q,s] A[q,s] -> [h, U, d_in/h * r] -> [U, r, h, d_in/h] -> heads stacked along the input dim,
  // stored as [U, r, d_in] (the layout the per-example kernel reads) and returned as its [U, d_in, r] view.
  auto a = batched_matmul(w_heads, lora_a.view({h, S, -1}))
               .view({h, U, in_features / h, r})
               .permute({1, 3, 0, 2})
               .reshape({U, r, in_features})
               .transpose(1, 2);
  // B: [h, U, r * d_out/h] -> [U, r, h, d_out/h] -> heads side by side along the output dim -> [U, r, d_out].
  auto b = batched_matmul(w_heads, lora_b.view({h, S, -1}))
               .view({h, U, r, out_features / h})
               .permute({1, 2, 0, 3})
               .reshape({U, r, out_features});
  return {a, b};
}

std::pair<torch::Tensor, torch::Tensor> PolyLoRAImpl::mixed_factors(const torch::Tensor& unique_tasks,
                                                                    bool training) const {
  return mix(router->weights(unique_tasks, training));
}

const TaskGroups& task_groups(const ForwardContext& ctx) {
  auto it = ctx.cache.find("routing.task_groups");
  if (it == ctx.cache.end()) {
    if (!ctx.task_ids.defined()) throw std::logic_error("Poly/MHR forward needs ForwardContext::task_ids");
    auto [unique, inverse] = at::_unique(ctx.task_ids, /*sorted=*/true, /*return_inverse=*/true);
    it = ctx.cache.emplace("routing.task_groups", TaskGroups{unique, inverse}).first;
  }
  return std::any_cast<const TaskGroups&>(it->second);
}

std::pair<torch::Tensor, torch::Tensor> PolyLoRAImpl::context_factors(const ForwardContext& ctx) const {
  const bool training = ctx.training && is_training();
  const TaskGroups& groups = task_groups(ctx);
  // The mixed factors of each distinct task. Without autograd and sampling they are constant for the whole
  // context, and greedy generation reuses one context for every decoding step: mix once, not once per token.
  torch::Tensor a, b;
  const bool reuse = !training && !torch::GradMode::is_enabled();
  const std::string key = "routing.mixed." + std::to_string(reinterpret_cast<uintptr_t>(this));
  if (auto it = reuse ? ctx.cache.find(key) : ctx.cache.end(); it != ctx.cache.end()) {
    std::tie(a, b) = std::any_cast<const std::pair<torch::Tensor, torch::Tensor>&>(it->second);
  } else {
    std::tie(a, b) = mixed_factors(groups.unique, training);  // one mix per distinct task, not per example
    if (reuse) ctx.cache.emplace(key, std::make_pair(a, b));
  }
  return {a, b};
}

torch::Tensor PolyLoRAImpl::fused_forward(const torch::Tensor& x, const torch::Tensor& weight,
                                          const torch::Tensor& bias, const ForwardContext& ctx) {
  if (!routed_lowrank_linear_applies(x, weight, bias, lora_a)) return {};  // checked before mixing
  const auto [a, b] = context_factors(ctx);
  return routed_lowrank_linear(x, weight, bias, a.transpose(1, 2), b, task_groups(ctx).inverse, scale());
}

torch::Tensor PolyLoRAImpl::transform_output(const torch::Tensor& x, torch::Tensor y, const ForwardContext& ctx) {
  const auto [a, b] = context_factors(ctx);
  const TaskGroups& groups = task_groups(ctx);
  if (a.size(0) == 1) {  // one task in the batch: y + s (x A) B as one GEMM that starts from y (beta = 1)
    const auto down = torch::matmul(x.reshape({-1, in_features}), a[0]);
    return torch::addmm(y.reshape({-1, out_features}), down, b[0], /*beta=*/1, scale()).view(y.sizes());
  }
  const auto x3 = x.reshape({x.size(0), -1, in_features});
  const auto y3 = y.reshape({y.size(0), -1, out_features});
  const auto a_t = a.transpose(1, 2);  // [U, r, d_in], contiguous (see mix)
  if (routed_lowrank_applies(y3, x3, a_t, b))  // CPU: each example reads its task's factors through the index
    return routed_lowrank_update(y3, x3, a_t, b, groups.inverse, scale()).view(y.sizes());
  // Elsewhere: gather each row's low-rank factors (B x d_in x r, never a d_in x d_out matrix) and multiply
  // per example, scaled at rank r, the cheap side.
  const auto a_rows = a.index_select(0, groups.inverse), b_rows = b.index_select(0, groups.inverse);
  return y + batched_matmul(batched_matmul(x3, a_rows) * scale(), b_rows).view(y.sizes());
}

std::vector<std::pair<std::string, PolyLoRA>> attach_poly(torch::nn::Module& model, const std::string& target_regex,
                                                          const PolyOptions& options) {
  std::regex re;
  try {
    re = std::regex(target_regex);
  } catch (const std::regex_error& e) {
    fail_input("adapter.target_modules: invalid regular expression '" + target_regex + "'");
  }
  std::vector<std::pair<std::string, PolyLoRA>> attached;
  for (const auto& item : model.named_modules("", /*include_self=*/false)) {
    auto* linear = dynamic_cast<AdaptableLinearImpl*>(item.value().get());
    if (!linear || !std::regex_match(item.key(), re)) continue;
    PolyLoRA poly(linear->in_features, linear->out_features, options, item.key());
    linear->register_module("poly_lora", poly);
    linear->add_hook(poly.ptr());
    attached.emplace_back(item.key(), poly);
  }
  if (attached.empty())
    fail_input("adapter.target_modules: '" + target_regex + "' matches no linear layer of the model");
  return attached;
}

}  // namespace peft::routing
