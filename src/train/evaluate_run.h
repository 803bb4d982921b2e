// `peft eval`: scores a pre-trained inventory (or shared adapter) on the held-out examples of its training
// tasks, task by task, with the routing row each task was trained with.
#pragma once
#include <nlohmann/json.hpp>

#include "config/config.h"

namespace peft::train {

// Evaluates the pretrain folder eval.checkpoint ("" = run.out). Returns {"tasks": {name: metrics}, "mean": ...}
// and writes it to run.out/eval.json.
nlohmann::json run_eval(const Config& config);

}  // namespace peft::train
