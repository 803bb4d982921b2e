#include "data/options.h"

#include <algorithm>

#include "common/error.h"
#include "data/random.h"

namespace peft::data {

PromptOptions prompt_options_from(const peft::DataConfig& data) {
  PromptOptions o;
  o.prompt_template = parse_prompt_template(data.template_);
  o.add_task_definition = data.add_task_definition;
  o.num_pos_examples = data.num_positive_examples;
  o.max_source_length = data.max_source_length;
  o.max_target_length = data.max_target_length;
  return o;
}

BatchOptions batch_options_from(const peft::Config& config) {
  BatchOptions o;
  o.batch_size = config.train.batch_size;
  o.sampling = parse_sampling(config.data.sampling);
  o.temperature = config.data.temperature > 0 ? config.data.temperature : 1.0;
  o.seed = static_cast<uint64_t>(config.run.seed);
  o.tasks_per_batch = config.train.group_by_task ? 1 : 0;
  return o;
}

TaskSuite load_suite(const std::string& format, const std::filesystem::path& dir, const ReadOptions& options) {
  if (!std::filesystem::is_directory(dir)) fail_input(where(dir.generic_string()) + "data directory not found");
  if (format == "jsonl") return read_jsonl_suite(dir);
  if (format == "superni") return read_superni_official(dir, options);
  if (format == "bbh") return read_bbh(dir);
  fail_input("data.format: unknown value '" + format + "' (expected jsonl, superni or bbh)");
}

void select_tasks(TaskSuite& suite, const std::vector<std::string>& names, const std::string& key) {
  if (names.empty()) return;
  std::vector<Task> kept;
  for (const auto& n : names) {
    auto it = std::find_if(suite.tasks.begin(), suite.tasks.end(), [&](const Task& t) { return t.name == n; });
    if (it == suite.tasks.end()) fail_input(key + ": unknown task '" + n + "' (not in " + suite.root + ")");
    kept.push_back(*it);
  }
  suite.tasks = std::move(kept);
}

namespace {
// Seeded permutation of the example indices of a task.
std::vector<size_t> permutation(const Task& task, uint64_t seed, const std::string& purpose) {
  std::vector<size_t> idx(task.examples.size());
  for (size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  CountingRng rng(derive_seed(seed, purpose + "/" + task.name));
  portable_shuffle(idx, rng);
  return idx;
}
}  // namespace

void hold_out_examples(Task& task, size_t n, uint64_t seed) {
  n = std::min(n, task.examples.size() / 2);
  if (n == 0) return;
  auto idx = permutation(task, seed, "holdout");
  std::vector<bool> out(task.examples.size(), false);
  for (size_t i = 0; i < n; ++i) out[idx[i]] = true;
  std::vector<Example> keep;
  for (size_t i = 0; i < task.examples.size(); ++i)
    (out[i] ? task.test_examples : keep).push_back(std::move(task.examples[i]));
  task.examples = std::move(keep);
}

void cap_examples(Task& task, size_t n, uint64_t seed) {
  if (n == 0 || task.examples.size() <= n) return;
  auto idx = permutation(task, seed, "cap");
  idx.resize(n);
  std::sort(idx.begin(), idx.end());  // keep file order
  std::vector<Example> keep;
  for (size_t i : idx) keep.push_back(std::move(task.examples[i]));
  task.examples = std::move(keep);
}

}  // namespace peft::data
