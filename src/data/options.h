// From the typed run configuration (config/config.h) to data's options, and task selection.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/batch.h"
#include "data/prompt.h"
#include "data/task.h"

namespace peft::data {

// data.template / num_positive_examples / add_task_definition / max_{source,target}_length.
PromptOptions prompt_options_from(const peft::DataConfig& data);

// data.sampling / data.temperature, train.batch_size, train.group_by_task (-> one task per batch), run.seed.
BatchOptions batch_options_from(const peft::Config& config);

// data.format: "jsonl" (train/, test/, tasks.json), "superni" (official tasks/ + splits/) or "bbh".
TaskSuite load_suite(const std::string& format, const std::filesystem::path& dir, const ReadOptions& options = {});

// Keeps only the named tasks, in the given order (empty list = keep all). An unknown name is an InputError:
// `<key>: unknown task 'x' (not in <dir>)`.
void select_tasks(TaskSuite& suite, const std::vector<std::string>& names, const std::string& key);

// Moves a seeded sample of n examples of a training task into test_examples (evaluation during training,
// data.eval_examples_per_task); at most half of the examples are moved so training keeps data.
void hold_out_examples(Task& task, size_t n, uint64_t seed);

// Keeps a seeded sample of at most n training examples (data.max_train_examples_per_task; 0 = all).
void cap_examples(Task& task, size_t n, uint64_t seed);

}  // namespace peft::data
