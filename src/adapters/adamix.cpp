#include "adapters/adamix.h"

#include <cmath>
#include <stdexcept>

#include "common/error.h"
#include "models/dropout.h"

namespace peft::adapters {

namespace {

torch::Tensor mean_weight(const torch::nn::ModuleList& copies) {
  std::vector<torch::Tensor> w;
  for (size_t i = 0; i < copies->size(); ++i) w.push_back(copies->ptr<torch::nn::LinearImpl>(i)->weight);
  return torch::stack(w).mean(0);
}

torch::Tensor mean_bias(const torch::nn::ModuleList& copies) {
  std::vector<torch::Tensor> b;
  for (size_t i = 0; i < copies->size(); ++i) b.push_back(copies->ptr<torch::nn::LinearImpl>(i)->bias);
  return torch::stack(b).mean(0);
}

const torch::nn::LinearImpl& copy_at(const torch::nn::ModuleList& copies, int64_t i) {
  return *copies->ptr<torch::nn::LinearImpl>(static_cast<size_t>(i));
}

}  // namespace

void check_adamix(const AdamixOptions& o) {
  if (o.num_experts < 1)
    throw InputError("adamix num_experts: must be at least 1, got " + std::to_string(o.num_experts));
  if (o.share != "up" && o.share != "down" && o.share != "none")
    throw InputError("adamix share: unknown value '" + o.share + "', expected up, down or none");
}

int64_t draw_copy(int64_t n) {
  if (n <= 1) return 0;
  return torch::randint(n, {1}, torch::TensorOptions().dtype(torch::kLong)).item<int64_t>();
}

// ---------------------------------------------------------------------------------------------- LoRA

AdamixLora::AdamixLora(std::string site_name, AdaptableLinear base, const LoraOptions& lora,
                       const AdamixOptions& adamix)
    : Adapter(std::move(site_name)), base_(std::move(base)), lora_(lora), adamix_(adamix) {
  if (lora_.r <= 0) throw std::invalid_argument("adamix lora: r must be positive");
  check_adamix(adamix_);
  const int64_t d_in = base_->in_features, d_out = base_->out_features, r = lora_.r;
  const int64_t n_A = adamix_.share == "down" ? 1 : adamix_.num_experts;
  const int64_t n_B = adamix_.share == "up" ? 1 : adamix_.num_experts;
  lora_A = register_module("lora_A", torch::nn::ModuleList());
  lora_B = register_module("lora_B", torch::nn::ModuleList());
  for (int64_t i = 0; i < n_A; ++i) lora_A->push_back(torch::nn::Linear(torch::nn::LinearOptions(d_in, r).bias(false)));
  for (int64_t i = 0; i < n_B; ++i) lora_B->push_back(torch::nn::Linear(torch::nn::LinearOptions(r, d_out).bias(false)));
  torch::NoGradGuard no_grad;
  // One kaiming-uniform(a=√5) draw copied into every A (methods §7: A copies equal at start); B = 0, so a
  // fresh adapter is a no-op and the copies only diverge through the steps that drew them.
  torch::Tensor A0 = torch::empty({r, d_in});
  torch::nn::init::kaiming_uniform_(A0, std::sqrt(5.0));
  for (int64_t i = 0; i < n_A; ++i) copy_at(lora_A, i).weight.copy_(A0);
  for (int64_t i = 0; i < n_B; ++i) copy_at(lora_B, i).weight.zero_();
  to(base_->weight.device());
}

void AdamixLora::attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) {
  register_flat_on(site);
  base_->add_hook(std::dynamic_pointer_cast<AdamixLora>(self));
}

torch::Tensor AdamixLora::A(int64_t i) const { return copy_at(lora_A, i).weight; }
torch::Tensor AdamixLora::B(int64_t i) const { return copy_at(lora_B, i).weight; }

torch::Tensor AdamixLora::transform_output(const torch::Tensor& x, torch::Tensor y, const ForwardContext& ctx) {
  if (merged_) return y;
  const bool train = ctx.training && is_training();
  torch::Tensor h = x;
  if (lora_.lora_dropout > 0) h = peft::dropout(h, lora_.lora_dropout, train);
  torch::Tensor a, b;
  if (train) {
    // One copy per projection for the whole batch, drawn independently (A first, then B).
    const int64_t ia = draw_copy(num_A()), ib = draw_copy(num_B());
    last_route_ = {ia, ib};
    a = A(ia);
    b = B(ib);
  } else {
    a = mean_weight(lora_A);
    b = mean_weight(lora_B);
  }
  return y + torch::matmul(torch::matmul(h, a.t()), b.t()) * scaling();
}

std::pair<torch::Tensor, torch::Tensor> AdamixLora::averaged_lora() const {
  torch::NoGradGuard no_grad;
  return {mean_weight(lora_A).detach().clone(), mean_weight(lora_B).detach().clone()};
}

void AdamixLora::merge() {
  if (merged_) throw std::logic_error("adamix lora adapter at '" + site_name() + "' is already merged");
  torch::NoGradGuard no_grad;
  auto [a, b] = averaged_lora();
  torch::Tensor merged = base_->weight + torch::matmul(b, a) * scaling();
  if (!torch::isfinite(merged).all().item<bool>())
    throw std::runtime_error("adamix lora merge at '" + site_name() + "': non-finite values in the merged weight");
  base_->weight.copy_(merged);
  merged_ = true;
}

