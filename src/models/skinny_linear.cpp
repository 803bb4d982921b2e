#include "models/skinny_linear.h"

#pragma GCC diagnostic ignored "-Wpsabi"  // v8f helpers are internal: no ABI to keep

#include "common/threads.h"
#include "common/worker_pool.h"

namespace peft {

namespace {

typedef float v8f __attribute__((vector_size(32)));  // 8 floats: one AVX register, two SSE ones

inline v8f load8(const float* p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}

inline float sum8(v8f v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

// Output columns [o_begin, o_end) for up to 8 rows of x: W's row o is loaded once per 8-float chunk and
// multiplied with every row of x.
template <int kRows>
__attribute__((always_inline)) inline void dot_rows(const float* x, int64_t k_dim, const float* w, int64_t o_begin,
                                                    int64_t o_end, const float* bias, float* y, int64_t n_out) {
  const int64_t k_vec = k_dim / 8 * 8;
  for (int64_t o = o_begin; o < o_end; ++o) {
    const float* wo = w + o * k_dim;
    v8f acc[kRows] = {};
    for (int64_t k = 0; k < k_vec; k += 8) {
      const v8f wv = load8(wo + k);
      for (int r = 0; r < kRows; ++r) acc[r] += wv * load8(x + r * k_dim + k);
    }
    for (int r = 0; r < kRows; ++r) {
      float s = sum8(acc[r]);
      for (int64_t k = k_vec; k < k_dim; ++k) s += wo[k] * x[r * k_dim + k];
      y[r * n_out + o] = s + (bias ? bias[o] : 0.0f);
    }
  }
}

// All rows, in groups of at most 8 (the accumulators stay in registers).
__attribute__((always_inline)) inline void skinny_kernel(const float* x, int64_t rows, int64_t k_dim, const float* w,
                                                         int64_t o_begin, int64_t o_end, const float* bias, float* y,
                                                         int64_t n_out) {
  for (int64_t r0 = 0; r0 < rows; r0 += 8) {
    const float* xr = x + r0 * k_dim;
    float* yr = y + r0 * n_out;
    switch (std::min<int64_t>(8, rows - r0)) {
      case 1: dot_rows<1>(xr, k_dim, w, o_begin, o_end, bias, yr, n_out); break;
      case 2: dot_rows<2>(xr, k_dim, w, o_begin, o_end, bias, yr, n_out); break;
      case 3: dot_rows<3>(xr, k_dim, w, o_begin, o_end, bias, yr, n_out); break;
      case 4: dot_rows<4>(xr, k_dim, w, o_begin, o_end, bias, yr, n_out); break;
      case 5: dot_rows<5>(xr, k_dim, w, o_begin, o_end, bias, yr, n_out); break;
      case 6: dot_rows<6>(xr, k_dim, w, o_begin, o_end, bias, yr, n_out); break;
      case 7: dot_rows<7>(xr, k_dim, w, o_begin, o_end, bias, yr, n_out); break;
      default: dot_rows<8>(xr, k_dim, w, o_begin, o_end, bias, yr, n_out); break;
    }
  }
}

using KernelFn = void (*)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, const float*, float*,
                          int64_t);

void kernel_generic(const float* x, int64_t rows, int64_t k, const float* w, int64_t ob, int64_t oe, const float* b,
                    float* y, int64_t n) {
  skinny_kernel(x, rows, k, w, ob, oe, b, y, n);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void kernel_avx2(const float* x, int64_t rows, int64_t k, const float* w,
                                                     int64_t ob, int64_t oe, const float* b, float* y, int64_t n) {
  skinny_kernel(x, rows, k, w, ob, oe, b, y, n);
}
#endif

KernelFn pick_kernel() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return kernel_avx2;
#endif
  return kernel_generic;
}

}  // namespace

bool skinny_linear_applies(const torch::Tensor& x, const torch::Tensor& weight) {
  if (!x.device().is_cpu() || x.scalar_type() != torch::kFloat || weight.scalar_type() != torch::kFloat) return false;
  if (weight.dim() != 2 || !weight.is_contiguous() || x.dim() < 1 || x.size(-1) != weight.size(1)) return false;
  if (torch::GradMode::is_enabled() && (x.requires_grad() || weight.requires_grad())) return false;
  const int64_t rows = x.numel() / std::max<int64_t>(1, x.size(-1));
  return rows >= 1 && rows <= kSkinnyMaxRows;
}

torch::Tensor skinny_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias) {
  static const KernelFn kernel = pick_kernel();
  const int64_t k_dim = weight.size(1), n_out = weight.size(0);
  const torch::Tensor xc = x.contiguous();
  const int64_t rows = xc.numel() / k_dim;
  auto out_shape = x.sizes().vec();
  out_shape.back() = n_out;
  torch::Tensor y = torch::empty(out_shape, xc.options());
  const torch::Tensor b = bias.defined() ? bias.contiguous() : bias;
  const float* xp = xc.data_ptr<float>();
  const float* wp = weight.data_ptr<float>();
  const float* bp = b.defined() ? b.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  // Split the output columns over run.threads cores when there is enough work to pay for the wake-ups.
  const int64_t work = rows * n_out * k_dim;
  const int parts = work >= (int64_t{1} << 20) ? static_cast<int>(std::min<int64_t>(cpu_threads(), n_out / 64)) : 1;
  run_in_parts(n_out, parts, [&](int64_t begin, int64_t end) { kernel(xp, rows, k_dim, wp, begin, end, bp, yp, n_out); });
  return y;
}

}  // namespace peft
