#include "models/routed_lowrank.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "common/cpu_float.h"
#include "common/threads.h"
#include "common/worker_pool.h"
#include "models/simd.h"
#include "models/skinny_linear.h"

namespace peft {

namespace {

using simd::load8;
using simd::store8;
using simd::sum8;
using simd::v8f;
using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Dot-product form, out[i, c] = alpha * sum_k x[i, k] w[c, k] for kRows rows of x and kCols rows of w: the
// long k side in vectors, kRows x kCols accumulators. Rows have strides ldx and ldw; out has row stride ldo.
template <int kRows, int kCols>
__attribute__((always_inline)) inline void dot_block(const float* x, int64_t ldx, const float* w, int64_t ldw,
                                                     int64_t k_dim, float alpha, float* out, int64_t ldo) {
  const int64_t k_vec = k_dim / 8 * 8;
  v8f acc[kRows][kCols];
  for (int i = 0; i < kRows; ++i)
    for (int c = 0; c < kCols; ++c) acc[i][c] = v8f{};  // one by one: `= {}` compiled to a rep stos per call
  for (int64_t k = 0; k < k_vec; k += 8) {
    v8f wv[kCols];
    for (int c = 0; c < kCols; ++c) wv[c] = load8(w + c * ldw + k);
    for (int i = 0; i < kRows; ++i) {
      const v8f xv = load8(x + i * ldx + k);
      for (int c = 0; c < kCols; ++c) acc[i][c] += xv * wv[c];
    }
  }
  for (int i = 0; i < kRows; ++i)
    for (int c = 0; c < kCols; ++c) {
      float s = sum8(acc[i][c]);
      for (int64_t k = k_vec; k < k_dim; ++k) s += x[i * ldx + k] * w[c * ldw + k];
      out[i * ldo + c] = alpha * s;
    }
}

// out [rows, n_w] = alpha * x [rows, k_dim] @ w[n_w, k_dim]^T, n_w small (the rank): the thin product.
__attribute__((always_inline)) inline void thin_product(const float* x, int64_t ldx, int64_t rows, const float* w,
                                                        int64_t n_w, int64_t k_dim, float alpha, float* out) {
  for (int64_t i = 0; i < rows;) {
    const bool four = i + 4 <= rows;
    const float* xi = x + i * ldx;
    float* oi = out + i * n_w;
    int64_t c = 0;
    for (; c + 2 <= n_w; c += 2) {
      if (four) dot_block<4, 2>(xi, ldx, w + c * k_dim, k_dim, k_dim, alpha, oi + c, n_w);
      else dot_block<1, 2>(xi, ldx, w + c * k_dim, k_dim, k_dim, alpha, oi + c, n_w);
    }
    if (c < n_w) {
      if (four) dot_block<4, 1>(xi, ldx, w + c * k_dim, k_dim, k_dim, alpha, oi + c, n_w);
      else dot_block<1, 1>(xi, ldx, w + c * k_dim, k_dim, k_dim, alpha, oi + c, n_w);
    }
    i += four ? 4 : 1;
  }
}

// Outer-product form for kRows rows: out[i, n] = add[i, n] + sum_j d(i, j) w[j, n] with d(i, j) =
// d[i * d_rs + j * d_cs] (so d may be read transposed), the wide n side in vectors. add may be null (zero).
// w, add and out have row stride n_dim.
template <int kRows>
__attribute__((always_inline)) inline void wide_rows(const float* d, int64_t d_rs, int64_t d_cs, int64_t inner,
                                                     const float* w, int64_t n_dim, const float* add, float* out) {
  auto scalar = [&](int i, int64_t j) { return d[i * d_rs + j * d_cs]; };
  int64_t n = 0;
  for (; n + 16 <= n_dim; n += 16) {
    v8f acc[kRows][2];
    for (int i = 0; i < kRows; ++i) {
      acc[i][0] = add ? load8(add + i * n_dim + n) : v8f{};
      acc[i][1] = add ? load8(add + i * n_dim + n + 8) : v8f{};
    }
    for (int64_t j = 0; j < inner; ++j) {
      const v8f w0 = load8(w + j * n_dim + n), w1 = load8(w + j * n_dim + n + 8);
      for (int i = 0; i < kRows; ++i) {
        const float si = scalar(i, j);
        acc[i][0] += si * w0;
        acc[i][1] += si * w1;
      }
    }
    for (int i = 0; i < kRows; ++i) {
      store8(out + i * n_dim + n, acc[i][0]);
      store8(out + i * n_dim + n + 8, acc[i][1]);
    }
  }
  for (; n + 8 <= n_dim; n += 8) {
    v8f acc[kRows];
    for (int i = 0; i < kRows; ++i) acc[i] = add ? load8(add + i * n_dim + n) : v8f{};
    for (int64_t j = 0; j < inner; ++j) {
      const v8f w0 = load8(w + j * n_dim + n);
      for (int i = 0; i < kRows; ++i) acc[i] += scalar(i, j) * w0;
    }
    for (int i = 0; i < kRows; ++i) store8(out + i * n_dim + n, acc[i]);
  }
  for (; n < n_dim; ++n)
    for (int i = 0; i < kRows; ++i) {
      float acc = add ? add[i * n_dim + n] : 0.0f;
      for (int64_t j = 0; j < inner; ++j) acc += scalar(i, j) * w[j * n_dim + n];
      out[i * n_dim + n] = acc;
    }
}

// out [rows, n_dim] = add + d @ w with d(i, j) as in wide_rows and w [inner, n_dim] (row stride n_dim).
__attribute__((always_inline)) inline void wide_product(const float* d, int64_t d_rs, int64_t d_cs, int64_t rows,
                                                        int64_t inner, const float* w, int64_t n_dim,
                                                        const float* add, float* out) {
  int64_t i = 0;
  for (; i + 4 <= rows; i += 4)
    wide_rows<4>(d + i * d_rs, d_rs, d_cs, inner, w, n_dim, add ? add + i * n_dim : nullptr, out + i * n_dim);
  for (; i < rows; ++i)
    wide_rows<1>(d + i * d_rs, d_rs, d_cs, inner, w, n_dim, add ? add + i * n_dim : nullptr, out + i * n_dim);
}

// The two products, compiled for the baseline target and for AVX2 + FMA; picked once at run time.
struct Kernels {
  void (*thin)(const float*, int64_t, int64_t, const float*, int64_t, int64_t, float, float*);
  void (*wide)(const float*, int64_t, int64_t, int64_t, int64_t, const float*, int64_t, const float*, float*);
};

void thin_generic(const float* x, int64_t ldx, int64_t rows, const float* w, int64_t n_w, int64_t k, float alpha,
                  float* out) {
  thin_product(x, ldx, rows, w, n_w, k, alpha, out);
}
void wide_generic(const float* d, int64_t rs, int64_t cs, int64_t rows, int64_t inner, const float* w, int64_t n,
                  const float* add, float* out) {
  wide_product(d, rs, cs, rows, inner, w, n, add, out);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void thin_avx2(const float* x, int64_t ldx, int64_t rows, const float* w,
                                                   int64_t n_w, int64_t k, float alpha, float* out) {
  thin_product(x, ldx, rows, w, n_w, k, alpha, out);
}
__attribute__((target("avx2,fma"))) void wide_avx2(const float* d, int64_t rs, int64_t cs, int64_t rows,
                                                   int64_t inner, const float* w, int64_t n, const float* add,
                                                   float* out) {
  wide_product(d, rs, cs, rows, inner, w, n, add, out);
}
#endif

const Kernels& kernels() {
  static const Kernels k = [] {
#if defined(__x86_64__) && defined(__GNUC__)
    if (simd::cpu_has_avx2()) return Kernels{thin_avx2, wide_avx2};
#endif
    return Kernels{thin_generic, wide_generic};
  }();
  return k;
}

// How many of the run.threads cores share n_items items worth `flops`: one below 2^20 FLOPs (a wake-up costs more).
int parts_for(int64_t n_items, int64_t flops) {
  return flops >= (int64_t{1} << 20) ? static_cast<int>(std::min<int64_t>(cpu_threads(), n_items)) : 1;
}

// Runs fn(example) for every example, split over the cores when there is enough work.
void for_each_example(int64_t n_examples, int64_t flops, const std::function<void(int64_t)>& fn) {
  run_for_each(n_examples, parts_for(n_examples, flops), fn);
}

// grad[t] = sum of part[e] over the examples e routed to t, in example order (thread-count independent).
torch::Tensor sum_per_task(const torch::Tensor& part, const std::vector<int64_t>& task_of, int64_t n_tasks) {
  const int64_t size = part[0].numel();
  torch::Tensor grad = torch::zeros({n_tasks, part.size(1), part.size(2)}, part.options());
  const float* p = part.data_ptr<float>();
  float* g = grad.data_ptr<float>();
  for (size_t e = 0; e < task_of.size(); ++e) {
    float* gt = g + task_of[e] * size;
    const float* pe = p + static_cast<int64_t>(e) * size;
    for (int64_t i = 0; i < size; ++i) gt[i] += pe[i];
  }
  return grad;
}

std::vector<int64_t> task_of_examples(const torch::Tensor& index, int64_t n_tasks) {
  const torch::Tensor idx = index.to(torch::kLong).contiguous();
  std::vector<int64_t> out(idx.data_ptr<int64_t>(), idx.data_ptr<int64_t>() + idx.numel());
  for (int64_t t : out) TORCH_CHECK(t >= 0 && t < n_tasks, "routed_lowrank_update: task index ", t, " out of range");
  return out;
}

// The operands of both ops, read once: sizes, the factors made contiguous, each example's task.
struct LowRank {
  torch::Tensor a_t, b;  // [U, r, d_in], [U, r, d_out], contiguous
  std::vector<int64_t> task_of;
  double scale;
};

// out = add + s (x_e A_t) B_t per example (add may be out itself: in place); down [B, L, r] gets s x_e A_t.
void lowrank_forward(const torch::Tensor& x, const torch::Tensor& add, const torch::Tensor& out,
                     const torch::Tensor& down, const LowRank& lr) {
  const int64_t n = x.size(0), len = x.size(1), d_in = x.size(2), d_out = out.size(2), r = lr.b.size(1);
  const Kernels& k = kernels();
  const float* xp = x.data_ptr<float>();
  const float* addp = add.data_ptr<float>();
  const float* ap = lr.a_t.data_ptr<float>();
  const float* bp = lr.b.data_ptr<float>();
  float* dp = down.data_ptr<float>();
  float* op = out.data_ptr<float>();
  // Consecutive examples of one task go through the kernels as one block of rows: a decoding step's 8 one-row
  // examples then read LoRA's factors once per 4 rows instead of once per row. A block holds at most its share
  // of the examples, so every core still gets one. Each row's sums run in the same order in any grouping.
  const int parts = parts_for(n, 2 * n * len * r * (d_in + d_out));
  const int64_t max_block = (n + parts - 1) / parts;
  std::vector<std::pair<int64_t, int64_t>> blocks;  // [first, end) examples
  for (int64_t e = 0; e < n;) {
    int64_t end = e + 1;
    while (end < n && end - e < max_block && lr.task_of[static_cast<size_t>(end)] == lr.task_of[static_cast<size_t>(e)])
      ++end;
    blocks.emplace_back(e, end);
    e = end;
  }
  run_for_each(static_cast<int64_t>(blocks.size()), std::min<int>(parts, static_cast<int>(blocks.size())),
               [&](int64_t i) {
                 const auto [e, end] = blocks[static_cast<size_t>(i)];
                 const int64_t t = lr.task_of[static_cast<size_t>(e)], rows = (end - e) * len;
                 float* de = dp + e * len * r;
                 k.thin(xp + e * len * d_in, d_in, rows, ap + t * r * d_in, r, d_in, static_cast<float>(lr.scale), de);
                 k.wide(de, r, 1, rows, r, bp + t * r * d_out, d_out, addp + e * len * d_out, op + e * len * d_out);
               });
}

struct LowRankGrads {
  torch::Tensor a_t, b;  // per task; undefined when not wanted
};

// The low-rank part's backward. With down = s x A: d down = s gy B^T; d B = down^T gy; d x = d down A^T;
// d A^T = d down^T x (down and d down read transposed). grad_x, when defined, gets d x: written, or added to
// what it holds when accumulate.
LowRankGrads lowrank_backward(const torch::Tensor& gy, const torch::Tensor& x, const torch::Tensor& down,
                              const LowRank& lr, const torch::Tensor& grad_x, bool accumulate, bool want_a,
                              bool want_b) {
  const int64_t n = x.size(0), len = x.size(1), d_in = x.size(2), d_out = gy.size(2), r = lr.b.size(1);
  const bool want_x = grad_x.defined();
  if (!want_x && !want_a && !want_b) return {};
  torch::Tensor part_a = want_a ? torch::empty({n, r, d_in}, x.options()) : torch::Tensor();
  torch::Tensor part_b = want_b ? torch::empty({n, r, d_out}, x.options()) : torch::Tensor();
  torch::Tensor g_down = want_x || want_a ? torch::empty({n, len, r}, x.options()) : torch::Tensor();
  const Kernels& k = kernels();
  const float scale = static_cast<float>(lr.scale);
  const float* xp = x.data_ptr<float>();
  const float* ap = lr.a_t.data_ptr<float>();
  const float* bp = lr.b.data_ptr<float>();
  const float* dp = down.data_ptr<float>();
  const float* gp = gy.data_ptr<float>();
  for_each_example(n, 2 * n * len * r * (2 * d_in + 2 * d_out), [&](int64_t e) {
    const int64_t t = lr.task_of[static_cast<size_t>(e)];
    const float* ge = gp + e * len * d_out;
    // In this order gy is read twice while it is still in cache.
    float* gde = g_down.defined() ? g_down.data_ptr<float>() + e * len * r : nullptr;
    if (gde) k.thin(ge, d_out, len, bp + t * r * d_out, r, d_out, scale, gde);
    if (want_b) k.wide(dp + e * len * r, 1, r, r, len, ge, d_out, nullptr, part_b.data_ptr<float>() + e * r * d_out);
    if (want_x) {
      float* gxe = grad_x.data_ptr<float>() + e * len * d_in;
      k.wide(gde, r, 1, len, r, ap + t * r * d_in, d_in, accumulate ? gxe : nullptr, gxe);
    }
    if (want_a) k.wide(gde, 1, r, r, len, xp + e * len * d_in, d_in, nullptr, part_a.data_ptr<float>() + e * r * d_in);
  });
  const int64_t n_tasks = lr.a_t.size(0);
  return {want_a ? sum_per_task(part_a, lr.task_of, n_tasks) : torch::Tensor(),
          want_b ? sum_per_task(part_b, lr.task_of, n_tasks) : torch::Tensor()};
}

void save_lowrank(AutogradContext* ctx, const LowRank& lr, const torch::Tensor& x, const torch::Tensor& down) {
  ctx->save_for_backward({x, lr.a_t, lr.b, down});
  ctx->saved_data["scale"] = lr.scale;
  ctx->saved_data["task_of"] = lr.task_of;  // read and range-checked once, in forward
}

LowRank saved_lowrank(AutogradContext* ctx, const std::vector<torch::Tensor>& saved) {
  return LowRank{saved[1], saved[2], ctx->saved_data["task_of"].toIntVector(), ctx->saved_data["scale"].toDouble()};
}

LowRank read_lowrank(const torch::Tensor& a_t, const torch::Tensor& b, const torch::Tensor& index, double scale) {
  return LowRank{a_t.contiguous(), b.contiguous(), task_of_examples(index, a_t.size(0)), scale};
}

class RoutedLowRank : public torch::autograd::Function<RoutedLowRank> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& y_in, const torch::Tensor& x_in,
                               const torch::Tensor& a_t, const torch::Tensor& b, const torch::Tensor& index,
                               double scale) {
    const torch::Tensor y = y_in.contiguous(), x = x_in.contiguous();
    const LowRank lr = read_lowrank(a_t, b, index, scale);
    torch::Tensor out = torch::empty_like(y);
    torch::Tensor down = torch::empty({x.size(0), x.size(1), b.size(1)}, x.options());  // s x A per example
    lowrank_forward(x, y, out, down, lr);
    save_lowrank(ctx, lr, x, down);
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &down = saved[3];
    const torch::Tensor gy = grad_outputs[0].contiguous();
    torch::Tensor grad_x = ctx->needs_input_grad(1) ? torch::empty_like(x) : torch::Tensor();
    const LowRankGrads g = lowrank_backward(gy, x, down, saved_lowrank(ctx, saved), grad_x, /*accumulate=*/false,
                                            ctx->needs_input_grad(2), ctx->needs_input_grad(3));
    torch::Tensor grad_y = ctx->needs_input_grad(0) ? grad_outputs[0] : torch::Tensor();
    return {grad_y, grad_x, g.a_t, g.b, torch::Tensor(), torch::Tensor()};
  }
};

// The frozen base, passed to the op as a non-tensor argument: autograd tracks no gradient for it (and an
// undefined bias is no input).
struct FrozenLinear {
  torch::Tensor weight, bias;
};

// x W^T + bias (the GEMM, or skinny_linear for a decoding step's few rows without autograd) with the update added
// in place; down gets s x_e A_t for the backward. x contiguous.
torch::Tensor linear_forward(const torch::Tensor& x, const FrozenLinear& base, const LowRank& lr, torch::Tensor& down) {
  torch::Tensor out = skinny_linear_applies(x, base.weight)
                          ? skinny_linear(x, base.weight, base.bias)
                          : torch::nn::functional::linear(x, base.weight, base.bias).contiguous();
  down = torch::empty({x.size(0), x.size(1), lr.b.size(1)}, x.options());
  lowrank_forward(x, out, out, down, lr);
  return out;
}

// The frozen base linear and the low-rank update in one op: the GEMM writes out and the update is added into
// it in place (no y -> out pass); in backward the GEMM writes d x and the update's d x is added into it (no
// separate [B, L, d_in] gradient for autograd to sum with the base's).
class RoutedLowRankLinear : public torch::autograd::Function<RoutedLowRankLinear> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& x_in, const FrozenLinear& base,
                               const torch::Tensor& a_t, const torch::Tensor& b, const torch::Tensor& index,
                               double scale) {
    const torch::Tensor x = x_in.contiguous();
    const LowRank lr = read_lowrank(a_t, b, index, scale);
    torch::Tensor down;
    torch::Tensor out = linear_forward(x, base, lr, down);
    save_lowrank(ctx, lr, x, down);
    ctx->saved_data["weight"] = base.weight;
    return out;
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &x = saved[0], &down = saved[3];
    const torch::Tensor gy = grad_outputs[0].contiguous();
    torch::Tensor grad_x;
    if (ctx->needs_input_grad(0))
      grad_x = torch::matmul(gy, ctx->saved_data["weight"].toTensor()).contiguous();  // the base's d x
    // needs_input_grad counts tensor arguments only: x, a_t, b, index.
    const LowRankGrads g = lowrank_backward(gy, x, down, saved_lowrank(ctx, saved), grad_x, /*accumulate=*/true,
                                            ctx->needs_input_grad(1), ctx->needs_input_grad(2));
    return {grad_x, torch::Tensor(), g.a_t, g.b, torch::Tensor(), torch::Tensor()};
  }
};

