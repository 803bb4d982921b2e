// The training loop every command shares: AdamW with parameter groups, linear warmup then linear decay,
// gradient accumulation and clipping, periodic evaluation and logging, atomic checkpoints and exact resume.
// It knows nothing about models or data: the caller supplies a step function and its own resumable state.
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "train/adamw.h"

namespace peft::train {

struct ParamGroup {
  std::string name;  // e.g. "inventory", "routing"
  std::vector<std::pair<std::string, torch::Tensor>> params;  // named, so checkpoints are keyed by name
  double learning_rate = 1e-3;
  double weight_decay = 0.01;
};

struct LoopOptions {
  int64_t steps = 1000;
  int64_t grad_accumulation = 1;
  double warmup_ratio = 0.06;
  double max_grad_norm = 0.1;  // <= 0: no clipping
  int64_t eval_every = 0;      // 0: only at the end
  int64_t save_every = 0;      // 0: only at the end
  int64_t log_every = 10;
  std::filesystem::path out_dir;  // metrics.jsonl and checkpoint/ go here
  bool resume = false;
  int64_t stop_after = 0;  // > 0: save a checkpoint and return after this step (time-limited jobs; tests)
  std::string label = "train";
};

// What one micro-batch returns: the loss to back-propagate (mean over its tokens) and its token count.
struct MicroStep {
  torch::Tensor loss;
  int64_t tokens = 0;
};

// The caller's resumable state (data position, sampler RNG): saved into / restored from state.json.
struct ResumableState {
  std::function<nlohmann::json()> save = [] { return nlohmann::json::object(); };
  std::function<void(const nlohmann::json&)> load = [](const nlohmann::json&) {};
};

struct LoopResult {
  int64_t steps_done = 0;
  bool finished = false;  // false when stopped early by stop_after
  double final_train_loss = 0;  // mean over the last log window
  double seconds = 0;
  nlohmann::json last_eval;
};

// HF's get_linear_schedule_with_warmup: the factor for the (0-based) optimizer step `step`.
double linear_schedule(int64_t step, int64_t warmup_steps, int64_t total_steps);

class TrainLoop {
 public:
  TrainLoop(LoopOptions options, std::vector<ParamGroup> groups);

  // step_fn(step, micro) runs one micro-batch forward; eval_fn(step) returns metrics (may be empty json).
  LoopResult run(const std::function<MicroStep(int64_t step, int64_t micro)>& step_fn,
                 const std::function<nlohmann::json(int64_t step)>& eval_fn, ResumableState state = {});

  int64_t warmup_steps() const { return warmup_steps_; }

 private:
  void save_checkpoint(int64_t step, const ResumableState& state);
  int64_t load_checkpoint(const ResumableState& state);  // returns the step to continue from

  LoopOptions options_;
  std::vector<ParamGroup> groups_;
  std::unique_ptr<FusedAdamW> optimizer_;
  int64_t warmup_steps_;
};

// Appends one JSON object per line and flushes, so a crashed run keeps every line it logged.
void append_jsonl(const std::filesystem::path& path, const nlohmann::json& record);

// Exact copy of the default CPU generator's state (routing samples, dropout), for checkpoints.
std::string cpu_rng_state();
void set_cpu_rng_state(const std::string& state);

}  // namespace peft::train
