// What a forward pass needs to know besides the tensors: each example's task (routing), and whether we
// are training (sampling, dropout). Handed down explicitly, never global, so a batch can mix tasks and
// two models can run in one process.
#pragma once
#include <torch/torch.h>

#include <any>
#include <map>
#include <string>

namespace peft {

struct ForwardContext {
  torch::Tensor task_ids;  // [B] int64 on the model's device; undefined when no routing is used
  bool training = false;
  // Per-batch values computed once and shared by every adapted layer (e.g. routing's task grouping).
  // Keyed by the component that owns them; cleared with each new batch (a new context per forward).
  mutable std::map<std::string, std::any> cache;
};

}  // namespace peft
