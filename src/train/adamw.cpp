#include "train/adamw.h"

#include <cmath>

#include "common/cpu_float.h"
#include "common/threads.h"
#include "common/torch_compat.h"
#include "common/worker_pool.h"

namespace peft::train {

namespace {

struct Coefficients {
  float decay;         // 1 - lr * weight_decay
  float beta1, one_minus_beta1, beta2, one_minus_beta2;
  float inv_sqrt_bias_correction2;
  float eps;
  float neg_step_size;  // -lr / bias_correction1
};

// torch's update element by element, in float (the division by sqrt(bias_correction2) as a product with its
// reciprocal: results agree with torch::optim::AdamW to rounding, tests).
void update(float* p, const float* g, float* m, float* v, int64_t begin, int64_t end, const Coefficients& c) {
  for (int64_t i = begin; i < end; ++i) {
    const float gi = g[i];
    const float pi = p[i] * c.decay;
    const float mi = m[i] * c.beta1 + c.one_minus_beta1 * gi;
    const float vi = v[i] * c.beta2 + c.one_minus_beta2 * (gi * gi);
    const float denom = std::sqrt(vi) * c.inv_sqrt_bias_correction2 + c.eps;
    m[i] = mi;
    v[i] = vi;
    p[i] = pi + c.neg_step_size * (mi / denom);
  }
}

bool fusable(const torch::Tensor& p, const torch::optim::AdamWOptions& o) {
  return !o.amsgrad() && is_cpu_float(p) && p.is_contiguous() && !p.grad().is_sparse() && p.grad().is_contiguous() &&
         p.grad().scalar_type() == torch::kFloat;
}

}  // namespace

torch::Tensor FusedAdamW::step(LossClosure closure) {
  for (const auto& group : param_groups())
    for (const auto& p : group.params())
      if (p.grad().defined() && !fusable(p, static_cast<const torch::optim::AdamWOptions&>(group.options())))
        return torch::optim::AdamW::step(std::move(closure));

  torch::NoGradGuard no_grad;
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  for (auto& group : param_groups()) {
    const auto& o = static_cast<const torch::optim::AdamWOptions&>(group.options());
    const double beta1 = std::get<0>(o.betas()), beta2 = std::get<1>(o.betas());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      auto& slot = state_[compat::optimizer_state_key(state_, p)];
      if (!slot) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        slot = std::move(fresh);
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*slot);
      state.step(state.step() + 1);
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      const Coefficients c{static_cast<float>(1 - o.lr() * o.weight_decay()),
                           static_cast<float>(beta1),
                           static_cast<float>(1 - beta1),
                           static_cast<float>(beta2),
                           static_cast<float>(1 - beta2),
                           static_cast<float>(1 / std::sqrt(bias_correction2)),
                           static_cast<float>(o.eps()),
                           static_cast<float>(-o.lr() / bias_correction1)};
      float* pp = p.data_ptr<float>();
      const float* gp = p.grad().data_ptr<float>();
      float* mp = state.exp_avg().data_ptr<float>();
      float* vp = state.exp_avg_sq().data_ptr<float>();
      const int64_t n = p.numel();
      // Split only tensors worth a wake-up (the pool's workers sleep between jobs).
      const int parts = n >= (int64_t{1} << 16) ? cpu_threads() : 1;
      run_in_parts(n, parts, [&](int64_t begin, int64_t end) { update(pp, gp, mp, vp, begin, end, c); });
      ++fused_updates_;
    }
  }
  return loss;
}

}  // namespace peft::train
