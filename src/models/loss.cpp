#include "models/loss.h"

#include "common/cpu_float.h"
#include "common/threads.h"
#include "common/worker_pool.h"
#include "models/t5/model.h"

namespace peft {

namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

// Runs fn on row ranges of [0, rows) over the run.threads cores (LibTorch's own loops run on one thread next
// to OpenBLAS's pool). fn gets its own no-grad scope: grad mode is per thread.
void over_row_ranges(int64_t rows, const std::function<void(int64_t, int64_t)>& fn) {
  run_in_parts(rows, static_cast<int>(std::min<int64_t>(cpu_threads(), rows)), [&](int64_t begin, int64_t end) {
    torch::NoGradGuard no_grad;
    fn(begin, end);
  });
}

// Mean cross-entropy of logits [N, V] (CPU float) against labels [N] (-100 ignored), fused: the forward keeps
// one log-sum-exp per row, the backward writes softmax - one-hot straight into the gradient. LibTorch's
// log_softmax + nll_loss materialise [N, V] log-probabilities, then in backward a zero-filled [N, V] one-hot
// gradient and a second [N, V] pass, all on one thread: for T5's 32,128-word vocabulary at 256 target
// tokens, three 33 MB tensors per step.
class TokenCrossEntropy : public torch::autograd::Function<TokenCrossEntropy> {
 public:
  static torch::Tensor forward(AutogradContext* ctx, const torch::Tensor& logits_in, const torch::Tensor& labels) {
    const torch::Tensor logits = logits_in.detach().contiguous();
    const torch::Tensor valid = labels != kIgnoreIndex;
    const torch::Tensor target = labels.masked_fill(~valid, 0);
    torch::Tensor lse = torch::empty({logits.size(0)}, logits.options());
    over_row_ranges(logits.size(0), [&](int64_t begin, int64_t end) {
      torch::Tensor out = lse.narrow(0, begin, end - begin);
      torch::logsumexp_out(out, logits.narrow(0, begin, end - begin), {1});
    });
    const torch::Tensor picked = logits.gather(1, target.unsqueeze(1)).squeeze(1);
    const torch::Tensor count = valid.sum().to(logits.scalar_type());
    ctx->save_for_backward({logits, target, valid, lse, count});
    return ((lse - picked) * valid).sum() / count;  // 0 / 0 = NaN when every label is ignored, as torch
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grad_outputs) {
    const auto saved = ctx->get_saved_variables();
    const torch::Tensor &logits = saved[0], &target = saved[1], &valid = saved[2], &lse = saved[3], &count = saved[4];
    // d loss / d logits[i] = (softmax(logits[i]) - onehot(target[i])) * grad / count on valid rows, 0 elsewhere.
    const torch::Tensor row_scale = valid.to(logits.scalar_type()) * (grad_outputs[0] / count);
    torch::Tensor grad = torch::empty_like(logits);
    over_row_ranges(logits.size(0), [&](int64_t begin, int64_t end) {
      torch::Tensor part = grad.narrow(0, begin, end - begin);
      torch::sub_out(part, logits.narrow(0, begin, end - begin), lse.narrow(0, begin, end - begin).unsqueeze(1));
      part.exp_().mul_(row_scale.narrow(0, begin, end - begin).unsqueeze(1));
    });
    grad.scatter_add_(1, target.unsqueeze(1), -row_scale.unsqueeze(1));
    return {grad, torch::Tensor()};
  }
};

}  // namespace

torch::Tensor token_cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels) {
  const int64_t vocab = logits.size(-1);
  if (is_cpu_float(logits))
    return TokenCrossEntropy::apply(logits.reshape({-1, vocab}), labels.reshape({-1}));
  return torch::nn::functional::cross_entropy(
      logits.to(torch::kFloat).reshape({-1, vocab}), labels.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().ignore_index(kIgnoreIndex).reduction(torch::kMean));
}

torch::Tensor sequence_log_likelihood(const torch::Tensor& logits, const torch::Tensor& labels) {
  TORCH_CHECK(logits.dim() == 3 && labels.dim() == 2, "sequence_log_likelihood: logits [B, T, V], labels [B, T]");
  torch::Tensor log_probs = torch::log_softmax(logits.to(torch::kFloat), -1);
  torch::Tensor keep = labels != kIgnoreIndex;
  torch::Tensor index = labels.masked_fill(~keep, 0).unsqueeze(-1);
  torch::Tensor token_log_probs = log_probs.gather(-1, index).squeeze(-1);
  return token_log_probs.masked_fill(~keep, 0.0).sum(-1);
}

torch::Tensor t5_sequence_log_likelihood(T5ForConditionalGenerationImpl& model, const torch::Tensor& input_ids,
                                         const torch::Tensor& attention_mask, const torch::Tensor& labels,
                                         const ForwardContext& ctx) {
  // Padded label positions (-100) become pad inputs after the shift; the causal mask keeps them from
  // influencing the real positions, and they are left out of the sum.
  Seq2SeqOutput out =
      model.forward(input_ids, attention_mask, model.shift_right(labels), torch::Tensor(), torch::Tensor(), ctx);
  return sequence_log_likelihood(out.logits, labels);
}

}  // namespace peft
