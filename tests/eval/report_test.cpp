#include "eval/report.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/files.h"

namespace fs = std::filesystem;
using namespace peft::eval;

namespace {

ResultRow row(const std::string& task, const std::string& variant, int64_t seed, double rouge, double em,
              int64_t params = 1000) {
  ResultRow r;
  r.task = task;
  r.variant = variant;
  r.seed = seed;
  r.metrics = {{"rougeL", rouge}, {"exact_match", em}};
  r.trainable_params = params;
  r.steps = 500;
  r.wall_seconds = 12.25;
  return r;
}

// Two variants x two tasks x seeds; "poly" has three seeds, "lora" one.
std::vector<ResultRow> sample_rows() {
  return {
      row("task_a", "poly", 0, 40.0, 10.0, 2048), row("task_b", "poly", 0, 50.0, 20.0, 2048),
      row("task_a", "poly", 1, 44.0, 12.0, 2048), row("task_b", "poly", 1, 52.0, 22.0, 2048),
      row("task_a", "poly", 2, 39.0, 11.0, 2048), row("task_b", "poly", 2, 47.0, 15.0, 2048),
      row("task_a", "lora", 0, 30.0, 5.0, 1234567), row("task_b", "lora", 0, 35.5, 7.0, 1234567),
  };
}

void expect_rows_equal(const std::vector<ResultRow>& a, const std::vector<ResultRow>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].task, b[i].task);
    EXPECT_EQ(a[i].variant, b[i].variant);
    EXPECT_EQ(a[i].seed, b[i].seed);
    EXPECT_EQ(a[i].trainable_params, b[i].trainable_params);
    EXPECT_EQ(a[i].merged_params, b[i].merged_params);
    EXPECT_EQ(a[i].steps, b[i].steps);
    EXPECT_EQ(a[i].wall_seconds, b[i].wall_seconds);  // exact: shortest round-trip formatting
    ASSERT_EQ(a[i].metrics.size(), b[i].metrics.size()) << i;
    for (const auto& [k, v] : a[i].metrics) {
      ASSERT_TRUE(b[i].metrics.count(k)) << k;
      if (std::isnan(v)) EXPECT_TRUE(std::isnan(b[i].metrics.at(k)));
      else EXPECT_EQ(v, b[i].metrics.at(k)) << k;
    }
  }
}

fs::path temp_dir(const std::string& name) {
  fs::path dir = fs::temp_directory_path() / ("peft_report_test_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST(Report, JsonlRoundTripAndFormat) {
  auto rows = sample_rows();
  rows[0].metrics["rougeL"] = 0.1 + 0.2;  // 0.30000000000000004 must survive
  rows[1].metrics["rougeL"] = std::numeric_limits<double>::quiet_NaN();
  rows[2].task = "task \"quoted\", with comma";
  EXPECT_EQ(result_json_line(row("t", "v", 3, 1.5, 2.0, 7)),
            R"({"task":"t","variant":"v","seed":3,"metrics":{"exact_match":2.0,"rougeL":1.5},)"
            R"("trainable_params":7,"steps":500,"wall_seconds":12.25})");
  ResultRow merged = row("t", "adamix", 3, 1.5, 2.0, 28);
  merged.merged_params = 7;  // written only when nonzero
  EXPECT_EQ(result_json_line(merged),
            R"({"task":"t","variant":"adamix","seed":3,"metrics":{"exact_match":2.0,"rougeL":1.5},)"
            R"("trainable_params":28,"merged_params":7,"steps":500,"wall_seconds":12.25})");
  rows[3].merged_params = 512;
  const std::string text = results_jsonl(rows);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 8);
  expect_rows_equal(rows, parse_results_jsonl(text, "mem.jsonl"));

  const fs::path dir = temp_dir("jsonl");
  const fs::path path = dir / "results.jsonl";
  peft::write_file_atomic(path, text);
  expect_rows_equal(rows, read_results_jsonl(path));
  // append_result_jsonl adds one line.
  append_result_jsonl(path, row("task_c", "mhr", 0, 1.0, 2.0));
  const auto appended = read_results_jsonl(path);
  ASSERT_EQ(appended.size(), 9u);
  EXPECT_EQ(appended.back().task, "task_c");
  fs::remove_all(dir);
}

