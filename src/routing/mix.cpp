#include "routing/mix.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/cpu_float.h"
#include "common/threads.h"
#include "common/worker_pool.h"
#include "models/simd.h"

namespace peft::routing {
namespace {

using simd::load8;
using simd::store8;
using simd::v8f;
using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

// y[k] += alpha x[k], and sum_k x[k] y[k]: compiled for the baseline target and for AVX2 + FMA, picked once at
// run time (the generic build has no FMA, and the mixing is ~0.5 M multiply-adds each way per adapted linear).
__attribute__((always_inline)) inline void axpy_body(float alpha, const float* x, float* y, int64_t n) {
  const int64_t n_vec = n / 8 * 8;
  for (int64_t k = 0; k < n_vec; k += 8) store8(y + k, load8(y + k) + alpha * load8(x + k));
  for (int64_t k = n_vec; k < n; ++k) y[k] += alpha * x[k];
}
void axpy_generic(float alpha, const float* x, float* y, int64_t n) { axpy_body(alpha, x, y, n); }
float dot_generic(const float* x, const float* y, int64_t n) { return simd::dot(x, y, n); }
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void axpy_avx2(float alpha, const float* x, float* y, int64_t n) {
  axpy_body(alpha, x, y, n);
}
__attribute__((target("avx2,fma"))) float dot_avx2(const float* x, const float* y, int64_t n) {
  return simd::dot(x, y, n);
}
#endif

struct VectorOps {
  void (*axpy)(float, const float*, float*, int64_t);
  float (*dot)(const float*, const float*, int64_t);
};

const VectorOps& ops() {
  static const VectorOps o = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    if (simd::cpu_has_avx2()) return VectorOps{axpy_avx2, dot_avx2};
#endif
    return VectorOps{axpy_generic, dot_generic};
  }();
  return o;
}

// The sizes of one mixing: U tasks, h heads, S skills, rank r, a head's share of the input (ai) and output (bo).
struct Dims {
  int64_t U, h, S, r, ai, bo;
  int64_t d_in() const { return h * ai; }
  int64_t d_out() const { return h * bo; }
  int64_t a_skill() const { return ai * r; }  // floats in one skill's A (and in one head's slice of a task's A)
  int64_t b_skill() const { return r * bo; }
};

Dims dims_of(const torch::Tensor& w, const torch::Tensor& lora_a, const torch::Tensor& lora_b) {
  return Dims{w.size(0), w.size(1), w.size(2), lora_a.size(3), lora_a.size(2), lora_b.size(3)};
}

// Runs fn(i) for i in [0, n), over the run.threads cores when the inventory is large enough to repay a hand-off.
void for_each(int64_t n, int64_t floats, const std::function<void(int64_t)>& fn) {
  const int parts = floats >= (int64_t{1} << 15) ? static_cast<int>(std::min<int64_t>(cpu_threads(), n)) : 1;
  run_for_each(n, parts, fn);
}

class MixInventory : public torch::autograd::Function<MixInventory> {
 public:
  static variable_list forward(AutogradContext* ctx, const torch::Tensor& w_in, const torch::Tensor& lora_a_in,
                               const torch::Tensor& lora_b_in) {
    const torch::Tensor w = w_in.contiguous(), lora_a = lora_a_in.contiguous(), lora_b = lora_b_in.contiguous();
    const Dims d = dims_of(w, lora_a, lora_b);
    const VectorOps& v = ops();
    torch::Tensor a_t = torch::empty({d.U, d.r, d.d_in()}, lora_a.options());
    torch::Tensor b = torch::zeros({d.U, d.r, d.d_out()}, lora_b.options());
    const float* wp = w.data_ptr<float>();
    const float* ap = lora_a.data_ptr<float>();
    const float* bp = lora_b.data_ptr<float>();
    float* atp = a_t.data_ptr<float>();
    float* outb = b.data_ptr<float>();
    for_each(d.U * d.h, d.h * d.S * (d.a_skill() + d.b_skill()), [&](int64_t uq) {
      const int64_t u = uq / d.h, q = uq % d.h;
      const float* wuq = wp + uq * d.S;
      // A: mix the skills in their own [ai, r] layout, then store transposed into rows j, columns q ai + i.
      std::vector<float> mixed(static_cast<size_t>(d.a_skill()), 0.0f);
      for (int64_t s = 0; s < d.S; ++s) v.axpy(wuq[s], ap + (q * d.S + s) * d.a_skill(), mixed.data(), d.a_skill());
      float* at_uq = atp + u * d.r * d.d_in() + q * d.ai;
      for (int64_t i = 0; i < d.ai; ++i)
        for (int64_t j = 0; j < d.r; ++j) at_uq[j * d.d_in() + i] = mixed[i * d.r + j];
      // B: row j of skill s is added into row j of the task, columns q bo ...
      float* b_uq = outb + u * d.r * d.d_out() + q * d.bo;
      for (int64_t s = 0; s < d.S; ++s)
        for (int64_t j = 0; j < d.r; ++j)
          v.axpy(wuq[s], bp + (q * d.S + s) * d.b_skill() + j * d.bo, b_uq + j * d.d_out(), d.bo);
    });
    ctx->save_for_backward({w, lora_a, lora_b});
    return {a_t, b};
  }

  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &w = saved[0], &lora_a = saved[1], &lora_b = saved[2];
    const Dims d = dims_of(w, lora_a, lora_b);
    const VectorOps& v = ops();
    const torch::Tensor g_a = grad_outputs[0].defined() ? grad_outputs[0].contiguous() : torch::Tensor();
    const torch::Tensor g_b = grad_outputs[1].defined() ? grad_outputs[1].contiguous() : torch::Tensor();
    const bool want_w = ctx->needs_input_grad(0), want_a = ctx->needs_input_grad(1), want_b = ctx->needs_input_grad(2);
    torch::Tensor grad_w = want_w ? torch::empty_like(w) : torch::Tensor();
    torch::Tensor grad_a = want_a ? torch::zeros_like(lora_a) : torch::Tensor();
    torch::Tensor grad_b = want_b ? torch::zeros_like(lora_b) : torch::Tensor();
    const float* wp = w.data_ptr<float>();
    const float* ap = lora_a.data_ptr<float>();
    const float* bp = lora_b.data_ptr<float>();
    const int64_t floats = d.h * d.S * (d.a_skill() + d.b_skill());
    // d a_t back in the skills' [ai, r] layout, per task and head: [U, h, ai, r].
    torch::Tensor g_a_heads;
    if (g_a.defined()) {
      g_a_heads = torch::empty({d.U, d.h, d.ai, d.r}, g_a.options());
      const float* gp = g_a.data_ptr<float>();
      float* hp = g_a_heads.data_ptr<float>();
      for_each(d.U * d.h, floats, [&](int64_t uq) {
        const int64_t u = uq / d.h, q = uq % d.h;
        const float* g_uq = gp + u * d.r * d.d_in() + q * d.ai;
        float* out = hp + uq * d.a_skill();
        for (int64_t i = 0; i < d.ai; ++i)
          for (int64_t j = 0; j < d.r; ++j) out[i * d.r + j] = g_uq[j * d.d_in() + i];
      });
    }
    // Per skill (q, s): its gradients sum over the tasks, in task order; each w[u, q, s] is one thread's dot products.
    for_each(d.h * d.S, floats, [&](int64_t qs) {
      const int64_t q = qs / d.S, s = qs % d.S;
      const float* a_qs = ap + qs * d.a_skill();
      const float* b_qs = bp + qs * d.b_skill();
      for (int64_t u = 0; u < d.U; ++u) {
        const float w_uqs = wp[(u * d.h + q) * d.S + s];
        const float* ga_uq = g_a.defined() ? g_a_heads.data_ptr<float>() + (u * d.h + q) * d.a_skill() : nullptr;
        const float* gb_uq = g_b.defined() ? g_b.data_ptr<float>() + u * d.r * d.d_out() + q * d.bo : nullptr;
        if (want_a && ga_uq) v.axpy(w_uqs, ga_uq, grad_a.data_ptr<float>() + qs * d.a_skill(), d.a_skill());
        if (want_b && gb_uq)
          for (int64_t j = 0; j < d.r; ++j)
            v.axpy(w_uqs, gb_uq + j * d.d_out(), grad_b.data_ptr<float>() + qs * d.b_skill() + j * d.bo, d.bo);
        if (want_w) {
          float g = ga_uq ? v.dot(ga_uq, a_qs, d.a_skill()) : 0.0f;
          if (gb_uq)
            for (int64_t j = 0; j < d.r; ++j) g += v.dot(gb_uq + j * d.d_out(), b_qs + j * d.bo, d.bo);
          grad_w.data_ptr<float>()[(u * d.h + q) * d.S + s] = g;
        }
      }
    });
    return {grad_w, grad_a, grad_b};
  }
};

