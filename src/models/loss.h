// Losses and scores computed from logits, shared by T5 and BERT heads and by rank classification.
#pragma once
#include <torch/torch.h>

#include "models/context.h"

namespace peft {

inline constexpr int64_t kIgnoreIndex = -100;

// Mean token cross-entropy over labels != -100, as torch.nn.CrossEntropyLoss(ignore_index=-100) on
// logits.view(-1, V), labels.view(-1) (what HF computes). logits [..., V], labels [...]. Computed in fp32.
// All labels ignored gives NaN, as in HF.
torch::Tensor token_cross_entropy(const torch::Tensor& logits, const torch::Tensor& labels);

// Per-sequence sum of log p(label_t) over labels != -100: logits [B, T, V], labels [B, T] -> [B] (fp32).
torch::Tensor sequence_log_likelihood(const torch::Tensor& logits, const torch::Tensor& labels);

class T5ForConditionalGenerationImpl;

// Runs the T5 model teacher-forced on `labels` (decoder inputs = labels shifted right) and returns
// sequence_log_likelihood: [B] log p(labels | input). Rank classification scores each option with it.
torch::Tensor t5_sequence_log_likelihood(T5ForConditionalGenerationImpl& model, const torch::Tensor& input_ids,
                                         const torch::Tensor& attention_mask, const torch::Tensor& labels,
                                         const ForwardContext& ctx);

}  // namespace peft
