#include "train/evaluate_run.h"

#include <spdlog/spdlog.h>

#include <cstdio>

#include "adapters/checkpoint.h"
#include "common/error.h"
#include "common/files.h"
#include "eval/evaluate.h"
#include "train/inventory.h"
#include "train/workspace.h"

namespace peft::train {

namespace fs = std::filesystem;

nlohmann::json run_eval(const Config& config) {
  const torch::Device device = setup_runtime(config);
  const fs::path dir = config.eval.checkpoint.empty() ? fs::path(config.run.out) : fs::path(config.eval.checkpoint);
  const auto tokenizer = load_tokenizer(tokenizer_dir(config));
  const TaskData tasks = load_task_data(config, *tokenizer);
  auto model = load_frozen_t5(config, device);
  if (fs::exists(dir / "manifest.json")) {
    const Inventory inventory = load_inventory(dir, *model);
    std::vector<std::string> names;
    for (size_t i : tasks.train_tasks) names.push_back(tasks.suite.tasks[i].name);
    if (names != inventory.task_names)
      fail_input(where((dir / "manifest.json").string()) +
                 "its tasks differ from the configured training tasks (data.train_tasks / data.train_dir)");
  } else if (fs::exists(dir / "adapter" / "adapter_config.json")) {
    adapters::load_adapter(dir / "adapter", *model, model_info(*model));
  } else {
    fail_input(dir.string() + ": no manifest.json or adapter/ — not the folder of a pretrain run");
  }
  model->to(device);
  const eval::EvalOptions options = eval_options(config, device);
  nlohmann::json result = {{"checkpoint", dir.string()}, {"tasks", nlohmann::json::object()}};
  double rouge_sum = 0, em_sum = 0;
  std::printf("%-48s %8s %8s %8s\n", "task", "n", "Rouge-L", "EM");
  for (size_t r = 0; r < tasks.train_tasks.size(); ++r) {
    const auto& task = tasks.suite.tasks[tasks.train_tasks[r]];
    const auto& examples = tasks.encoded[tasks.train_tasks[r]].test;
    if (examples.empty()) continue;
    std::vector<std::vector<std::string>> refs;
    for (const auto& e : examples) refs.push_back(task.test_examples[static_cast<size_t>(e.example_index)].outputs);
    const std::vector<int64_t> ids(examples.size(), static_cast<int64_t>(r));
    const auto g = eval::evaluate_generation(*model, *tokenizer, examples, refs, ids, options);
    nlohmann::json m = {{"n", examples.size()}, {"rouge_l", g.scores.rouge_l}, {"exact_match", g.scores.exact_match}};
    if (config.eval.rank_classification && !task.label_set.empty())
      m["accuracy"] = eval::rank_classification_accuracy(*model, *tokenizer, examples, refs, ids, task.label_set, options);
    std::printf("%-48s %8zu %8.2f %8.2f\n", task.name.c_str(), examples.size(), g.scores.rouge_l, g.scores.exact_match);
    rouge_sum += g.scores.rouge_l;
    em_sum += g.scores.exact_match;
    result["tasks"][task.name] = m;
  }
  const double n = static_cast<double>(std::max<size_t>(1, result["tasks"].size()));
  result["mean"] = {{"rouge_l", rouge_sum / n}, {"exact_match", em_sum / n}};
  std::printf("%-48s %8s %8.2f %8.2f\n", "mean over tasks", "", rouge_sum / n, em_sum / n);
  write_file_atomic(fs::path(config.run.out) / "eval.json", result.dump(2) + "\n");
  return result;
}

}  // namespace peft::train