// Noise (undefined for plain sigmoid) and the relaxation's settings: a non-tensor argument of the op, so the
// noise is no autograd input.
struct Relaxation {
  torch::Tensor noise;
  double temperature;
  bool straight_through;
};

class RoutingWeights : public torch::autograd::Function<RoutingWeights> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& z_in, const Relaxation& relax) {
    const torch::Tensor z = z_in.contiguous();
    const torch::Tensor noise = relax.noise.defined() ? relax.noise.contiguous() : torch::Tensor();
    const int64_t S = z.size(-1), rows = z.numel() / std::max<int64_t>(S, 1);
    torch::Tensor u = torch::empty_like(z), p = torch::empty_like(z), denom = torch::empty({rows}, z.options());
    const float* zp = z.data_ptr<float>();
    const float* np = noise.defined() ? noise.data_ptr<float>() : nullptr;
    float* up = u.data_ptr<float>();
    float* pp = p.data_ptr<float>();
    float* dp = denom.data_ptr<float>();
    const float tau = static_cast<float>(relax.temperature);
    for (int64_t k = 0; k < z.numel(); ++k) {
      float y = zp[k];
      if (np) {
        const float n = std::clamp(np[k], 1e-6f, 1.0f - 1e-6f);
        y = (y + std::log(n) - std::log(1.0f - n)) / tau;
      }
      up[k] = 1.0f / (1.0f + std::exp(-y));
    }
    for (int64_t row = 0; row < rows; ++row) {
      const float* ur = up + row * S;
      float* pr = pp + row * S;
      float sum = 0.0f;
      for (int64_t s = 0; s < S; ++s) sum += pr[s] = relax.straight_through ? (ur[s] > 0.5f ? 1.0f : 0.0f) : ur[s];
      dp[row] = sum + 1e-12f;
      for (int64_t s = 0; s < S; ++s) pr[s] /= dp[row];
    }
    ctx->save_for_backward({u, p, denom});
    ctx->saved_data["scale"] = np ? 1.0 / relax.temperature : 1.0;  // d y / d z
    return p;
  }

  // p = v / (sum v + eps) with v = u (or hard(u), whose gradient is u's): d v_k = (g_k - sum_j g_j p_j) / (sum v +
  // eps); d z = d v u (1 - u) d y / d z.
  static variable_list backward(AutogradContext* ctx, variable_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &u = saved[0], &p = saved[1], &denom = saved[2];  // denom: each row's sum v + eps
    const float scale = static_cast<float>(ctx->saved_data["scale"].toDouble());
    const torch::Tensor g = grad_outputs[0].contiguous();
    const int64_t S = u.size(-1), rows = u.numel() / std::max<int64_t>(S, 1);
    torch::Tensor grad_z = torch::empty_like(u);
    const float* up = u.data_ptr<float>();
    const float* pp = p.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    const float* dp = denom.data_ptr<float>();
    float* gz = grad_z.data_ptr<float>();
    for (int64_t row = 0; row < rows; ++row) {
      const int64_t o = row * S;
      float g_dot_p = 0.0f;
      for (int64_t s = 0; s < S; ++s) g_dot_p += gp[o + s] * pp[o + s];
      for (int64_t s = 0; s < S; ++s) {
        const float uk = up[o + s];
        gz[o + s] = (gp[o + s] - g_dot_p) / dp[row] * uk * (1.0f - uk) * scale;
      }
    }
    return {grad_z, torch::Tensor()};
  }
};

}  // namespace