TEST(Report, MalformedJsonlLinesNameFileAndLine) {
  const std::string good = result_json_line(row("t", "v", 0, 1, 2));
  auto error_of = [](const std::string& text) {
    try {
      parse_results_jsonl(text, "runs/results.jsonl");
    } catch (const peft::InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  // Blank line 2 is skipped, but still counted: the broken line is line 3.
  std::string msg = error_of(good + "\n\n{\"task\": \"t\", oops}\n" + good + "\n");
  EXPECT_EQ(msg.rfind("runs/results.jsonl:3: malformed JSON (", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_EQ(error_of(good + "\n" + R"({"task":"t","variant":"v","metrics":{},"trainable_params":1,)"
                                   R"("steps":1,"wall_seconds":1})" "\n"),
            "runs/results.jsonl:2: missing key 'seed'");
  EXPECT_EQ(error_of(R"({"task":"t","variant":"v","seed":"x","metrics":{},"trainable_params":1,"steps":1,)"
                     R"("wall_seconds":1})"),
            "runs/results.jsonl:1: key 'seed' must be an integer, got \"x\"");
  EXPECT_EQ(error_of(R"({"task":"t","variant":"v","seed":1,"metrics":{"em":"high"},"trainable_params":1,)"
                     R"("steps":1,"wall_seconds":1})"),
            "runs/results.jsonl:1: metric 'em' must be a number, got \"high\"");
  EXPECT_EQ(error_of("[1, 2]\n"), "runs/results.jsonl:1: expected a JSON object, got array");
  // Reading from disk names the path.
  const fs::path dir = temp_dir("bad");
  const fs::path path = dir / "r.jsonl";
  peft::write_file_atomic(path, good + "\nnot json\n");
  try {
    read_results_jsonl(path);
    FAIL() << "expected InputError";
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(path.string() + ":2: malformed JSON", 0), 0u) << e.what();
  }
  fs::remove_all(dir);
}

TEST(Report, CsvRoundTripQuotingAndMissingMetrics) {
  auto rows = sample_rows();
  rows[2].task = "task \"quoted\", with comma";
  rows[3].variant = "multi\nline";
  rows[4].metrics.erase("exact_match");     // absent metric -> empty cell
  rows[5].metrics["bleu"] = 1.0 / 3.0;      // extra metric column
  rows[6].wall_seconds = 0.1;
  const std::string csv = results_csv(rows);
  EXPECT_EQ(csv.substr(0, csv.find('\n')), "task,variant,seed,trainable_params,merged_params,steps,wall_seconds,bleu,exact_match,rougeL");
  EXPECT_NE(csv.find("\"task \"\"quoted\"\", with comma\",poly,1,2048,0,500,12.25,,12,44\n"), std::string::npos) << csv;
  EXPECT_NE(csv.find("task_a,lora,0,1234567,0,500,0.1,,5,30\n"), std::string::npos) << csv;
  expect_rows_equal(rows, parse_results_csv(csv, "mem.csv"));

  try {
    parse_results_csv("task,variant,seed,trainable_params,merged_params,steps,wall_seconds,em\nt,v,zero,1,0,1,1,1\n", "r.csv");
    FAIL();
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()), "r.csv:2: column 'seed': not an integer 'zero'");
  }
  try {
    parse_results_csv("task,variant,seed,trainable_params,merged_params,steps,wall_seconds\nt,v,1\n", "r.csv");
    FAIL();
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()), "r.csv:2: expected 7 fields, got 3");
  }
}

TEST(Report, MeanStdIsSampleStd) {
  // Hand computed: values 2, 4, 4, 4, 5, 5, 7, 9: mean 5, sum of squares 32, sample var 32/7.
  const MeanStd m = mean_std({2, 4, 4, 4, 5, 5, 7, 9});
  EXPECT_DOUBLE_EQ(m.mean, 5.0);
  EXPECT_DOUBLE_EQ(m.std, std::sqrt(32.0 / 7.0));
  EXPECT_EQ(m.n, 8);
  const MeanStd one = mean_std({3.25});
  EXPECT_DOUBLE_EQ(one.std, 0.0);
  EXPECT_EQ(format_mean_std(one), "3.2±0.0");  // printf rounds half to even on the binary value 3.25
  EXPECT_EQ(format_mean_std(MeanStd{}), "n/a");
  EXPECT_EQ(format_mean_std(MeanStd{45.26, 1.04, 3}, 2), "45.26±1.04");
}

