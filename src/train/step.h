// One teacher-forced training micro-step of a seq2seq model on a padded batch: what pretrain and adapt share.
#pragma once
#include <torch/torch.h>

#include "data/batch.h"
#include "models/t5/model.h"
#include "train/loop.h"

namespace peft::train {

// Forward with labels in training mode (routing samples, dropout); the loss is the mean token cross-entropy.
// tokens = source tokens + target tokens of the batch (what tokens/s counts). bf16: autocast on CUDA.
// consistency_weight > 0 (AdaMix): a second forward with its own random routes, and the loss becomes the
// first pass's cross-entropy + weight * symmetric KL between the two passes' token distributions.
MicroStep seq2seq_train_step(T5ForConditionalGenerationImpl& model, const data::Batch& batch, torch::Device device,
                             bool bf16 = false, double consistency_weight = 0);

}  // namespace peft::train
