#include "models/skinny_linear.h"

#include <algorithm>
#include <vector>

#include "common/cpu_float.h"
#include "common/threads.h"
#include "common/worker_pool.h"
#include "models/simd.h"

namespace peft {

namespace {

using simd::load8;
using simd::sum8;
using simd::v8f;

// Floats ahead of the current position at which W is prefetched: W is streamed from memory once per call (the
// 66 MB LM head does not fit any cache) and the hardware prefetcher alone left the loop waiting on it.
constexpr int64_t kPrefetchAhead = 1024;

// Output columns [o_begin, o_end) for kRows rows of x. `packed` holds x's first k_vec = K / 8 * 8 columns as
// [K / 8][kRows][8], so the kRows chunks that meet one chunk of W are adjacent (one or two cache lines instead
// of kRows lines K floats apart, which share L1 sets when K is a multiple of 1024); the K % 8 tail columns
// are read from x itself. W's row o is loaded once per 8-float chunk and multiplied with every row.
template <int kRows>
__attribute__((always_inline)) inline void dot_rows(const float* packed, const float* x, int64_t k_dim,
                                                    const float* w, int64_t o_begin, int64_t o_end,
                                                    const float* bias, float* y, int64_t n_out) {
  const int64_t k_vec = k_dim / 8 * 8;
  for (int64_t o = o_begin; o < o_end; ++o) {
    const float* wo = w + o * k_dim;
    // With few rows, the two halves of a line go to separate accumulators: one chain of dependent adds per
    // row would wait on the add latency instead of on memory.
    constexpr int kSets = kRows <= 4 ? 2 : 1;
    v8f acc[kSets][kRows];
    for (int set = 0; set < kSets; ++set)
      for (int r = 0; r < kRows; ++r) acc[set][r] = v8f{};  // in registers: `= {}` became a rep stos per output
    int64_t k = 0;
    for (; k + 16 <= k_vec; k += 16) {  // one 64-byte line of W per iteration, one prefetch
      __builtin_prefetch(wo + k + kPrefetchAhead);
      const v8f w0 = load8(wo + k), w1 = load8(wo + k + 8);
      const float* x0 = packed + k * kRows;
      for (int r = 0; r < kRows; ++r) acc[0][r] += w0 * load8(x0 + 8 * r);
      for (int r = 0; r < kRows; ++r) acc[kSets - 1][r] += w1 * load8(x0 + 8 * kRows + 8 * r);
    }
    if (k < k_vec) {
      const v8f w0 = load8(wo + k);
      for (int r = 0; r < kRows; ++r) acc[0][r] += w0 * load8(packed + k * kRows + 8 * r);
    }
    for (int r = 0; r < kRows; ++r) {
      float s = sum8(kSets == 2 ? acc[0][r] + acc[kSets - 1][r] : acc[0][r]);
      for (int64_t kt = k_vec; kt < k_dim; ++kt) s += wo[kt] * x[r * k_dim + kt];
      y[r * n_out + o] = s + (bias ? bias[o] : 0.0f);
    }
  }
}

// rows <= kSkinnyMaxRows (8): one group, its accumulators in registers.
__attribute__((always_inline)) inline void skinny_kernel(const float* packed, const float* x, int64_t rows,
                                                         int64_t k_dim, const float* w, int64_t o_begin,
                                                         int64_t o_end, const float* bias, float* y, int64_t n_out) {
  switch (rows) {
    case 1: dot_rows<1>(packed, x, k_dim, w, o_begin, o_end, bias, y, n_out); break;
    case 2: dot_rows<2>(packed, x, k_dim, w, o_begin, o_end, bias, y, n_out); break;
    case 3: dot_rows<3>(packed, x, k_dim, w, o_begin, o_end, bias, y, n_out); break;
    case 4: dot_rows<4>(packed, x, k_dim, w, o_begin, o_end, bias, y, n_out); break;
    case 5: dot_rows<5>(packed, x, k_dim, w, o_begin, o_end, bias, y, n_out); break;
    case 6: dot_rows<6>(packed, x, k_dim, w, o_begin, o_end, bias, y, n_out); break;
    case 7: dot_rows<7>(packed, x, k_dim, w, o_begin, o_end, bias, y, n_out); break;
    default: dot_rows<8>(packed, x, k_dim, w, o_begin, o_end, bias, y, n_out); break;
  }
}

using KernelFn = void (*)(const float*, const float*, int64_t, int64_t, const float*, int64_t, int64_t, const float*,
                          float*, int64_t);

void kernel_generic(const float* p, const float* x, int64_t rows, int64_t k, const float* w, int64_t ob, int64_t oe,
                    const float* b, float* y, int64_t n) {
  skinny_kernel(p, x, rows, k, w, ob, oe, b, y, n);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void kernel_avx2(const float* p, const float* x, int64_t rows, int64_t k,
                                                     const float* w, int64_t ob, int64_t oe, const float* b, float* y,
                                                     int64_t n) {
  skinny_kernel(p, x, rows, k, w, ob, oe, b, y, n);
}
#endif

KernelFn pick_kernel() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (simd::cpu_has_avx2()) return kernel_avx2;
#endif
  return kernel_generic;
}

}  // namespace

bool skinny_linear_applies(const torch::Tensor& x, const torch::Tensor& weight) {
  if (!is_cpu_float(x) || weight.scalar_type() != torch::kFloat) return false;
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
  // x's vector columns as [K / 8][rows][8] (a few KB, rows <= 8): see dot_rows.
  const int64_t k_vec = k_dim / 8 * 8;
  std::vector<float> packed(static_cast<size_t>(k_vec * rows));
  for (int64_t k = 0; k < k_vec; k += 8)
    for (int64_t r = 0; r < rows; ++r) std::copy_n(xp + r * k_dim + k, 8, packed.data() + k * rows + 8 * r);
  // Split the output columns over run.threads cores when there is enough work to pay for the wake-ups.
  const int64_t work = rows * n_out * k_dim;
  const int parts = work >= (int64_t{1} << 20) ? static_cast<int>(std::min<int64_t>(cpu_threads(), n_out / 64)) : 1;
  run_in_parts(n_out, parts, [&](int64_t begin, int64_t end) { kernel(packed.data(), xp, rows, k_dim, wp, begin, end, bp, yp, n_out); });
  return y;
}

}  // namespace peft
