// `peft adapt`: few-shot adaptation of a pre-trained inventory (or baseline adapter) to each held-out task.
//
// For every held-out task (load_task_data's test tasks, filtered by adapt.tasks) x variant (adapt.variants,
// see train/variants.h) x seed (adapt.seeds): draw the k-shot split (adapt.shots), attach the variant to a
// fresh frozen backbone, train adapt.steps steps (batch adapt.batch_size), evaluate on the task's test
// examples (Rouge-L, exact match; rank-classification accuracy for label tasks when eval.rank_classification)
// and append one row to run.out/results.jsonl. Cells already in results.jsonl are skipped, and a cell's
// training resumes from run.out/cells/<task>/<variant>/seed<seed>/checkpoint when `resume` is set, so an
// interrupted sweep continues. At the end: results.csv, summary.md and results.png (Rouge-L per variant).
#pragma once
#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <vector>

#include "config/config.h"
#include "data/cache.h"
#include "data/prompt.h"
#include "data/task.h"
#include "eval/report.h"
#include "models/t5/model.h"
#include "tokenizer/tokenizer.h"
#include "train/variants.h"

namespace peft::train {

struct AdaptSummary {
  std::vector<eval::ResultRow> rows;  // every row of results.jsonl after the sweep
  int64_t cells_run = 0, cells_skipped = 0;
  double seconds = 0;
};

AdaptSummary run_adapt(const Config& config, bool resume);

// One task's data for one seed: the k training examples (task_index 0: the adapted routing row) and the
// evaluation examples with their references.
struct CellData {
  std::string task;
  std::vector<data::Encoded> train;
  std::vector<data::Encoded> test;
  std::vector<std::vector<std::string>> references;  // parallel to test
  std::vector<std::string> label_set;
};

// data::make_fewshot_split(task, shots, seed); the test side reuses `encoded.test` (the cached encoding of
// Task::test_examples) when the task has test examples, else encodes the split's test examples.
CellData make_cell_data(const data::Task& task, const data::EncodedTask& encoded, size_t shots, uint64_t seed,
                        const data::TokenCodec& codec, const data::PromptOptions& options);

struct CellOptions {
  std::filesystem::path out_dir;  // the cell's folder: metrics.jsonl, checkpoint/
  bool resume = false;
  int64_t seed = 0;
  torch::Device device = torch::kCPU;
};

// Trains `attached` (already on `model`) on cell.train for adapt.steps steps (nothing when it has no
// parameter groups), then evaluates; returns the result row (task, variant, seed, metrics, trainable_params,
// steps, wall_seconds of training + evaluation).
eval::ResultRow run_cell(T5ForConditionalGenerationImpl& model, AttachedVariant& attached, const CellData& cell,
                         const Tokenizer& tokenizer, const Config& config, const CellOptions& options);

}  // namespace peft::train
