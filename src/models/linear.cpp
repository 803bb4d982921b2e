#include "models/linear.h"

#include "models/skinny_linear.h"

namespace peft {

AdaptableLinearImpl::AdaptableLinearImpl(int64_t in, int64_t out, bool with_bias)
    : in_features(in), out_features(out) {
  weight = register_parameter("weight", torch::empty({out, in}));
  if (with_bias) bias = register_parameter("bias", torch::zeros({out}));
  // Same init as torch.nn.Linear, so random-weight models (bench, tests) look like real ones.
  torch::nn::init::kaiming_uniform_(weight, std::sqrt(5.0));
  if (with_bias) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));
    torch::nn::init::uniform_(bias, -bound, bound);
  }
}

torch::Tensor AdaptableLinearImpl::base_forward(const torch::Tensor& x) const {
  if (skinny_linear_applies(x, weight)) return skinny_linear(x, weight, bias);  // decoding: a few rows
  return torch::nn::functional::linear(x, weight, bias);
}

torch::Tensor AdaptableLinearImpl::forward(const torch::Tensor& x, const ForwardContext& ctx) {
  if (hooks_.empty()) return base_forward(x);
  if (hooks_.size() == 1)
    if (torch::Tensor out = hooks_[0]->fused_forward(x, weight, bias, ctx); out.defined()) return out;
  torch::Tensor in = x;
  for (auto& h : hooks_) in = h->transform_input(in, ctx);
  torch::Tensor y = base_forward(in);
  for (auto& h : hooks_) y = h->transform_output(x, std::move(y), ctx);
  return y;
}

}  // namespace peft
