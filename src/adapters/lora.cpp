#include "adapters/lora.h"

#include <cmath>
#include <stdexcept>

#include "models/dropout.h"
#include "models/routed_lowrank.h"
#include "models/skinny_linear.h"

namespace peft::adapters {

namespace {

struct FusedOperands {
  torch::Tensor b_t, index;
};

}  // namespace

LoraAdapter::LoraAdapter(std::string site_name, AdaptableLinear base, const LoraOptions& options)
    : Adapter(std::move(site_name)), base_(std::move(base)), options_(options) {
  if (options_.r <= 0) throw std::invalid_argument("lora: r must be positive");
  const int64_t d_in = base_->in_features, d_out = base_->out_features;
  lora_A = register_module("lora_A", torch::nn::Linear(torch::nn::LinearOptions(d_in, options_.r).bias(false)));
  lora_B = register_module("lora_B", torch::nn::Linear(torch::nn::LinearOptions(options_.r, d_out).bias(false)));
  torch::NoGradGuard no_grad;
  // kaiming_uniform(a=sqrt(5)) gives U(±1/sqrt(d_in)), HF PEFT's init; B = 0 makes a fresh adapter a no-op.
  torch::nn::init::kaiming_uniform_(lora_A->weight, std::sqrt(5.0));
  lora_B->weight.zero_();
  to(base_->weight.device());
}

void LoraAdapter::attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) {
  register_flat_on(site);
  base_->add_hook(std::dynamic_pointer_cast<LoraAdapter>(self));
}

torch::Tensor LoraAdapter::transform_output(const torch::Tensor& x, torch::Tensor y, const ForwardContext& ctx) {
  if (merged_) return y;
  torch::Tensor h = x;
  if (options_.lora_dropout > 0) h = peft::dropout(h, options_.lora_dropout, ctx.training);
  if (skinny_linear_applies(h, lora_A->weight)) {
    // A few rows without autograd that the fused op does not take (2-D, or several hooks on the linear): both
    // factors through skinny_linear, not two sgemm calls that each wake OpenBLAS's worker for 8 x 512 x 16
    // multiply-adds.
    const torch::Tensor down = skinny_linear(h, lora_A->weight, torch::Tensor());
    return torch::add(y, skinny_linear(down, lora_B->weight, torch::Tensor()), scaling());
  }
  // y + s * (h A^T) B^T as one GEMM that starts from y (beta = 1, alpha = s): no [.., d_out] temporary for
  // the product and no separate add. Out of place: addmm_ on a view of y made autograd wrap the base linear's
  // gradient in CopySlices (a clone and a copy of [tokens, d_out] per adapted linear in every backward).
  const torch::Tensor down = lora_A(h);
  return torch::addmm(y.reshape({-1, y.size(-1)}), down.reshape({-1, down.size(-1)}), lora_B->weight.t(),
                      /*beta=*/1, scaling())
      .view(y.sizes());
}

torch::Tensor LoraAdapter::fused_forward(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                        const ForwardContext& ctx) {
  // Dropout feeds the update a different input than the base: no single op for it.
  if (merged_ || (options_.lora_dropout > 0 && ctx.training)) return {};
  // One task for every example: the routed kernel with U = 1 (A is already its [r, d_in] layout).
  if (!routed_lowrank_linear_applies(x, weight, bias, lora_A->weight)) return {};
  // B^T in the op's [1, r, d_out] layout and the all-zeros task index. Without autograd (evaluation, and greedy
  // decoding: 36 linears x 32 steps on one context) they are made once per context, as Poly's mixed factors:
  // LibTorch's strided copy of B^T alone took ~20 us per call, a third of a decoding step's 512 x 512 linear.
  FusedOperands operands;
  if (ctx.training || torch::GradMode::is_enabled()) {
    operands = {lora_B->weight.t().unsqueeze(0), torch::zeros({x.size(0)}, torch::kLong)};  // B^T a view, in the graph
  } else {
    const std::string key = "lora.fused_operands." + std::to_string(reinterpret_cast<uintptr_t>(this));
    auto it = ctx.cache.find(key);
    if (it == ctx.cache.end() || std::any_cast<const FusedOperands&>(it->second).index.size(0) != x.size(0))
      it = ctx.cache.insert_or_assign(key, FusedOperands{lora_B->weight.t().unsqueeze(0).contiguous(),
                                                         torch::zeros({x.size(0)}, torch::kLong)})
               .first;
    operands = std::any_cast<const FusedOperands&>(it->second);
  }
  return routed_lowrank_linear(x, weight, bias, lora_A->weight.unsqueeze(0), operands.b_t, operands.index, scaling());
}

torch::Tensor LoraAdapter::delta_weight() const { return torch::matmul(lora_B->weight, lora_A->weight) * scaling(); }

void LoraAdapter::merge() {
  if (merged_) throw std::logic_error("lora adapter at '" + site_name() + "' is already merged");
  torch::NoGradGuard no_grad;
  torch::Tensor merged = base_->weight + delta_weight();
  // Safe merge: never leave non-finite weights behind.
  if (!torch::isfinite(merged).all().item<bool>())
    throw std::runtime_error("lora merge at '" + site_name() + "': non-finite values in the merged weight");
  base_->weight.copy_(merged);
  merged_ = true;
}

void LoraAdapter::unmerge() {
  if (!merged_) throw std::logic_error("lora adapter at '" + site_name() + "' is not merged");
  torch::NoGradGuard no_grad;
  base_->weight.sub_(delta_weight());
  merged_ = false;
}

}  // namespace peft::adapters
