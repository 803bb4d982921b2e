#include "models/rms_norm.h"

#include <cmath>

#include "common/cpu_float.h"
#include "models/simd.h"

namespace peft {

namespace {

using simd::dot;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// y = w * (x * rstd) per row, rstd = 1 / sqrt(mean(x^2) + eps).
__attribute__((target_clones("avx2", "default"))) void forward_rows(const float* x, const float* w, float* y,
                                                                    float* rstd, int64_t rows, int64_t n, float eps) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* yr = y + r * n;
    const float inv = 1.0f / std::sqrt(dot(xr, xr, n) / static_cast<float>(n) + eps);
    rstd[r] = inv;
    for (int64_t j = 0; j < n; ++j) yr[j] = w[j] * (xr[j] * inv);
  }
}

// u = g * w; dx = rstd * u - x * rstd^3 * (u . x) / n; dw += g * x * rstd (when dw is not null).
__attribute__((target_clones("avx2", "default"))) void backward_rows(const float* x, const float* w, const float* g,
                                                                     const float* rstd, float* dx, float* dw,
                                                                     float* u, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    const float* gr = g + r * n;
    float* dxr = dx + r * n;
    const float inv = rstd[r];
    for (int64_t j = 0; j < n; ++j) u[j] = gr[j] * w[j];
    const float c = inv * inv * inv * dot(u, xr, n) / static_cast<float>(n);
    for (int64_t j = 0; j < n; ++j) dxr[j] = inv * u[j] - xr[j] * c;
    if (dw)
      for (int64_t j = 0; j < n; ++j) dw[j] += gr[j] * (xr[j] * inv);
  }
}

class RmsNorm : public torch::autograd::Function<RmsNorm> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in, const torch::Tensor& weight_in,
                               double eps) {
    const torch::Tensor x = x_in.contiguous(), weight = weight_in.contiguous();
    const int64_t n = x.size(-1), rows = x.numel() / std::max<int64_t>(1, n);
    torch::Tensor y = torch::empty_like(x);
    torch::Tensor rstd = torch::empty({rows}, x.options());
    forward_rows(x.data_ptr<float>(), weight.data_ptr<float>(), y.data_ptr<float>(), rstd.data_ptr<float>(), rows, n,
                 static_cast<float>(eps));
    ctx->save_for_backward({x, weight, rstd});
    return y;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &weight = saved[1], &rstd = saved[2];
    const torch::Tensor g = grad_outputs[0].contiguous();
    const int64_t n = x.size(-1), rows = rstd.size(0);
    torch::Tensor dx = torch::empty_like(x);
    const bool want_dw = ctx->needs_input_grad(1);
    torch::Tensor dw = want_dw ? torch::zeros_like(weight) : torch::Tensor();
    torch::Tensor u = torch::empty({n}, x.options());  // one row of g * w
    backward_rows(x.data_ptr<float>(), weight.data_ptr<float>(), g.data_ptr<float>(), rstd.data_ptr<float>(),
                  dx.data_ptr<float>(), want_dw ? dw.data_ptr<float>() : nullptr, u.data_ptr<float>(), rows, n);
    return {ctx->needs_input_grad(0) ? dx : torch::Tensor(), dw, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps) {
  if (is_cpu_float(x) && is_cpu_float(weight) && weight.dim() == 1 && x.size(-1) == weight.size(0))
    return RmsNorm::apply(x, weight, eps);
  torch::Tensor variance = x.to(torch::kFloat).pow(2).mean(-1, /*keepdim=*/true);
  torch::Tensor normed = x * torch::rsqrt(variance + eps);
  // Half-precision weights: convert back, as HF does.
  if (weight.scalar_type() == torch::kHalf || weight.scalar_type() == torch::kBFloat16)
    normed = normed.to(weight.scalar_type());
  return weight * normed;
}

}  // namespace peft
