#include "adapters/ia3.h"

#include <stdexcept>

namespace peft::adapters {

Ia3Adapter::Ia3Adapter(std::string site_name, AdaptableLinear base, bool is_feedforward)
    : Adapter(std::move(site_name)), base_(std::move(base)), is_feedforward_(is_feedforward) {
  auto shape = is_feedforward_ ? std::vector<int64_t>{1, base_->in_features}
                               : std::vector<int64_t>{base_->out_features, 1};
  ia3_l = register_parameter("ia3_l", torch::ones(shape, base_->weight.options()));
}

void Ia3Adapter::attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) {
  register_flat_on(site);
  base_->add_hook(std::dynamic_pointer_cast<Ia3Adapter>(self));
}

torch::Tensor Ia3Adapter::transform_input(const torch::Tensor& x, const ForwardContext&) {
  if (merged_ || !is_feedforward_) return x;
  return x * ia3_l.flatten();
}

torch::Tensor Ia3Adapter::transform_output(const torch::Tensor&, torch::Tensor y, const ForwardContext&) {
  if (merged_ || is_feedforward_) return y;
  return y * ia3_l.flatten();
}

void Ia3Adapter::merge() {
  if (merged_) throw std::logic_error("ia3 adapter at '" + site_name() + "' is already merged");
  torch::NoGradGuard no_grad;
  // [d_out,1] broadcasts over rows (diag(l) W), [1,d_in] over columns (W diag(l)).
  base_->weight.mul_(ia3_l);
  if (!is_feedforward_ && base_->bias.defined()) base_->bias.mul_(ia3_l.flatten());
  merged_ = true;
}

void Ia3Adapter::unmerge() {
  if (!merged_) throw std::logic_error("ia3 adapter at '" + site_name() + "' is not merged");
  torch::NoGradGuard no_grad;
  // Division as in HF PEFT; an l entry at exactly 0 cannot be undone.
  base_->weight.div_(ia3_l);
  if (!is_feedforward_ && base_->bias.defined()) base_->bias.div_(ia3_l.flatten());
  merged_ = false;
}

}  // namespace peft::adapters
