// scripts/sweep.sh end to end with the real binary on the embedded tiny T5 and the built-in suite: cells in
// parallel, one aggregated table, a rerun that skips every done cell, and the Slurm-array entry points.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <string>

#include "common/files.h"
#include "eval/report.h"

namespace fs = std::filesystem;

namespace {

struct SweepRun {
  int code = -1;
  std::string out;
};

SweepRun sweep(const fs::path& dir, const std::string& args) {
  const fs::path log = dir / "sweep.log";
  const std::string cmd = "cd '" + std::string(PEFT_SOURCE_DIR) + "' && PEFT='" + PEFT_BINARY +
                          "' scripts/sweep.sh '" + (dir / "sweep.yaml").string() + "' " + args + " >'" +
                          log.string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, peft::read_file(log)};
}

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(Sweep, RunsCellsInParallelAggregatesSkipsDoneCellsAndServesSlurmArrays) {
  const fs::path dir = fs::temp_directory_path() / ("peft_sweep_test_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "sweep.yaml") << "model:\n  path: models/peft-tiny-t5\n"
                                       "data:\n  format: jsonl\n  train_dir: data/builtin\n  test_dir: data/builtin\n"
                                       "  num_positive_examples: 0\n  cache_dir: ''\n"
                                       "adapter:\n  r: 2\n"
                                       "adapt:\n  variants: [zero-shot, lora]\n  seeds: [13, 42]\n"
                                       "  tasks: [sort_uppercase, add_parity]\n  shots: 4\n  steps: 2\n  batch_size: 2\n"
                                       "eval:\n  max_new_tokens: 2\n  batch_size: 100\n"
                                       "run:\n  out: " + (dir / "out").string() + "\n  threads: 1\n";
  // 2 tasks x 2 variants x 2 seeds.
  SweepRun r = sweep(dir, "--count");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, "8\n");

  r = sweep(dir, "-j 2");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(count(r.out, "[sweep] running:"), 8) << r.out;
  const auto rows = peft::eval::read_results_jsonl(dir / "out" / "results.jsonl");
  ASSERT_EQ(rows.size(), 8u);
  for (const auto& row : rows) {
    EXPECT_TRUE(row.metrics.count("rouge_l")) << row.task;
    EXPECT_EQ(row.steps, row.variant == "lora" ? 2 : 0) << row.variant;
    EXPECT_EQ(row.trainable_params > 0, row.variant == "lora") << row.variant;
  }
  const std::string summary = peft::read_file(dir / "out" / "summary.md");
  EXPECT_TRUE(std::regex_search(summary, std::regex(R"(\| zero-shot \| [0-9.]+±[0-9.]+ \|)"))) << summary;
  EXPECT_TRUE(std::regex_search(summary, std::regex(R"(\| lora \| [0-9.]+±[0-9.]+ \|.* \| 2 \| 2 \|)"))) << summary;
  EXPECT_TRUE(fs::exists(dir / "out" / "results.csv"));
  EXPECT_GT(fs::file_size(dir / "out" / "results.png"), 1000u);

  // A rerun does nothing new.
  r = sweep(dir, "-j 2");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(count(r.out, "[sweep] done already:"), 8) << r.out;
  EXPECT_EQ(count(r.out, "[sweep] running:"), 0) << r.out;

  // Slurm form: one cell by index, then the aggregation alone; an index out of range is a usage error.
  fs::remove_all(dir / "out" / "cells" / "add_parity" / "lora" / "seed42");
  r = sweep(dir, "--cell 7");  // cells are task-major, then variant, then seed: the last is add_parity lora 42
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("[sweep] running: add_parity lora seed 42"), std::string::npos) << r.out;
  r = sweep(dir, "--aggregate");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(peft::eval::read_results_jsonl(dir / "out" / "results.jsonl").size(), 8u);
  r = sweep(dir, "--cell 8");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.out.find("--cell 8 out of 0..7"), std::string::npos) << r.out;
  fs::remove_all(dir);
}
