#include "eval/evaluate.h"

#include <algorithm>

#include "data/batch.h"
#include "models/loss.h"

namespace peft::eval {

namespace {

// Restores the module's training flag when evaluation ends.
struct EvalMode {
  torch::nn::Module& module;
  bool was_training;
  explicit EvalMode(torch::nn::Module& m) : module(m), was_training(m.is_training()) { m.eval(); }
  ~EvalMode() { module.train(was_training); }
};

std::vector<int64_t> strip_special(const torch::Tensor& row, int64_t pad_id, int64_t eos_id) {
  std::vector<int64_t> ids;
  const auto acc = row.accessor<int64_t, 1>();
  for (int64_t i = 1; i < acc.size(0); ++i) {  // position 0 is the decoder start token
    if (acc[i] == eos_id) break;
    ids.push_back(acc[i]);
  }
  (void)pad_id;
  return ids;
}

}  // namespace

torch::Tensor ids_tensor(const std::vector<int64_t>& ids, int64_t rows, int64_t cols, torch::Device device) {
  return torch::from_blob(const_cast<int64_t*>(ids.data()), {rows, cols}, torch::kLong).to(device, false, /*copy=*/true);
}

GenerationResult evaluate_generation(T5ForConditionalGenerationImpl& model, const Tokenizer& tokenizer,
                                     const std::vector<data::Encoded>& examples,
                                     const std::vector<std::vector<std::string>>& references,
                                     const std::vector<int64_t>& task_ids, const EvalOptions& options) {
  EvalMode mode(model);
  torch::NoGradGuard no_grad;
  GenerationResult result;
  result.predictions.resize(examples.size());
  for (size_t start = 0; start < examples.size(); start += static_cast<size_t>(options.batch_size)) {
    const size_t end = std::min(examples.size(), start + static_cast<size_t>(options.batch_size));
    std::vector<const data::Encoded*> rows;
    for (size_t i = start; i < end; ++i) rows.push_back(&examples[i]);
    const data::Batch batch = data::collate(rows, tokenizer.pad_id());
    ForwardContext ctx;
    ctx.task_ids = torch::tensor(std::vector<int64_t>(task_ids.begin() + start, task_ids.begin() + end), torch::kLong)
                       .to(options.device);
    const auto input_ids = ids_tensor(batch.input_ids, batch.batch_size, batch.source_length, options.device);
    const auto mask = ids_tensor(batch.attention_mask, batch.batch_size, batch.source_length, options.device);
    const auto generated = model.generate(input_ids, mask, ctx, options.max_new_tokens).cpu();
    for (int64_t r = 0; r < batch.batch_size; ++r)
      result.predictions[start + r] =
          tokenizer.decode(strip_special(generated[r], tokenizer.pad_id(), tokenizer.eos_id()), true);
  }
  result.scores = score_generation(result.predictions, references);
  return result;
}

double rank_classification_accuracy(T5ForConditionalGenerationImpl& model, const Tokenizer& tokenizer,
                                    const std::vector<data::Encoded>& examples,
                                    const std::vector<std::vector<std::string>>& references,
                                    const std::vector<int64_t>& task_ids, const std::vector<std::string>& label_set,
                                    const EvalOptions& options) {
  if (examples.empty() || label_set.empty()) return 0.0;
  EvalMode mode(model);
  torch::NoGradGuard no_grad;
  std::vector<std::vector<int64_t>> option_ids;
  for (const auto& label : label_set) option_ids.push_back(tokenizer.encode(label));
  size_t correct = 0;
  for (size_t i = 0; i < examples.size(); ++i) {
    // One batch per example: the source repeated once per option, each option as the labels.
    const int64_t n = static_cast<int64_t>(label_set.size());
    size_t longest = 0;
    for (const auto& o : option_ids) longest = std::max(longest, o.size());
    std::vector<int64_t> labels(n * longest, data::kLabelPadId);
    for (int64_t k = 0; k < n; ++k) std::copy(option_ids[k].begin(), option_ids[k].end(), labels.begin() + k * longest);
    const auto& src = examples[i].source_ids;
    const auto input_ids = ids_tensor(src, 1, static_cast<int64_t>(src.size()), options.device).expand({n, -1}).contiguous();
    const auto mask = torch::ones_like(input_ids);
    ForwardContext ctx;
    ctx.task_ids = torch::full({n}, task_ids[i], torch::kLong).to(options.device);
    const auto scores =
        t5_sequence_log_likelihood(model, input_ids, mask, ids_tensor(labels, n, static_cast<int64_t>(longest), options.device), ctx);
    const int64_t best = scores.argmax().item<int64_t>();
    if (!references[i].empty() && references[i][0] == label_set[best]) ++correct;
  }
  return 100.0 * static_cast<double>(correct) / static_cast<double>(examples.size());
}

}  // namespace peft::eval
