// Evaluating a seq2seq model on encoded examples: greedy generation scored with SuperNI's Rouge-L and exact
// match, and rank classification (each option scored by its log-likelihood, as T0 / T-Few evaluate).
#pragma once
#include <torch/torch.h>

#include <string>
#include <vector>

#include "data/prompt.h"
#include "eval/metrics.h"
#include "models/t5/model.h"
#include "tokenizer/tokenizer.h"

namespace peft::eval {

struct EvalOptions {
  int64_t batch_size = 32;
  int64_t max_new_tokens = 64;
  torch::Device device = torch::kCPU;
};

// Row-major token ids (data::Batch's layout) as a [rows, cols] int64 tensor on `device` (a copy).
torch::Tensor ids_tensor(const std::vector<int64_t>& ids, int64_t rows, int64_t cols, torch::Device device);

struct GenerationResult {
  GenerationScores scores;
  std::vector<std::string> predictions;
};

// `examples[i]` is scored against `references[i]`; `task_ids[i]` routes it (Poly/MHR). The model runs in
// evaluation mode without autograd; its training flag is restored afterwards.
GenerationResult evaluate_generation(T5ForConditionalGenerationImpl& model, const Tokenizer& tokenizer,
                                     const std::vector<data::Encoded>& examples,
                                     const std::vector<std::vector<std::string>>& references,
                                     const std::vector<int64_t>& task_ids, const EvalOptions& options);

// Accuracy (x100) of picking, for each example, the option of `label_set` with the highest log-likelihood;
// an example is right when its first reference equals the picked option.
double rank_classification_accuracy(T5ForConditionalGenerationImpl& model, const Tokenizer& tokenizer,
                                    const std::vector<data::Encoded>& examples,
                                    const std::vector<std::vector<std::string>>& references,
                                    const std::vector<int64_t>& task_ids, const std::vector<std::string>& label_set,
                                    const EvalOptions& options);

}  // namespace peft::eval
