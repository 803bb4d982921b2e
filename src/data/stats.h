// Summary of a task suite for `peft data stats`.
#pragma once
#include <string>
#include <vector>

#include "data/cache.h"
#include "data/task.h"

namespace peft::data {

struct LengthSummary {
  size_t count = 0;
  size_t p50 = 0, p90 = 0, p99 = 0, max = 0;
};

// Nearest-rank percentiles (the smallest value with at least p% of the values at or below it).
LengthSummary summarize_lengths(std::vector<size_t> lengths);

// Plain-text report: one row per task (split, #train/pool, #test, label count, source and target token
// length p50/p90/p99/max over all of its encoded examples), then totals per split and mixture
// probabilities of the training tasks under `sampling`. `encoded` is encode_suite(suite, ...).
std::string mixture_stats(const TaskSuite& suite, const std::vector<EncodedTask>& encoded,
                          const std::string& sampling = "proportional", double temperature = 1.0);

}  // namespace peft::data
