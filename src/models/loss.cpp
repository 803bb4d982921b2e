#include "models/loss.h"

#include "models/t5/model.h"

namespace peft {

torch::Tensor token_cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels) {
  const int64_t vocab = logits.size(-1);
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