TEST(Report, SummaryAveragesTasksPerSeedThenSeeds) {
  const auto rows = sample_rows();
  const auto summary = summarize(rows, {"rougeL", "exact_match"});
  ASSERT_EQ(summary.size(), 2u);
  EXPECT_EQ(summary[0].variant, "poly");  // first-seen order
  EXPECT_EQ(summary[1].variant, "lora");
  // poly rougeL: per-seed task means 45, 48, 43 -> mean 136/3, sample std sqrt(((-1/3)^2+(8/3)^2+(-7/3)^2)/2)
  const MeanStd& pr = summary[0].metrics.at("rougeL");
  EXPECT_EQ(pr.n, 3);
  EXPECT_DOUBLE_EQ(pr.mean, 136.0 / 3.0);
  EXPECT_DOUBLE_EQ(pr.std, std::sqrt((1.0 / 9 + 64.0 / 9 + 49.0 / 9) / 2.0));  // sqrt(19/3) = 2.5166
  // poly exact_match: per-seed means 15, 17, 13 -> 15 +- 2.
  EXPECT_DOUBLE_EQ(summary[0].metrics.at("exact_match").mean, 15.0);
  EXPECT_DOUBLE_EQ(summary[0].metrics.at("exact_match").std, 2.0);
  EXPECT_EQ(summary[0].n_tasks, 2);
  EXPECT_EQ(summary[0].n_seeds, 3);
  EXPECT_DOUBLE_EQ(summary[0].trainable_params, 2048.0);
  // lora: one seed -> std 0.
  EXPECT_DOUBLE_EQ(summary[1].metrics.at("rougeL").mean, 32.75);
  EXPECT_DOUBLE_EQ(summary[1].metrics.at("rougeL").std, 0.0);

  const auto per_task = summarize_per_task(rows, {"rougeL"});
  ASSERT_EQ(per_task.size(), 4u);
  EXPECT_EQ(per_task[0].task, "task_a");
  EXPECT_EQ(per_task[0].variant, "poly");
  EXPECT_DOUBLE_EQ(per_task[0].metrics.at("rougeL").mean, 41.0);  // 40, 44, 39
  EXPECT_DOUBLE_EQ(per_task[0].metrics.at("rougeL").std, std::sqrt((1.0 + 9.0 + 4.0) / 2.0));
  EXPECT_EQ(per_task[1].variant, "lora");
  EXPECT_EQ(per_task[2].task, "task_b");

  const std::string md = summary_markdown(rows, {"rougeL", "exact_match"});
  EXPECT_NE(md.find("| Variant | rougeL | exact_match | Trainable params/task | Tasks | Seeds |"), std::string::npos)
      << md;
  EXPECT_NE(md.find("| poly | 45.3±2.5 | 15.0±2.0 | 2,048 | 2 | 3 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| lora | 32.8±0.0 | 6.0±0.0 | 1,234,567 | 2 | 1 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| task_a | poly | 41.0±2.6 | 11.0±1.0 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| task_b | lora | 35.5±0.0 | 7.0±0.0 |"), std::string::npos) << md;
  EXPECT_LT(md.find("## Summary"), md.find("## Per task"));
  // AdaMix rows show the merged adapter's size beside the trained one.
  auto with_merged = rows;
  for (auto& r : with_merged)
    if (r.variant == "lora") r.merged_params = 1000;
  EXPECT_NE(summary_markdown(with_merged, {"rougeL"}).find("| lora | 32.8±0.0 | 1,234,567 (merged 1,000) | 2 | 1 |"),
            std::string::npos)
      << summary_markdown(with_merged, {"rougeL"});
  // A metric nobody reported shows as n/a rather than 0.
  EXPECT_NE(summary_markdown(rows, {"bleu"}).find("| poly | n/a | 2,048 | 2 | 3 |"), std::string::npos);
}
