#include "models/decode_attention.h"

#include <cmath>
#include <limits>
#include <vector>

#include "common/cpu_float.h"
#include "common/threads.h"
#include "common/worker_pool.h"
#include "models/simd.h"

namespace peft {

namespace {

using simd::dot;
using simd::load8;
using simd::store8;
using simd::v8f;

// Element strides of a [B, heads, rows, cols] view; a broadcast dimension has stride 0.
struct Strides {
  int64_t batch, head, row, col;
};

Strides strides_of(const torch::Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2), t.stride(3)}; }

struct Problem {
  const float* query;
  Strides q;
  const float* key;
  Strides k;
  const float* value;
  Strides v;
  const float* bias;  // null: no bias
  Strides b;
  float* out;  // [B, queries, heads * dim], contiguous
  int64_t heads, queries, keys, dim;
};

// (example, head) pairs [begin, end); `probs` holds `keys` floats.
__attribute__((always_inline)) inline void attend(const Problem& p, int64_t begin, int64_t end, float* probs) {
  const int64_t dim_vec = p.dim / 8 * 8;
  for (int64_t pair = begin; pair < end; ++pair) {
    const int64_t b = pair / p.heads, h = pair % p.heads;
    const float* key = p.key + b * p.k.batch + h * p.k.head;
    const float* value = p.value + b * p.v.batch + h * p.v.head;
    for (int64_t i = 0; i < p.queries; ++i) {
      const float* query = p.query + b * p.q.batch + h * p.q.head + i * p.q.row;
      const float* bias = p.bias ? p.bias + b * p.b.batch + h * p.b.head + i * p.b.row : nullptr;
      float max_score = -std::numeric_limits<float>::infinity();
      for (int64_t j = 0; j < p.keys; ++j) {
        float s = dot(query, key + j * p.k.row, p.dim);
        if (bias) s += bias[j * p.b.col];
        probs[j] = s;
        max_score = std::max(max_score, s);
      }
      float total = 0;
      for (int64_t j = 0; j < p.keys; ++j) {
        probs[j] = std::exp(probs[j] - max_score);
        total += probs[j];
      }
      const float inv_total = 1.0f / total;
      for (int64_t j = 0; j < p.keys; ++j) probs[j] *= inv_total;  // softmax, then the weighted sum (as torch)
      float* out = p.out + (b * p.queries + i) * p.heads * p.dim + h * p.dim;
      for (int64_t c = 0; c < dim_vec; c += 8) {
        v8f acc = {};
        for (int64_t j = 0; j < p.keys; ++j) acc += load8(value + j * p.v.row + c) * probs[j];
        store8(out + c, acc);
      }
      for (int64_t c = dim_vec; c < p.dim; ++c) {
        float acc = 0;
        for (int64_t j = 0; j < p.keys; ++j) acc += value[j * p.v.row + c] * probs[j];
        out[c] = acc;
      }
    }
  }
}

using KernelFn = void (*)(const Problem&, int64_t, int64_t, float*);

void kernel_generic(const Problem& p, int64_t begin, int64_t end, float* probs) { attend(p, begin, end, probs); }

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void kernel_avx2(const Problem& p, int64_t begin, int64_t end, float* probs) {
  attend(p, begin, end, probs);
}
#endif

KernelFn pick_kernel() {
#if defined(__x86_64__) && defined(__GNUC__)
  if (simd::cpu_has_avx2()) return kernel_avx2;
#endif
  return kernel_generic;
}

}  // namespace

bool decode_attention_applies(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                              const torch::Tensor& bias) {
  if (!is_cpu_float(query) || !is_cpu_float(key) || !is_cpu_float(value)) return false;
  if (query.dim() != 4 || key.dim() != 4 || value.dim() != 4) return false;
  if (query.size(2) < 1 || query.size(2) > kDecodeAttentionMaxQueries) return false;
  for (int d : {0, 1, 3})
    if (key.size(d) != query.size(d) || value.size(d) != query.size(d)) return false;
  if (value.size(2) != key.size(2) || key.size(2) < 1) return false;
  if (query.stride(3) != 1 || key.stride(3) != 1 || value.stride(3) != 1) return false;
  const bool needs_grad = query.requires_grad() || key.requires_grad() || value.requires_grad() ||
                          (bias.defined() && bias.requires_grad());
  if (torch::GradMode::is_enabled() && needs_grad) return false;
  if (bias.defined()) {
    if (!is_cpu_float(bias) || bias.dim() != 4) return false;
    const int64_t want[4] = {query.size(0), query.size(1), query.size(2), key.size(2)};
    for (int d = 0; d < 4; ++d)
      if (bias.size(d) != want[d] && bias.size(d) != 1) return false;
  }
  return true;
}

torch::Tensor decode_attention(const torch::Tensor& query, const torch::Tensor& key, const torch::Tensor& value,
                               const torch::Tensor& bias) {
  static const KernelFn kernel = pick_kernel();
  const int64_t batch = query.size(0), heads = query.size(1), queries = query.size(2), dim = query.size(3);
  const int64_t keys = key.size(2);
  const torch::Tensor full_bias = bias.defined() ? bias.expand({batch, heads, queries, keys}) : bias;
  torch::Tensor out = torch::empty({batch, queries, heads * dim}, query.options());
  const Problem p{query.data_ptr<float>(),
                  strides_of(query),
                  key.data_ptr<float>(),
                  strides_of(key),
                  value.data_ptr<float>(),
                  strides_of(value),
                  full_bias.defined() ? full_bias.data_ptr<float>() : nullptr,
                  full_bias.defined() ? strides_of(full_bias) : Strides{0, 0, 0, 0},
                  out.data_ptr<float>(),
                  heads,
                  queries,
                  keys,
                  dim};
  // Split the (example, head) pairs over run.threads cores when there is enough work to pay for the wake-ups.
  const int64_t pairs = batch * heads;
  const int64_t work = pairs * queries * keys * dim;
  const int parts = work >= (int64_t{1} << 17) ? static_cast<int>(std::min<int64_t>(cpu_threads(), pairs)) : 1;
  run_in_parts(pairs, parts, [&](int64_t begin, int64_t end) {
    std::vector<float> probs(static_cast<size_t>(keys));
    kernel(p, begin, end, probs.data());
  });
  return out;
}

}  // namespace peft