void AdamixLora::unmerge() {
  if (!merged_) throw std::logic_error("adamix lora adapter at '" + site_name() + "' is not merged");
  torch::NoGradGuard no_grad;
  auto [a, b] = averaged_lora();
  base_->weight.sub_(torch::matmul(b, a) * scaling());
  merged_ = false;
}

// ---------------------------------------------------------------------------------------- bottleneck

AdamixBottleneck::AdamixBottleneck(std::string site_name, int64_t d, const BottleneckOptions& bottleneck,
                                   const AdamixOptions& adamix)
    : Adapter(std::move(site_name)), bottleneck_(bottleneck), adamix_(adamix), parallel_(is_parallel(bottleneck)) {
  check_adamix(adamix_);
  if (!bottleneck_.scaling) throw std::invalid_argument("adamix bottleneck: options must be resolved");
  const int64_t m = bottleneck_dim(bottleneck_, d);
  const int64_t n_down = adamix_.share == "down" ? 1 : adamix_.num_experts;
  const int64_t n_up = adamix_.share == "up" ? 1 : adamix_.num_experts;
  adapter_down = register_module("adapter_down", torch::nn::ModuleList());
  adapter_up = register_module("adapter_up", torch::nn::ModuleList());
  for (int64_t i = 0; i < n_down; ++i) adapter_down->push_back(torch::nn::Linear(d, m));
  for (int64_t i = 0; i < n_up; ++i) adapter_up->push_back(torch::nn::Linear(m, d));
  torch::NoGradGuard no_grad;
  // Each copy drawn independently, N(0, 0.02) weights and zero biases (microsoft/AdaMix's adapter init).
  for (auto* list : {&adapter_down, &adapter_up})
    for (size_t i = 0; i < (*list)->size(); ++i) {
      auto lin = (*list)->ptr<torch::nn::LinearImpl>(i);
      lin->weight.normal_(0.0, 0.02);
      lin->bias.zero_();
    }
}

void AdamixBottleneck::attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) {
  site.register_module(child_name(), self);
  dynamic_cast<HasSublayerHooks&>(site).sublayer_hooks.push_back(std::dynamic_pointer_cast<AdamixBottleneck>(self));
}

torch::Tensor AdamixBottleneck::apply(const torch::Tensor& input, torch::Tensor output, const ForwardContext& ctx) {
  const torch::Tensor& z = parallel_ ? input : output;
  torch::Tensor wd, bd, wu, bu;
  if (ctx.training && is_training()) {
    const int64_t id = draw_copy(num_down()), iu = draw_copy(num_up());
    last_route_ = {id, iu};
    const auto& dn = copy_at(adapter_down, id);
    const auto& upj = copy_at(adapter_up, iu);
    wd = dn.weight, bd = dn.bias, wu = upj.weight, bu = upj.bias;
  } else {
    wd = mean_weight(adapter_down), bd = mean_bias(adapter_down);
    wu = mean_weight(adapter_up), bu = mean_bias(adapter_up);
  }
  torch::Tensor f = torch::linear(activation(bottleneck_.non_linearity, torch::linear(z, wd, bd)), wu, bu);
  if (parallel_) return output + f * *bottleneck_.scaling;
  return output + f;
}

AveragedBottleneck AdamixBottleneck::averaged() const {
  torch::NoGradGuard no_grad;
  return {mean_weight(adapter_down).detach().clone(), mean_bias(adapter_down).detach().clone(),
          mean_weight(adapter_up).detach().clone(), mean_bias(adapter_up).detach().clone()};
}

void AdamixBottleneck::copy_averaged_into(BottleneckAdapter& target) const {
  AveragedBottleneck avg = averaged();
  torch::NoGradGuard no_grad;
  target.adapter_down->weight.copy_(avg.down_weight);
  target.adapter_down->bias.copy_(avg.down_bias);
  target.adapter_up->weight.copy_(avg.up_weight);
  target.adapter_up->bias.copy_(avg.up_bias);
}

// ------------------------------------------------------------------------------------ consistency

torch::Tensor consistency_loss(const torch::Tensor& logits_p, const torch::Tensor& logits_q, const torch::Tensor& mask) {
  if (logits_p.sizes() != logits_q.sizes())
    throw std::invalid_argument("consistency_loss: logits shapes differ");
  torch::Tensor lp = torch::log_softmax(logits_p.to(torch::kFloat), -1);
  torch::Tensor lq = torch::log_softmax(logits_q.to(torch::kFloat), -1);
  torch::Tensor lp_t = lp.detach(), lq_t = lq.detach();
  // KL(p₂‖p₁) = Σ p₂ (log p₂ − log p₁) with p₂ the detached target; symmetric for the other term.
  torch::Tensor kl_qp = (lq_t.exp() * (lq_t - lp)).sum(-1);
  torch::Tensor kl_pq = (lp_t.exp() * (lp_t - lq)).sum(-1);
  torch::Tensor per_position = 0.5 * (kl_qp + kl_pq);
  if (!mask.defined()) return per_position.mean();
  torch::Tensor w = (mask != 0).to(per_position.dtype());
  if (w.sizes() != per_position.sizes()) throw std::invalid_argument("consistency_loss: mask shape differs from logits[..., 0]");
  return (per_position * w).sum() / w.sum().clamp_min(1.0);
}

}  // namespace peft::adapters
