// Tasks and their examples, read from the three on-disk layouts the project uses:
//   (a) Super-NaturalInstructions official: tasks/<name>.json + splits/default/{train,test}_tasks.txt
//   (b) JSON Lines (the layout of the shared SuperNI subset and of data/builtin):
//       train/<task>.jsonl, test/<task>.train.jsonl + test/<task>.test.jsonl, optional tasks.json
//   (c) BIG-Bench Hard: <task>.json = {"examples": [{"input", "target"}]}, optional cot-prompts/<task>.txt
// Every problem in an input file is one peft::InputError naming the file (and line for JSON Lines).
// Reading never writes anything.
#pragma once
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace peft::data {

struct Example {
  std::string id;
  std::string task;
  std::string definition;
  std::string input;
  std::vector<std::string> outputs;  // every reference; scores take the best one, training uses outputs[0]
};

struct PositiveExample {
  std::string input;
  std::string output;
  std::string explanation;  // may be empty
};

struct Task {
  std::string name;
  std::string split;  // "train" (pre-training mixture) or "test" (held-out, few-shot adaptation + evaluation)
  std::string definition;
  std::vector<PositiveExample> positive_examples;
  std::vector<Example> examples;       // training instances; for a held-out task the few-shot pool
  std::vector<Example> test_examples;  // evaluation instances (held-out tasks; may be empty, e.g. BBH)
  // Non-empty when the task's outputs are labels, see compute_label_set().
  std::vector<std::string> label_set;
  // SHA-256 over the bytes of every file the task was read from (cache key: edits invalidate caches).
  std::string content_sha256;
};

struct TaskSuite {
  std::string root;  // directory it was read from
  std::vector<Task> tasks;

  std::vector<size_t> indices_of_split(const std::string& split) const;
  const Task* find(const std::string& name) const;
};

// Label rule: collect the distinct reference strings over examples + test_examples. They are labels when
// 2 <= count <= kMaxLabels and the task has at least 2 instances per distinct value (so a tiny free-form
// task is not mistaken for a classification). Returns the sorted set, or {} for a free-form task.
inline constexpr size_t kMaxLabels = 10;
std::vector<std::string> compute_label_set(const Task& task);

// One JSON Lines file of one task: lines {"id","task","definition","input","outputs":[...]}; blank lines are
// skipped. Errors: `<file>:<line>: malformed JSON: ...`, `<file>:<line>: missing field 'outputs'`,
// `<file>:<line>: field 'outputs' must be a non-empty list of strings`, `<file>:<line>: invalid UTF-8 ...`,
// `<file>:<line>: task 'x' differs from 'y' on line 1`, `<file>: no examples`.
std::vector<Example> read_jsonl_examples(const std::filesystem::path& file, std::string* sha256 = nullptr);

struct ReadOptions {
  // Layout (a): test tasks keep their first n_eval_instances instances (SuperNI's official, label-balanced
  // evaluation instances come first) as test_examples and the rest as the few-shot pool; training tasks keep
  // at most max_train_instances (0 = all), a seeded sample as Tk-Instruct does.
  size_t n_eval_instances = 100;
  size_t max_train_instances = 0;
  uint64_t seed = 42;
  // Layout (a): a task listed in a split file but absent from tasks/ is an error unless this is set.
  bool skip_missing_tasks = false;
};

TaskSuite read_superni_official(const std::filesystem::path& root, const ReadOptions& options = {});
TaskSuite read_jsonl_suite(const std::filesystem::path& root);
// BBH tasks are all held-out ("test"); their examples form the few-shot pool (test_examples stays empty; use
// make_fewshot_split). The definition and positive examples come from cot-prompts/<task>.txt when present
// (answer-only: the text after the last "So the answer is").
TaskSuite read_bbh(const std::filesystem::path& root);

// Picks the reader from the directory's contents: tasks/ + splits/ -> (a), train/ or test/ -> (b),
// *.json with "examples" -> (c).
TaskSuite read_suite(const std::filesystem::path& root, const ReadOptions& options = {});

// UTF-8 well-formedness (no overlongs, surrogates or code points above U+10FFFF). Returns the byte offset of
// the first bad byte, or npos.
size_t find_invalid_utf8(const std::string& text);

}  // namespace peft::data
