#include "train/pretrain.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <sstream>

#include "adapters/checkpoint.h"
#include "adapters/inject.h"
#include "common/error.h"
#include "common/files.h"
#include "data/batch.h"
#include "data/options.h"
#include "eval/evaluate.h"
#include "eval/plots.h"
#include "io/safetensors.h"
#include "routing/poly.h"
#include "train/inventory.h"
#include "train/loop.h"
#include "train/step.h"
#include "train/workspace.h"

namespace peft::train {

namespace fs = std::filesystem;

namespace {

// Held-out examples of the training tasks (for evaluation during pre-training): the last
// data.eval_examples_per_task of each task, never trained on.
struct EvalSet {
  std::vector<data::Encoded> examples;
  std::vector<std::vector<std::string>> references;
  std::vector<int64_t> task_ids;
};

}  // namespace

PretrainSummary run_pretrain(const Config& config, bool resume, int64_t stop_after) {
  const torch::Device device = setup_runtime(config);
  const auto tokenizer = load_tokenizer(tokenizer_dir(config));
  TaskData tasks = load_task_data(config, *tokenizer);
  if (tasks.train_tasks.empty()) fail_input("data.train_dir: no training tasks in " + config.data.train_dir);
  auto model = load_frozen_t5(config, device);
  const fs::path out = config.run.out;
  fs::create_directories(out);
  if (!resume && (fs::exists(out / "metrics.jsonl") || fs::exists(out / "checkpoint"))) {
    spdlog::warn("{}: starting afresh (without --resume): replacing its metrics and checkpoint", out.string());
    fs::remove(out / "metrics.jsonl");
    fs::remove_all(out / "checkpoint");
  }

  // Training rows, and the held-out rows of the training tasks (data.eval_examples_per_task) for evaluation.
  std::vector<std::vector<data::Encoded>> train_rows(tasks.train_tasks.size());
  EvalSet eval_set;
  for (size_t r = 0; r < tasks.train_tasks.size(); ++r) {
    const size_t suite_index = tasks.train_tasks[r];  // training tasks come first: suite index = routing row
    const auto& task = tasks.suite.tasks[suite_index];
    train_rows[r] = tasks.encoded[suite_index].train;
    for (const auto& e : tasks.encoded[suite_index].test) {
      eval_set.examples.push_back(e);
      eval_set.references.push_back(task.test_examples[static_cast<size_t>(e.example_index)].outputs);
      eval_set.task_ids.push_back(static_cast<int64_t>(r));
    }
  }

  // Adapters: a Poly/MHR inventory with routing, or one shared adapter for every task.
  std::vector<std::string> task_names;
  for (size_t i : tasks.train_tasks) task_names.push_back(tasks.suite.tasks[i].name);
  Inventory inventory;
  adapters::AdapterSet adapter_set;
  std::vector<ParamGroup> groups;
  const bool routed = config.routing.method != "none";
  if (routed) {
    inventory = attach_inventory(*model, config, task_names);
    groups = inventory.param_groups(config);
  } else {
    adapters::AdapterSpec spec = adapter_spec(config);
    // A shared AdaMix adapter trains its copies here and is saved merged (adapter/ holds a plain LoRA / adapter).
    if (config.adamix.enabled) spec.adamix = adamix_options(config);
    adapter_set = adapters::inject(*model, spec, model_info(*model));
    groups.push_back({"adapter", adapter_set.named_trainable_parameters(*model), config.train.learning_rate,
                      config.train.weight_decay});
  }
  const auto counts = adapters::count_parameters(*model);
  spdlog::info("trainable parameters: {} of {} ({:.4f}%)", counts.trainable, counts.total, counts.percent());

  const data::BatchOptions batch_options = data::batch_options_from(config);
  std::vector<const std::vector<data::Encoded>*> streams;
  for (const auto& rows : train_rows) streams.push_back(&rows);
  data::MultiTaskBatcher batcher(streams, batch_options, tokenizer->pad_id());

  LoopOptions loop_options;
  loop_options.steps = config.train.steps;
  loop_options.grad_accumulation = config.train.grad_accumulation;
  loop_options.warmup_ratio = config.train.warmup_ratio;
  loop_options.max_grad_norm = config.train.max_grad_norm;
  loop_options.eval_every = config.train.eval_every;
  loop_options.save_every = config.train.save_every;
  loop_options.log_every = config.train.log_every;
  loop_options.out_dir = out;
  loop_options.resume = resume;
  loop_options.label = "pretrain";
  loop_options.stop_after = stop_after;

  PretrainSummary summary;
  summary.trainable_parameters = counts.trainable;
  summary.total_parameters = counts.total;
  bool first_step = true;
  model->train();
  auto step_fn = [&](int64_t, int64_t) {
    MicroStep step = seq2seq_train_step(*model, batcher.next(), device, config.train.bf16,
                                        config.adamix.enabled && !routed ? config.adamix.consistency_weight : 0.0);
    if (first_step) summary.first_train_loss = step.loss.item<double>();
    first_step = false;
    return step;
  };
  const eval::EvalOptions evaluation = eval_options(config, device);
  auto eval_fn = [&](int64_t step) -> nlohmann::json {
    if (eval_set.examples.empty()) return {};
    const auto r = eval::evaluate_generation(*model, *tokenizer, eval_set.examples, eval_set.references,
                                             eval_set.task_ids, evaluation);
    spdlog::info("step {}: held-out examples of training tasks: Rouge-L {:.2f}, exact match {:.2f}", step,
                 r.scores.rouge_l, r.scores.exact_match);
    return {{"rouge_l", r.scores.rouge_l}, {"exact_match", r.scores.exact_match}, {"n", eval_set.examples.size()}};
  };
  if (!resume) {
    summary.first_eval = eval_fn(0);
    if (!summary.first_eval.empty()) append_jsonl(out / "metrics.jsonl", {{"step", 0}, {"eval", summary.first_eval}});
  }
  ResumableState state{[&] { return nlohmann::json{{"batcher", batcher.state()}}; },
                       [&](const nlohmann::json& j) { batcher.restore(j.at("batcher").get<std::string>()); }};
  TrainLoop loop(loop_options, groups);
  const LoopResult result = loop.run(step_fn, eval_fn, state);
  summary.final_train_loss = result.final_train_loss;
  summary.final_eval = result.last_eval;
  summary.seconds = result.seconds;
  if (!result.finished) return summary;

  if (routed) {
    inventory.save(out, *model, config);
    const auto matrix = inventory.task_skill_matrix();
    std::vector<std::string> skills;
    for (int s = 0; s < config.routing.n_skills; ++s) skills.push_back("skill " + std::to_string(s));
    eval::write_heatmap_png(out / "routing.png", matrix, task_names, skills,
                            "routing weights (mean over layers and heads)");  // colours span the matrix's range
  } else {
    adapters::save_adapter(out / "adapter", *model, adapter_set);
  }
  write_pretrain_summary(out / "summary.md", config, summary, task_names.size());
  return summary;
}

}  // namespace peft::train
