#include "models/batched_matmul.h"

#include <dlfcn.h>

#include <algorithm>
#include <limits>
#include <optional>

#include "common/cpu_float.h"
#include "common/threads.h"
#include "common/worker_pool.h"

namespace peft {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// CBLAS, looked up in the BLAS LibTorch already loaded (OpenBLAS on Debian): no build dependency.
using SgemmFn = void (*)(int order, int trans_a, int trans_b, int m, int n, int k, float alpha, const float* a, int lda,
                         const float* b, int ldb, float beta, float* c, int ldc);
constexpr int kRowMajor = 101, kNoTrans = 111, kTrans = 112;

SgemmFn cblas_sgemm() {
  static const auto fn = reinterpret_cast<SgemmFn>(dlsym(RTLD_DEFAULT, "cblas_sgemm"));
  return fn;
}

// How sgemm (row-major) reads a [rows, cols] matrix with strides (rs, cs): as is with leading dimension rs, or
// transposed with leading dimension cs. nullopt when neither stride is 1 (or a leading dimension is too small).
struct Operand {
  int trans;
  int64_t ld;
};

std::optional<Operand> blas_operand(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  // A stride along a dimension of size 1 is never used: treat it as whatever suits.
  if ((cs == 1 || cols == 1) && (rows == 1 || rs >= std::max<int64_t>(1, cols)))
    return Operand{kNoTrans, rows == 1 ? std::max<int64_t>(1, cols) : rs};
  if ((rs == 1 || rows == 1) && (cols == 1 || cs >= std::max<int64_t>(1, rows)))
    return Operand{kTrans, cols == 1 ? std::max<int64_t>(1, rows) : cs};
  return std::nullopt;
}

bool addressable(const torch::Tensor& t) {  // 4-D view whose matrices sgemm can read
  if (t.numel() == 0) return true;
  for (int d = 0; d < 2; ++d)
    if (t.size(d) > 1 && t.stride(d) <= 0) return false;
  return blas_operand(t.size(2), t.size(3), t.stride(2), t.stride(3)).has_value();
}

torch::Tensor addressable_or_contiguous(const torch::Tensor& t) { return addressable(t) ? t : t.contiguous(); }

// While alive, BLAS calls run on their calling thread: our pool splits the batch instead of OpenBLAS splitting
// each small product (and waking its workers) over and over.
class SingleThreadedBlas {
 public:
  explicit SingleThreadedBlas(bool active) {
    using Fn = void (*)(int);
    set_ = active ? reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")) : nullptr;
    if (set_) set_(1);
  }
  ~SingleThreadedBlas() {
    if (set_) set_(cpu_threads());
  }
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  void (*set_)(int);
};

// c[i, j] = a[i, j] @ b[i, j] for 4-D views a [B, H, M, K], b [B, H, K, N], c [B, H, M, N] (any strides sgemm can
// address; c is written, never read).
void gemm_into(const torch::Tensor& a, const torch::Tensor& b, const torch::Tensor& c) {
  const int64_t batch = c.size(0), heads = c.size(1), m = c.size(2), n = c.size(3), k = a.size(3);
  if (c.numel() == 0) return;
  if (k == 0) {
    c.zero_();
    return;
  }
  TORCH_CHECK(addressable(c), "batched_matmul: output strides ", c.strides(), " are not BLAS-addressable");
  const int64_t c_rs = m == 1 ? n : c.stride(2), c_cs = n == 1 ? 1 : c.stride(3);
  if (c_cs != 1) {  // c is stored column-major: compute c^T = b^T a^T, which is row-major
    gemm_into(b.transpose(2, 3), a.transpose(2, 3), c.transpose(2, 3));
    return;
  }
  const Operand op_a = *blas_operand(m, k, a.stride(2), a.stride(3));
  const Operand op_b = *blas_operand(k, n, b.stride(2), b.stride(3));
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  TORCH_CHECK(std::max({m, n, k, op_a.ld, op_b.ld, c_rs}) <= kIntMax, "batched_matmul: matrix too large for BLAS");
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* pc = c.data_ptr<float>();
  const int64_t count = batch * heads;
  auto run = [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int64_t x = i / heads, h = i % heads;
      cblas_sgemm()(kRowMajor, op_a.trans, op_b.trans, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k),
                    1.0f, pa + x * a.stride(0) + h * a.stride(1), static_cast<int>(op_a.ld),
                    pb + x * b.stride(0) + h * b.stride(1), static_cast<int>(op_b.ld), 0.0f,
                    pc + x * c.stride(0) + h * c.stride(1), static_cast<int>(c_rs));
    }
  };
  const int parts = static_cast<int>(std::min<int64_t>(cpu_threads(), count));
  SingleThreadedBlas single(parts > 1);
  run_in_parts(count, parts, run);
}

