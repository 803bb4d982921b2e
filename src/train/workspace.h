// What pretrain and adapt both set up from a config: runtime (threads, seed, device), the frozen backbone,
// the tokenizer, and the task suite tokenised (with the on-disk cache).
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <memory>
#include <vector>

#include "config/config.h"
#include "data/cache.h"
#include "data/task.h"
#include "eval/evaluate.h"
#include "models/t5/model.h"
#include "tokenizer/tokenizer.h"

namespace peft::train {

// Threads (0 = all cores), seeds torch, picks the device (InputError for cuda on a CPU-only build/machine).
torch::Device setup_runtime(const Config& config);

// model.path, or the embedded default tiny model when empty (InputError naming the key when absent).
std::filesystem::path model_dir(const Config& config);
std::filesystem::path tokenizer_dir(const Config& config);

// Loads the T5 backbone with every parameter frozen, on `device`.
T5ForConditionalGeneration load_frozen_t5(const Config& config, torch::Device device);

struct TaskData {
  data::TaskSuite suite;                  // training tasks first, then held-out tasks
  std::vector<data::EncodedTask> encoded;  // parallel to suite.tasks
  std::vector<size_t> train_tasks;        // indices into suite.tasks; routing row = position in this list
  std::vector<size_t> test_tasks;
};

// Reads data.train_dir (training split) and data.test_dir (held-out split), keeps the configured tasks,
// tokenises them (cached in data.cache_dir).
TaskData load_task_data(const Config& config, const Tokenizer& tokenizer);

data::PromptOptions prompt_options(const Config& config);

// eval.batch_size and eval.max_new_tokens, on `device`: how every command evaluates.
eval::EvalOptions eval_options(const Config& config, torch::Device device);

}  // namespace peft::train
