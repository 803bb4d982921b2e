// `peft pretrain`: multi-task pre-training of a Poly/MHR inventory with its routing (or of one shared adapter
// when routing.method = none) on the training tasks, with a frozen backbone.
//
// Output folder (run.out): config.resolved.yaml and log.txt (written by the CLI), metrics.jsonl,
// checkpoint/ (resume state), inventory.safetensors + manifest.json (Poly/MHR) or adapter/ (HF PEFT format),
// routing.png (task x skill heat map), summary.md.
#pragma once
#include <nlohmann/json.hpp>

#include "config/config.h"

namespace peft::train {

struct PretrainSummary {
  double first_train_loss = 0, final_train_loss = 0;
  nlohmann::json first_eval, final_eval;
  int64_t trainable_parameters = 0, total_parameters = 0;
  double seconds = 0;
};

// stop_after > 0: stop (with a checkpoint) after that step; the outputs are written only by a finished run.
PretrainSummary run_pretrain(const Config& config, bool resume, int64_t stop_after = 0);

// Default Poly/MHR/LoRA targets on T5 (methods.md §0): every attention projection, encoder and decoder.
inline constexpr const char* kT5AttentionTargets = R"(.*\.(SelfAttention|EncDecAttention)\.(q|k|v|o))";

}  // namespace peft::train