bool routing_weights_applies(const torch::Tensor& z, const torch::Tensor& noise) {
  return is_cpu_float(z) && z.dim() >= 1 && (!noise.defined() || (is_cpu_float(noise) && noise.sizes() == z.sizes()));
}

torch::Tensor routing_weights(const torch::Tensor& z, const torch::Tensor& noise, double temperature,
                              bool straight_through) {
  TORCH_CHECK(routing_weights_applies(z, noise), "routing_weights: logits ", z.sizes(),
              " and noise are not CPU float32 of one shape");
  return RoutingWeights::apply(z, Relaxation{noise, temperature, straight_through});
}

bool mix_inventory_applies(const torch::Tensor& w, const torch::Tensor& lora_a, const torch::Tensor& lora_b) {
  for (const torch::Tensor* t : {&w, &lora_a, &lora_b})
    if (!is_cpu_float(*t)) return false;
  return w.dim() == 3 && lora_a.dim() == 4 && lora_b.dim() == 4 && lora_a.size(0) == w.size(1) &&
         lora_b.size(0) == w.size(1) && lora_a.size(1) == w.size(2) && lora_b.size(1) == w.size(2) &&
         lora_a.size(3) == lora_b.size(2);
}

std::pair<torch::Tensor, torch::Tensor> mix_inventory(const torch::Tensor& w, const torch::Tensor& lora_a,
                                                      const torch::Tensor& lora_b) {
  TORCH_CHECK(mix_inventory_applies(w, lora_a, lora_b), "mix_inventory: operands ", w.sizes(), " ", lora_a.sizes(),
              " ", lora_b.sizes(), " are not CPU float32 [U, h, S], [h, S, d_in/h, r], [h, S, r, d_out/h]");
  const variable_list out = MixInventory::apply(w, lora_a, lora_b);
  return {out[0], out[1]};
}

}  // namespace peft::routing