// a_t [U, r, d_in] and b [U, r, d_out] for x [B, L, d_in] and an output of width d_out.
bool factors_fit(const torch::Tensor& x, int64_t d_out, const torch::Tensor& a_t, const torch::Tensor& b) {
  return a_t.dim() == 3 && b.dim() == 3 && a_t.size(0) == b.size(0) && a_t.size(1) == b.size(1) &&
         a_t.size(2) == x.size(2) && b.size(2) == d_out;
}

}  // namespace

bool routed_lowrank_applies(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& a_t,
                            const torch::Tensor& b) {
  for (const torch::Tensor* t : {&y, &x, &a_t, &b})
    if (!is_cpu_float(*t) || t->dim() != 3) return false;
  return x.size(0) == y.size(0) && x.size(1) == y.size(1) && factors_fit(x, y.size(2), a_t, b);
}

bool routed_lowrank_linear_applies(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                   const torch::Tensor& factor) {
  if (weight.requires_grad() || (bias.defined() && bias.requires_grad())) return false;  // a frozen base only
  for (const torch::Tensor* t : {&x, &weight, &factor})
    if (!is_cpu_float(*t)) return false;
  if (bias.defined() && !is_cpu_float(bias)) return false;
  return x.dim() == 3 && weight.dim() == 2 && x.size(2) == weight.size(1);
}