torch::Tensor product(const torch::Tensor& a, const torch::Tensor& b, bool heads_inner) {
  const int64_t batch = a.size(0), heads = a.size(1), m = a.size(2), n = b.size(3);
  torch::Tensor c = heads_inner ? torch::empty({batch, m, heads, n}, a.options()).transpose(1, 2)
                                : torch::empty({batch, heads, m, n}, a.options());
  gemm_into(a, b, c);
  return c;
}

// A gradient buffer in t's layout when sgemm can write that layout, else contiguous.
torch::Tensor gradient_like(const torch::Tensor& t) {
  torch::Tensor g = torch::empty_like(t);
  return addressable(g) ? g : torch::empty(t.sizes(), t.options());
}

class BatchedMatmul : public torch::autograd::Function<BatchedMatmul> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& a, const torch::Tensor& b, bool heads_inner) {
    ctx->save_for_backward({a, b});
    return product(a, b, heads_inner);
  }

  // d a = d c b^T and d b = a^T d c, each written in its input's layout (empty_like keeps a dense input's
  // strides), so the views' own backward functions hand them on without copies.
  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor& a = saved[0];
    const torch::Tensor& b = saved[1];
    const torch::Tensor grad = addressable_or_contiguous(grad_outputs[0]);
    torch::Tensor grad_a, grad_b;
    if (ctx->needs_input_grad(0)) gemm_into(grad, b.transpose(2, 3), grad_a = gradient_like(a));
    if (ctx->needs_input_grad(1)) gemm_into(a.transpose(2, 3), grad, grad_b = gradient_like(b));
    return {grad_a, grad_b, torch::Tensor()};
  }
};

}  // namespace

bool batched_matmul_uses_blas(const torch::Tensor& a, const torch::Tensor& b) {
  return cblas_sgemm() != nullptr && is_cpu_float(a) && is_cpu_float(b);
}

torch::Tensor batched_matmul(const torch::Tensor& a, const torch::Tensor& b, bool heads_inner) {
  TORCH_CHECK((a.dim() == 3 || a.dim() == 4) && b.dim() == a.dim(), "batched_matmul: 3-D or 4-D operands");
  TORCH_CHECK(!heads_inner || a.dim() == 4, "batched_matmul: heads_inner needs 4-D operands");
  for (int64_t d = 0; d < a.dim() - 2; ++d)
    TORCH_CHECK(a.size(d) == b.size(d), "batched_matmul: batch sizes differ: ", a.sizes(), " vs ", b.sizes());
  TORCH_CHECK(a.size(-1) == b.size(-2), "batched_matmul: inner sizes differ: ", a.sizes(), " vs ", b.sizes());
  if (!batched_matmul_uses_blas(a, b)) return torch::matmul(a, b);
  const bool three_d = a.dim() == 3;
  const torch::Tensor a4 = addressable_or_contiguous(three_d ? a.unsqueeze(1) : a);
  const torch::Tensor b4 = addressable_or_contiguous(three_d ? b.unsqueeze(1) : b);
  torch::Tensor c = BatchedMatmul::apply(a4, b4, heads_inner);
  return three_d ? c.squeeze(1) : c;
}

}  // namespace peft
