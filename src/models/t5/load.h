// Builds a T5ForConditionalGeneration from a Hugging Face checkpoint directory already read by io.
#pragma once
#include "io/checkpoint.h"
#include "models/t5/model.h"

namespace peft {

// Config from config.json, weights by HF name. Tied tensors stored once (HF's safetensors save) are re-tied:
// `shared.weight` feeds both stacks (a checkpoint holding only `encoder.embed_tokens.weight` /
// `decoder.embed_tokens.weight` works too), and v1.0's lm_head is `shared`. Errors are InputErrors naming
// the checkpoint and every missing / unexpected / mis-shaped tensor.
T5ForConditionalGeneration load_t5(const io::HfCheckpoint& checkpoint);

}  // namespace peft
