// One function per subcommand. app.cpp parses the command line, loads and validates the config (YAML + --set +
// the dedicated flags), sets up logging (and, for pretrain/adapt/eval, the run folder: config.resolved.yaml +
// log.txt) and then calls exactly one of these. They return the process exit code (0 on success) and throw
// peft::InputError for anything the user can fix.
#pragma once
#include <ostream>
#include <string>
#include <vector>

#include "config/config.h"

namespace peft::cli {

// What the command line said beyond the config itself.
struct RunOptions {
  std::string config_path;             // the CONFIG argument ("" when the command has none, e.g. bench)
  std::vector<std::string> overrides;  // "key=value" applied after the file, in order: every --set, then the
                                       // dedicated flags (--out, --device, --seed, --threads, --log-level,
                                       // adapt's --variant/--tasks/--shots/--seeds)
  bool resume = false;                 // pretrain/adapt --resume: continue from the last checkpoint in run.out
};

// `peft bench`: times forward+backward (and the optimizer step) of each method on random token batches.
struct BenchOptions {
  std::vector<std::string> methods;  // adapter kinds and/or poly, mhr, adamix; empty = every method
  int batch = 8;                     // examples per step
  int src_len = 128;                 // encoder tokens per example
  int tgt_len = 32;                  // decoder tokens per example
  int tasks = 4;                     // distinct tasks per Poly/MHR batch
  int steps = 20;                    // timed steps per method
  int warmup = 5;                    // untimed steps first
  int gen_rounds = 0;                // timed generations per method (0 = min(steps, 5))
  std::string json;                  // also write the results here as JSON ("" = no file)
};

// `peft export ADAPTER_DIR --merge --out DIR`.
struct ExportOptions {
  std::string adapter_dir;  // a saved adapter (adapter_config.json + adapter_model.safetensors)
  bool merge = false;       // fold the adapter into the backbone weights and write a plain HF checkpoint
  std::string out;          // output directory
};

// Multi-task pre-training of the adapter (and router) on data.train_tasks.
int cmd_pretrain(const Config& config, const RunOptions& options);
// Few-shot adaptation to each held-out task, for every adapt.variants x adapt.seeds.
int cmd_adapt(const Config& config, const RunOptions& options);
// Scores the pretrain run folder eval.checkpoint ("" = run.out) on the held-out examples of its training tasks.
int cmd_eval(const Config& config, const RunOptions& options);
// Throughput/memory benchmark; the model is model.path (bench --model sets it).
int cmd_bench(const Config& config, const BenchOptions& options);
// Export / merge a saved adapter.
int cmd_export(const ExportOptions& options);
// Per-task example counts and token-length percentiles of the configured data.
int cmd_data_stats(const Config& config, const RunOptions& options);

// Real: print the fully resolved config as YAML (every key) to `out`.
int cmd_config(const Config& config, std::ostream& out);
// Real: print configs/reference.yaml (every key, default, help) to `out`.
int cmd_config_reference(std::ostream& out);
// Real: describe a safetensors file, or a directory holding config.json / adapter_config.json /
// *.safetensors: configs, tensor names, dtypes, shapes, parameter counts.
int cmd_inspect(const std::string& path, std::ostream& out);

}  // namespace peft::cli
