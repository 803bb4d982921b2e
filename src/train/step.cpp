#include "train/step.h"

#include "adapters/adamix.h"
#include "common/torch_compat.h"
#include "eval/evaluate.h"

namespace peft::train {

MicroStep seq2seq_train_step(T5ForConditionalGenerationImpl& model, const data::Batch& batch, torch::Device device,
                             bool bf16, double consistency_weight) {
  compat::AutocastScope autocast(bf16, device);  // no-op on CPU
  ForwardContext ctx;
  ctx.training = true;
  ctx.task_ids = torch::tensor(batch.task_ids, torch::kLong).to(device);
  const auto input_ids = eval::ids_tensor(batch.input_ids, batch.batch_size, batch.source_length, device);
  const auto mask = eval::ids_tensor(batch.attention_mask, batch.batch_size, batch.source_length, device);
  const auto labels = eval::ids_tensor(batch.labels, batch.batch_size, batch.target_length, device);
  auto output = model.forward(input_ids, mask, {}, {}, labels, ctx);
  torch::Tensor loss = output.loss;
  if (consistency_weight > 0) {
    // AdaMix (methods.md §7): a second pass draws its own routes (and dropout); the task loss stays the
    // first pass's, the symmetric KL between the passes' token distributions is added on non-padding targets.
    auto second = model.forward(input_ids, mask, {}, {}, labels, ctx);
    loss = loss + consistency_weight * adapters::consistency_loss(output.logits, second.logits,
                                                                  labels.ne(data::kLabelPadId));
  }
  int64_t tokens = 0;
  for (auto v : batch.attention_mask) tokens += v;
  for (auto v : batch.labels) tokens += v != data::kLabelPadId;
  return MicroStep{loss, tokens};
}

}  // namespace peft::train