torch::Tensor routed_lowrank_linear(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                    const torch::Tensor& a_t, const torch::Tensor& b, const torch::Tensor& index,
                                    double scale) {
  TORCH_CHECK(routed_lowrank_linear_applies(x, weight, bias, a_t) && is_cpu_float(b) &&
                  factors_fit(x, weight.size(0), a_t, b),
              "routed_lowrank_linear: operands ", x.sizes(), " ", weight.sizes(), " ", a_t.sizes(), " ", b.sizes(),
              " are not CPU float32 [B, L, d_in], frozen [d_out, d_in], [U, r, d_in], [U, r, d_out]");
  TORCH_CHECK(index.dim() == 1 && index.size(0) == x.size(0), "routed_lowrank_linear: index ", index.sizes(),
              " for ", x.size(0), " examples");
  const bool needs_grad = x.requires_grad() || a_t.requires_grad() || b.requires_grad();
  if (torch::GradMode::is_enabled() && needs_grad)
    return RoutedLowRankLinear::apply(x, FrozenLinear{weight, bias}, a_t, b, index, scale);
  // Evaluation and decoding: the same forward without the autograd node and what it saves.
  torch::Tensor down;
  return linear_forward(x.contiguous(), FrozenLinear{weight, bias}, read_lowrank(a_t, b, index, scale), down);
}

torch::Tensor routed_lowrank_update(const torch::Tensor& y, const torch::Tensor& x, const torch::Tensor& a_t,
                                    const torch::Tensor& b, const torch::Tensor& index, double scale) {
  TORCH_CHECK(routed_lowrank_applies(y, x, a_t, b), "routed_lowrank_update: operands ", y.sizes(), " ", x.sizes(),
              " ", a_t.sizes(), " ", b.sizes(), " are not CPU float32 [B, L, d_out], [B, L, d_in], [U, r, d_in], "
              "[U, r, d_out]");
  TORCH_CHECK(index.dim() == 1 && index.size(0) == x.size(0), "routed_lowrank_update: index ", index.sizes(),
              " for ", x.size(0), " examples");
  return RoutedLowRank::apply(y, x, a_t, b, index, scale);
}

}  // namespace peft
