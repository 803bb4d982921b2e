#include "models/argmax.h"

#include <cstring>

#include "common/cpu_float.h"
#include "models/simd.h"

namespace peft {

namespace {

using simd::load8;
using simd::v8f;
typedef int32_t v8i __attribute__((vector_size(32)));

__attribute__((always_inline)) inline bool any_lane(v8i mask) {
  uint64_t w[4];
  std::memcpy(w, &mask, sizeof w);
  return (w[0] | w[1] | w[2] | w[3]) != 0;
}

// First index of `row` whose value satisfies pred (a NaN test or an equality), n if none.
template <typename Pred, typename VecPred>
__attribute__((always_inline)) inline int64_t first_index(const float* row, int64_t n, Pred pred, VecPred vec_pred) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    if (any_lane(vec_pred(load8(row + i))))
      for (int64_t j = i;; ++j)
        if (pred(row[j])) return j;
  for (; i < n; ++i)
    if (pred(row[i])) return i;
  return n;
}

__attribute__((always_inline)) inline int64_t row_argmax(const float* row, int64_t n) {
  // Pass 1: the maximum, two vectors at a time, and whether any value is NaN (a NaN wins, as in torch.argmax).
  v8f max0 = load8(row), max1 = max0;  // n >= 8 here; lanes repeat harmlessly
  v8i nan = {};
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const v8f a = load8(row + i), b = load8(row + i + 8);
    max0 = a > max0 ? a : max0;
    max1 = b > max1 ? b : max1;
    nan |= (a != a) | (b != b);
  }
  float best = max0[0];
  for (int lane = 0; lane < 8; ++lane) {
    best = max0[lane] > best ? max0[lane] : best;
    best = max1[lane] > best ? max1[lane] : best;
  }
  bool has_nan = any_lane(nan);
  for (; i < n; ++i) {
    has_nan |= row[i] != row[i];
    best = row[i] > best ? row[i] : best;
  }
  // Pass 2: the first index holding it.
  if (has_nan) return first_index(row, n, [](float v) { return v != v; }, [](v8f v) { return v != v; });
  const v8f best8 = v8f{} + best;
  return first_index(row, n, [best](float v) { return v == best; }, [best8](v8f v) { return v == best8; });
}

void argmax_rows_generic(const float* x, int64_t rows, int64_t n, int64_t* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = row_argmax(x + r * n, n);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void argmax_rows_avx2(const float* x, int64_t rows, int64_t n, int64_t* out) {
  for (int64_t r = 0; r < rows; ++r) out[r] = row_argmax(x + r * n, n);
}
#endif

using ArgmaxFn = void (*)(const float*, int64_t, int64_t, int64_t*);

ArgmaxFn pick_argmax() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (simd::cpu_has_avx2()) return argmax_rows_avx2;
#endif
  return argmax_rows_generic;
}

}  // namespace

torch::Tensor argmax_last_dim(const torch::Tensor& logits) {
  // Rows shorter than one vector are not worth a kernel (and pass 1 reads 8 values to start).
  if (!is_cpu_float(logits) || logits.dim() < 1 || logits.size(-1) < 8) return logits.argmax(-1);
  static const ArgmaxFn kernel = pick_argmax();
  const torch::Tensor x = logits.contiguous();
  const int64_t n = x.size(-1), rows = x.numel() / n;
  auto out_shape = x.sizes().vec();
  out_shape.pop_back();
  torch::Tensor out = torch::empty(out_shape, x.options().dtype(torch::kLong));
  kernel(x.data_ptr<float>(), rows, n, out.data_ptr<int64_t>());
  return out;
}

}  // namespace peft
