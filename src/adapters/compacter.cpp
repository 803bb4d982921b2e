#include "adapters/compacter.h"

#include "adapters/bottleneck.h"
#include "common/error.h"

namespace peft::adapters {

CompacterSharedImpl::CompacterSharedImpl(int64_t n, double init_range) {
  phm_rule = register_parameter("phm_rule", torch::empty({n, n, n}));
  torch::NoGradGuard no_grad;
  phm_rule.normal_(0.0, init_range);
}

torch::Tensor phm_weight(const torch::Tensor& phm_rule, const torch::Tensor& W_left, const torch::Tensor& W_right) {
  const int64_t n = phm_rule.size(0);
  torch::Tensor W = torch::bmm(W_left, W_right);  // [n, in/n, out/n], rank 1 each
  // kron(A, B)[a·p + c, b·q + d] = A[a, b]·B[c, d], summed over i.
  torch::Tensor H = torch::einsum("iab,icd->acbd", {phm_rule, W});
  return H.reshape({n * W.size(1), n * W.size(2)});
}

PhmLinearImpl::PhmLinearImpl(int64_t in, int64_t out, int64_t n, torch::Tensor shared_phm_rule)
    : phm_rule(std::move(shared_phm_rule)) {
  if (in % n != 0 || out % n != 0)
    throw InputError("compacter phm_dim: " + std::to_string(n) + " must divide both sizes of a PHM layer, got " +
                     std::to_string(in) + " -> " + std::to_string(out) + " (choose another reduction_factor)");
  W_left = register_parameter("W_left", torch::empty({n, in / n, 1}));
  W_right = register_parameter("W_right", torch::empty({n, 1, out / n}));
  b = register_parameter("b", torch::zeros({out}));
  torch::NoGradGuard no_grad;
  for (int64_t i = 0; i < n; ++i) {  // glorot-uniform per factor, as the Compacter reference
    torch::nn::init::xavier_uniform_(W_left[i]);
    torch::nn::init::xavier_uniform_(W_right[i]);
  }
}

torch::Tensor PhmLinearImpl::forward(const torch::Tensor& x) {
  return torch::matmul(x, phm_weight(phm_rule, W_left, W_right)) + b;
}

CompacterAdapter::CompacterAdapter(std::string site_name, int64_t d, const CompacterOptions& options,
                                   CompacterShared shared)
    : Adapter(std::move(site_name)), options_(options) {
  check_activation(options_.non_linearity);
  if (options_.reduction_factor <= 0 || d / options_.reduction_factor <= 0)
    throw InputError("compacter reduction_factor: " + std::to_string(options_.reduction_factor) +
                     " leaves no bottleneck for d = " + std::to_string(d));
  const int64_t m = d / options_.reduction_factor;
  adapter_down = register_module("adapter_down", PhmLinear(d, m, options_.phm_dim, shared->phm_rule));
  adapter_up = register_module("adapter_up", PhmLinear(m, d, options_.phm_dim, shared->phm_rule));
}

void CompacterAdapter::attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) {
  site.register_module(child_name(), self);
  dynamic_cast<HasSublayerHooks&>(site).sublayer_hooks.push_back(std::dynamic_pointer_cast<CompacterAdapter>(self));
}

torch::Tensor CompacterAdapter::apply(const torch::Tensor&, torch::Tensor output, const ForwardContext&) {
  return output + adapter_up(activation(options_.non_linearity, adapter_down(output)));
}

}  // namespace peft::adapters
