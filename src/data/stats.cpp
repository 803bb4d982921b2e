#include "data/stats.h"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/error.h"
#include "data/sampler.h"

namespace peft::data {

LengthSummary summarize_lengths(std::vector<size_t> v) {
  LengthSummary s;
  s.count = v.size();
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  auto rank = [&](double p) {
    const auto r = static_cast<size_t>(std::ceil(p / 100.0 * static_cast<double>(v.size())));
    return v[std::min(v.size(), std::max<size_t>(r, 1)) - 1];
  };
  s.p50 = rank(50);
  s.p90 = rank(90);
  s.p99 = rank(99);
  s.max = v.back();
  return s;
}

namespace {
std::string fmt_lengths(const LengthSummary& s) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%5zu %5zu %5zu %5zu", s.p50, s.p90, s.p99, s.max);
  return buf;
}
void collect(const std::vector<Encoded>& list, std::vector<size_t>& src, std::vector<size_t>& tgt) {
  for (const auto& e : list) {
    src.push_back(e.source_ids.size());
    tgt.push_back(e.target_ids.size());
  }
}
}  // namespace

std::string mixture_stats(const TaskSuite& suite, const std::vector<EncodedTask>& encoded, const std::string& sampling,
                          double temperature) {
  if (encoded.size() != suite.tasks.size()) throw std::logic_error("mixture_stats: encoded does not match suite");
  size_t name_w = 4;
  for (const auto& t : suite.tasks) name_w = std::max(name_w, t.name.size());
  std::vector<size_t> train_sizes;
  for (const auto& t : suite.tasks)
    if (t.split == "train") train_sizes.push_back(t.examples.size());
  std::vector<double> probs;
  if (!train_sizes.empty()) probs = mixture_probabilities(train_sizes, parse_sampling(sampling), temperature);

  std::string out = "data: " + suite.root + "\n";
  char buf[512];
  std::snprintf(buf, sizeof(buf), "%-*s %-5s %6s %6s %6s %7s | %-23s | %-23s\n", static_cast<int>(name_w), "task",
                "split", "train", "test", "labels", "p(mix)", "source p50/p90/p99/max", "target p50/p90/p99/max");
  out += buf;
  std::vector<size_t> all_src[2], all_tgt[2];
  size_t n_tasks[2] = {0, 0}, n_train[2] = {0, 0}, n_test[2] = {0, 0};
  size_t train_i = 0;
  for (size_t i = 0; i < suite.tasks.size(); ++i) {
    const Task& t = suite.tasks[i];
    const int s = t.split == "train" ? 0 : 1;
    std::vector<size_t> src, tgt;
    collect(encoded[i].train, src, tgt);
    collect(encoded[i].test, src, tgt);
    all_src[s].insert(all_src[s].end(), src.begin(), src.end());
    all_tgt[s].insert(all_tgt[s].end(), tgt.begin(), tgt.end());
    ++n_tasks[s];
    n_train[s] += t.examples.size();
    n_test[s] += t.test_examples.size();
    std::string p = "-";
    if (s == 0) {
      std::snprintf(buf, sizeof(buf), "%.4f", probs[train_i++]);
      p = buf;
    }
    std::snprintf(buf, sizeof(buf), "%-*s %-5s %6zu %6zu %6zu %7s | %s | %s\n", static_cast<int>(name_w),
                  t.name.c_str(), t.split.c_str(), t.examples.size(), t.test_examples.size(), t.label_set.size(),
                  p.c_str(), fmt_lengths(summarize_lengths(src)).c_str(), fmt_lengths(summarize_lengths(tgt)).c_str());
    out += buf;
  }
  for (int s = 0; s < 2; ++s) {
    if (n_tasks[s] == 0) continue;
    std::snprintf(buf, sizeof(buf), "total %s: %zu tasks, %zu train/pool examples, %zu test examples | source %s | target %s\n",
                  s == 0 ? "train" : "test", n_tasks[s], n_train[s], n_test[s],
                  fmt_lengths(summarize_lengths(all_src[s])).c_str(), fmt_lengths(summarize_lengths(all_tgt[s])).c_str());
    out += buf;
  }
  if (!train_sizes.empty()) {
    std::snprintf(buf, sizeof(buf), " T=%g", temperature);
    out += "mixture: " + sampling + (sampling == "temperature" ? buf : "") + "\n";
  }
  return out;
}

}  // namespace peft::data
