// `peft bench`: per method, times the training step (forward + backward + AdamW), the evaluation forward and
// greedy generation of a T5 backbone on random token batches (every method built first, then timed in
// rounds: one step of each method in turn), reads the peak resident memory, measures the
// machine's fp32 GEMM throughput in the same run and reports what fraction of it the training step achieves
// (FLOPs counted per matmul from the shapes, see count_step_flops). Output: a table on `out` and JSON.
//
//   BenchSettings s;  s.model = "t5-small-shape";  s.methods = {"lora", "poly"};
//   nlohmann::json r = run_bench(s, std::cout);   // also written to s.json when set
#pragma once
#include <nlohmann/json.hpp>

#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "models/bert/config.h"
#include "models/t5/config.h"

namespace peft::train {

// Mirrors cli::BenchOptions (methods, batch, src_len, tgt_len, steps, warmup, json) plus the model and device,
// so this module does not depend on src/cli.
struct BenchSettings {
  // "t5-small-shape" | "t5-base-shape" | "bert-base-shape" (random weights of that shape) or a Hugging Face
  // T5 or BERT checkpoint directory. BERT is timed as a sequence classifier (2 labels, src_len tokens, no
  // generation, no prefix tuning).
  std::string model = "t5-small-shape";
  std::optional<T5Config> t5_config;            // random weights of exactly this shape (tests); overrides `model`
  std::optional<bert::BertConfig> bert_config;  // the same for a BERT classifier
  // Training methods: full, lora, poly, mhr, ia3, adapter, prefix; evaluation-only: merged-lora, base.
  // Empty = all of them.
  std::vector<std::string> methods;
  int batch = 8;      // examples per step
  int src_len = 128;  // encoder tokens per example
  int tgt_len = 32;   // decoder tokens per example
  int steps = 20;     // timed steps per measurement
  int warmup = 5;     // untimed steps first
  int gen_tokens = 32;                       // new tokens per generation measurement
  std::vector<int> gen_scaling = {16, 128};  // new-token counts for the per-token-cost check (base model)
  int gen_rounds = 0;                         // timed generations (0 = min(steps, 5))
  int n_tasks = 4;                           // distinct tasks per Poly/MHR batch
  int threads = 0;                           // 0 = all cores
  std::string device = "cpu";                // cpu | cuda
  std::string json;                          // also write the result here ("" = no file)
  uint64_t seed = 0;
};

// Every method `run_bench` knows, in the order it runs them.
const std::vector<std::string>& bench_methods();

// FLOPs of one step, counted per matmul (2·M·K·N each; elementwise work is not counted).
struct StepFlops {
  double forward = 0;   // the forward pass (also the evaluation forward)
  double backward = 0;  // input gradients where the input needs them + weight gradients of trainable weights
  double total() const { return forward + backward; }
};
// `method` as in BenchSettings::methods; adapter hyper-parameters as run_bench uses them.
StepFlops count_step_flops(const T5Config& config, const std::string& method, int64_t batch, int64_t src_len,
                           int64_t tgt_len);

// The same for a BERT encoder + pooler + classifier over seq_len tokens (the classifier trains in every method).
StepFlops count_classifier_step_flops(const bert::BertConfig& config, const std::string& method, int64_t batch,
                                      int64_t seq_len);

// Measured fp32 throughput (FLOP/s) of an n x n x n matmul on `device`: median of `reps` after a warm-up.
double measure_gemm_flops(int64_t n, int reps, const std::string& device);

// Peak resident set size (VmHWM, bytes) of this process; reset_peak_rss() restarts it where the kernel
// allows (writes 5 to /proc/self/clear_refs) and returns whether it did.
int64_t peak_rss_bytes();
int64_t current_rss_bytes();  // VmRSS
bool reset_peak_rss();

// Runs the benchmark, prints the table and the target checks to `out`, returns the JSON (and writes it to
// settings.json when set). Unknown methods / model names are InputErrors.
nlohmann::json run_bench(const BenchSettings& settings, std::ostream& out);

}  // namespace peft::train
