// Sweep results: one row per (task, variant, seed) run, stored as JSONL (the source of truth, appended by
// the trainer) and CSV (for spreadsheets), and summarised into the paper-style Markdown table.
// No LibTorch here.
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace peft::eval {

struct ResultRow {
  std::string task;
  std::string variant;
  int64_t seed = 0;
  std::map<std::string, double> metrics;  // e.g. {"rougeL": 45.2, "exact_match": 30.1}; NaN allowed
  // Parameters trained for THIS task (for a multi-task method, the writer attributes the shared
  // parameters to tasks as the paper reports them); the summary averages it over rows.
  int64_t trainable_params = 0;
  // AdaMix: parameters of the merged adapter that is evaluated and saved (trainable_params counts every
  // copy); 0 for variants that merge nothing.
  int64_t merged_params = 0;
  int64_t steps = 0;
  double wall_seconds = 0.0;
};

// ---- Serialisation ----
// One JSON object per line, keys in this order:
//   {"task":..,"variant":..,"seed":..,"metrics":{..},"trainable_params":..,["merged_params":..,]"steps":..,
//    "wall_seconds":..}   (merged_params only when nonzero)
// A NaN metric is written as null and read back as NaN.
std::string result_json_line(const ResultRow& row);  // no trailing newline
std::string results_jsonl(const std::vector<ResultRow>& rows);  // each line ends in '\n'
// Parses JSONL text; blank lines are skipped. A malformed line, a missing key or a wrong type is an
// InputError "<source>:<line>: ..." (one line).
std::vector<ResultRow> parse_results_jsonl(const std::string& text, const std::string& source);
std::vector<ResultRow> read_results_jsonl(const std::filesystem::path& path);
// Appends one row to a JSONL file (rewrites it atomically: readers never see a half line).
void append_result_jsonl(const std::filesystem::path& path, const ResultRow& row);

// CSV (RFC 4180 quoting): header task,variant,seed,trainable_params,merged_params,steps,wall_seconds,<metrics...>
// where the metric columns are the union of metric names, sorted; an absent metric is an empty cell.
// Doubles are written in shortest round-trip form, so parse_results_csv(results_csv(r)) == r.
std::string results_csv(const std::vector<ResultRow>& rows);
std::vector<ResultRow> parse_results_csv(const std::string& text, const std::string& source);
std::vector<ResultRow> read_results_csv(const std::filesystem::path& path);

// ---- Aggregation ----
struct MeanStd {
  double mean = 0.0;
  double std = 0.0;  // sample standard deviation (n - 1); 0 for a single seed
  int n = 0;         // number of seeds that contributed; 0 = no data (mean/std meaningless)
};
// mean and sample std of `values` (std = 0 when fewer than two values).
MeanStd mean_std(const std::vector<double>& values);

struct VariantSummary {
  std::string variant;
  std::map<std::string, MeanStd> metrics;  // over seeds of (mean over tasks) — the papers' protocol
  double trainable_params = 0.0;           // mean over the variant's rows
  double merged_params = 0.0;              // mean over the variant's rows (0: nothing merged)
  int n_tasks = 0;
  int n_seeds = 0;
};
// Per variant (first-seen order): for every seed, average each metric over the tasks that have it;
// then mean +- sample std of those per-seed averages over seeds (seeds visited in ascending order).
std::vector<VariantSummary> summarize(const std::vector<ResultRow>& rows, const std::vector<std::string>& metric_names);

struct TaskSummary {
  std::string task;
  std::string variant;
  std::map<std::string, MeanStd> metrics;  // over seeds
};
// Per (task, variant), tasks in first-seen order, then variants in first-seen order.
std::vector<TaskSummary> summarize_per_task(const std::vector<ResultRow>& rows,
                                            const std::vector<std::string>& metric_names);

// "45.3±1.2" with `decimals` digits ("45.3±0.0" for a single seed; "n/a" without data).
std::string format_mean_std(const MeanStd& m, int decimals = 1);

// Markdown: "## Summary" table (variants x metrics, mean±std over seeds of the task average, plus
// trainable params per task, #tasks, #seeds), then "## Per task" table (task, variant, metrics).
std::string summary_markdown(const std::vector<ResultRow>& rows, const std::vector<std::string>& metric_names,
                             int decimals = 1);

}  // namespace peft::eval
