#include "train/adapt.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>

#include "adapters/checkpoint.h"
#include "common/error.h"
#include "common/files.h"
#include "data/batch.h"
#include "data/codec.h"
#include "data/fewshot.h"
#include "eval/evaluate.h"
#include "eval/plots.h"
#include "train/loop.h"
#include "train/step.h"
#include "train/workspace.h"

namespace peft::train {

namespace fs = std::filesystem;

namespace {

// Task names are file stems; keep the cell folder name safe anyway.
std::string folder_name(const std::string& s) {
  std::string out;
  for (char c : s) out.push_back(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ? c : '_');
  return out;
}

using CellKey = std::tuple<std::string, std::string, int64_t>;

std::string pretrained_dirs(const std::vector<Pretrained>& runs) {
  std::string out;
  for (const auto& r : runs)
    if (!r.dir.empty()) out += (out.empty() ? "" : ", ") + r.dir.string();
  return out.empty() ? "(none)" : out;
}

}  // namespace

CellData make_cell_data(const data::Task& task, const data::EncodedTask& encoded, size_t shots, uint64_t seed,
                        const data::TokenCodec& codec, const data::PromptOptions& options) {
  CellData cell;
  cell.task = task.name;
  cell.label_set = task.label_set;
  const data::FewShotSplit split = data::make_fewshot_split(task, shots, seed);
  // task_index 0: the adapted model has exactly one routing row.
  for (size_t i = 0; i < split.train.size(); ++i)
    cell.train.push_back(data::encode_example(task, 0, split.train[i], static_cast<int32_t>(i), options, codec));
  if (!task.test_examples.empty()) {
    cell.test = encoded.test;
    for (const auto& e : cell.test)
      cell.references.push_back(task.test_examples.at(static_cast<size_t>(e.example_index)).outputs);
  } else {
    for (size_t i = 0; i < split.test.size(); ++i) {
      cell.test.push_back(data::encode_example(task, 0, split.test[i], static_cast<int32_t>(i), options, codec));
      cell.references.push_back(split.test[i].outputs);
    }
  }
  if (cell.test.empty()) fail_input("adapt.tasks: task '" + task.name + "' has no test examples to evaluate on");
  return cell;
}

eval::ResultRow run_cell(T5ForConditionalGenerationImpl& model, AttachedVariant& attached, const CellData& cell,
                         const Tokenizer& tokenizer, const Config& config, const CellOptions& options) {
  const auto t0 = std::chrono::steady_clock::now();
  eval::ResultRow row;
  row.task = cell.task;
  row.variant = attached.variant;
  row.seed = options.seed;
  row.trainable_params = attached.trainable_params;
  row.merged_params = attached.merged_params;

  if (!attached.groups.empty()) {
    data::BatchOptions batch_options;
    batch_options.batch_size = config.adapt.batch_size;
    batch_options.seed = static_cast<uint64_t>(options.seed);
    data::MultiTaskBatcher batcher({&cell.train}, batch_options, tokenizer.pad_id());

    LoopOptions loop_options;
    loop_options.steps = config.adapt.steps;
    loop_options.grad_accumulation = 1;
    loop_options.warmup_ratio = config.train.warmup_ratio;
    loop_options.max_grad_norm = config.train.max_grad_norm;
    loop_options.eval_every = 0;
    loop_options.save_every = config.train.save_every;
    loop_options.log_every = config.train.log_every;
    loop_options.out_dir = options.out_dir;
    loop_options.resume = options.resume;
    loop_options.label = cell.task + " " + attached.variant + " seed " + std::to_string(options.seed);

    model.train();
    auto step_fn = [&](int64_t, int64_t) {
      return seq2seq_train_step(model, batcher.next(), options.device, config.train.bf16, attached.consistency_weight);
    };
    ResumableState state{[&] { return nlohmann::json{{"batcher", batcher.state()}}; },
                         [&](const nlohmann::json& j) { batcher.restore(j.at("batcher").get<std::string>()); }};
    TrainLoop loop(loop_options, attached.groups);
    loop.run(step_fn, [](int64_t) { return nlohmann::json(); }, state);
    row.steps = config.adapt.steps;
    // The adapted adapter, loadable by `peft export` / load_adapter (AdaMix: merged, in its base kind's format).
    if (attached.has_adapter_set) adapters::save_adapter(options.out_dir / "adapter", model, attached.adapter_set);
  }

  const eval::EvalOptions evaluation = eval_options(config, options.device);
  const std::vector<int64_t> task_ids(cell.test.size(), 0);
  const auto generation =
      eval::evaluate_generation(model, tokenizer, cell.test, cell.references, task_ids, evaluation);
  row.metrics["rouge_l"] = generation.scores.rouge_l;
  row.metrics["exact_match"] = generation.scores.exact_match;
  if (!cell.label_set.empty() && config.eval.rank_classification)
    row.metrics["accuracy"] = eval::rank_classification_accuracy(model, tokenizer, cell.test, cell.references,
                                                                 task_ids, cell.label_set, evaluation);
  row.wall_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return row;
}

AdaptSummary run_adapt(const Config& config, bool resume) {
  const auto t0 = std::chrono::steady_clock::now();
  // Every problem a user can fix is reported before any work starts.
  std::vector<const VariantInfo*> variants;
  for (const auto& name : config.adapt.variants) variants.push_back(&find_variant(name));
  if (variants.empty()) fail_input("adapt.variants: must name at least one variant");
  if (config.adapt.seeds.empty()) fail_input("adapt.seeds: must list at least one seed");
  std::vector<Pretrained> runs = {open_pretrained(config.adapt.pretrained)};
  for (const auto& dir : config.adapt.more_pretrained) {
    if (dir.empty()) fail_input("adapt.more_pretrained: an empty folder name");
    runs.push_back(open_pretrained(dir));
  }
  for (const auto* v : variants) pretrained_for(*v, runs);  // throws when a variant has no run to adapt
  for (const auto& r : runs)
    if (r.has_inventory() && r.manifest.value("backbone", "") != config.model.path)
      spdlog::warn("adapt.pretrained: the inventory in {} was trained on backbone '{}', model.path is '{}'",
                   r.dir.string(), r.manifest.value("backbone", ""), config.model.path);

  const torch::Device device = setup_runtime(config);
  const auto tokenizer = load_tokenizer(tokenizer_dir(config));
  TaskData tasks = load_task_data(config, *tokenizer);

  // Held-out tasks, in adapt.tasks order when given.
  std::vector<size_t> selected;
  if (config.adapt.tasks.empty()) {
    selected = tasks.test_tasks;
  } else {
    for (const auto& name : config.adapt.tasks) {
      auto it = std::find_if(tasks.test_tasks.begin(), tasks.test_tasks.end(),
                             [&](size_t i) { return tasks.suite.tasks[i].name == name; });
      if (it == tasks.test_tasks.end()) {
        std::string held_out;
        for (size_t i : tasks.test_tasks) held_out += (held_out.empty() ? "" : ", ") + tasks.suite.tasks[i].name;
        fail_input("adapt.tasks: unknown held-out task '" + name + "' (held-out tasks in " + config.data.test_dir +
                   ": " + (held_out.empty() ? "none" : held_out) + ")");
      }
      selected.push_back(*it);
    }
  }
  if (selected.empty()) fail_input("data.test_dir: no held-out tasks in " + config.data.test_dir);

  const fs::path out = config.run.out;
  fs::create_directories(out);
  const fs::path results_path = out / "results.jsonl";
  std::set<CellKey> done;
  if (fs::exists(results_path))
    for (const auto& r : eval::read_results_jsonl(results_path)) done.insert({r.task, r.variant, r.seed});

  const auto codec = data::codec_from(*tokenizer);
  const auto prompt = prompt_options(config);
  const size_t n_cells = selected.size() * variants.size() * config.adapt.seeds.size();
  AdaptSummary summary;
  size_t cell_number = 0;
  for (size_t suite_index : selected) {
    const data::Task& task = tasks.suite.tasks[suite_index];
    for (int seed : config.adapt.seeds) {
      std::optional<CellData> cell;  // drawn once per task and seed, shared by the variants
      for (const auto* v : variants) {
        ++cell_number;
        if (done.count({task.name, v->name, seed})) {
          ++summary.cells_skipped;
          spdlog::info("[{}/{}] {} {} seed {}: already in {}, skipped", cell_number, n_cells, task.name, v->name, seed,
                       results_path.string());
          continue;
        }
        if (!cell)
          cell = make_cell_data(task, tasks.encoded[suite_index], static_cast<size_t>(config.adapt.shots),
                                static_cast<uint64_t>(seed), codec, prompt);
        auto model = load_frozen_t5(config, device);
        torch::manual_seed(static_cast<uint64_t>(seed));  // fresh adapters and routing rows depend on the seed
        AttachedVariant attached = attach_variant(*model, v->name, pretrained_for(*v, runs), config);
        model->to(device);
        CellOptions options;
        options.out_dir = out / "cells" / folder_name(task.name) / v->name / ("seed" + std::to_string(seed));
        options.resume = resume;
        options.seed = seed;
        options.device = device;
        spdlog::info("[{}/{}] {} {} seed {}: {} trainable parameters, {} training / {} test examples", cell_number,
                     n_cells, task.name, v->name, seed, attached.trainable_params, cell->train.size(),
                     cell->test.size());
        const eval::ResultRow row = run_cell(*model, attached, *cell, *tokenizer, config, options);
        eval::append_result_jsonl(results_path, row);
        done.insert({task.name, v->name, seed});
        ++summary.cells_run;
        std::ostringstream metrics;
        for (const auto& [k, val] : row.metrics) metrics << " " << k << " " << val;
        spdlog::info("[{}/{}] {} {} seed {}:{} ({:.1f} s)", cell_number, n_cells, task.name, v->name, seed,
                     metrics.str(), row.wall_seconds);
        // A full fine-tune's checkpoint is a whole backbone per cell: not kept once the row is written.
        if (v->family == VariantFamily::kFull) fs::remove_all(options.out_dir / "checkpoint");
      }
    }
  }

  summary.rows = eval::read_results_jsonl(results_path);
  // Tables list the variants in adapt.variants order (cells may have been appended in any order).
  auto rank = [&](const std::string& variant) {
    const auto& order = config.adapt.variants;
    return std::find(order.begin(), order.end(), variant) - order.begin();
  };
  std::stable_sort(summary.rows.begin(), summary.rows.end(),
                   [&](const eval::ResultRow& a, const eval::ResultRow& b) { return rank(a.variant) < rank(b.variant); });
  std::vector<std::string> metric_names = {"rouge_l", "exact_match"};
  for (const auto& r : summary.rows)
    if (r.metrics.count("accuracy")) {
      metric_names.push_back("accuracy");
      break;
    }
  write_file_atomic(out / "results.csv", eval::results_csv(summary.rows));
  std::ostringstream md;
  md << "# Few-shot adaptation\n\n"
     << "Pre-trained run" << (runs.size() > 1 ? "s: " : ": ") << pretrained_dirs(runs) << "; " << config.adapt.shots
     << " shots, " << config.adapt.steps << " steps, batch " << config.adapt.batch_size << ". Metrics: mean ± std over "
     << "seeds of the mean over tasks.\n\n"
     << eval::summary_markdown(summary.rows, metric_names);
  write_file_atomic(out / "summary.md", md.str());
  std::vector<std::string> names;
  std::vector<double> means, stds;
  for (const auto& s : eval::summarize(summary.rows, {"rouge_l"})) {
    const auto it = s.metrics.find("rouge_l");
    if (it == s.metrics.end() || it->second.n == 0) continue;
    names.push_back(s.variant);
    means.push_back(it->second.mean);
    stds.push_back(it->second.std);
  }
  if (!names.empty())
    eval::write_bar_chart_png(out / "results.png", names, means, stds, "Rouge-L",
                              "few-shot Rouge-L (mean over tasks, +-std over seeds)");
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("adapt: {} cells run, {} skipped; results in {}", summary.cells_run, summary.cells_skipped,
               results_path.string());
  return summary;
}

}  // namespace peft::train
