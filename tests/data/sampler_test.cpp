// Mixture sampling: proportions, determinism, exact resume; the multi-task batch stream.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "common/error.h"
#include "data/batch.h"
#include "data/random.h"
#include "data/sampler.h"

using namespace peft::data;

TEST(Random, BuiltOnTheStandardFixedMt19937_64) {
  // The standard fixes mt19937_64's sequence: its 10000th output from the default seed is 9981545732273789042.
  CountingRng rng(5489u);
  for (int i = 0; i < 9999; ++i) rng.next();
  EXPECT_EQ(rng.next(), 9981545732273789042ULL);
  EXPECT_EQ(rng.draws(), 10000u);
  CountingRng a(5489u);
  EXPECT_EQ(uniform01(a), static_cast<double>(14514284786278117030ULL >> 11) / 9007199254740992.0);
  // restore(seed, draws) lands on the same position.
  CountingRng b(1);
  b.restore(5489u, 9999);
  EXPECT_EQ(b.next(), 9981545732273789042ULL);
  // uniform_below covers [0, n) evenly.
  CountingRng c(3);
  std::vector<int> hist(7, 0);
  for (int i = 0; i < 70000; ++i) ++hist[uniform_below(c, 7)];
  for (int h : hist) EXPECT_NEAR(h, 10000, 400);
}

namespace {
// Pearson chi-square of observed counts against expected probabilities.
double chi_square(const std::vector<int>& counts, const std::vector<double>& p) {
  double n = 0, chi = 0;
  for (int c : counts) n += c;
  for (size_t i = 0; i < counts.size(); ++i) chi += std::pow(counts[i] - n * p[i], 2) / (n * p[i]);
  return chi;
}
std::vector<int> draw_counts(MixtureSampler& s, size_t k, int n) {
  std::vector<int> c(k, 0);
  for (int i = 0; i < n; ++i) ++c[s.next_task()];
  return c;
}
}  // namespace

TEST(Mixture, Probabilities) {
  const std::vector<size_t> sizes = {100, 300, 600, 0};
  auto p = mixture_probabilities(sizes, Sampling::kProportional);
  EXPECT_DOUBLE_EQ(p[0], 0.1);
  EXPECT_DOUBLE_EQ(p[1], 0.3);
  EXPECT_DOUBLE_EQ(p[2], 0.6);
  EXPECT_EQ(p[3], 0.0);
  p = mixture_probabilities(sizes, Sampling::kUniform);
  EXPECT_DOUBLE_EQ(p[0], 1.0 / 3);
  EXPECT_EQ(p[3], 0.0);  // an empty task is never drawn
  p = mixture_probabilities(sizes, Sampling::kTemperature, 2.0);
  const double z = std::sqrt(100.0) + std::sqrt(300.0) + std::sqrt(600.0);
  EXPECT_NEAR(p[0], 10.0 / z, 1e-12);
  EXPECT_NEAR(p[2], std::sqrt(600.0) / z, 1e-12);
  // T = 1 is proportional.
  EXPECT_NEAR(mixture_probabilities(sizes, Sampling::kTemperature, 1.0)[1], 0.3, 1e-12);
  EXPECT_THROW(parse_sampling("zipf"), peft::InputError);
  EXPECT_THROW(mixture_probabilities({0, 0}, Sampling::kUniform), peft::InputError);
}

TEST(Mixture, DrawsFollowTheProportions) {
  // 20000 draws; chi-square with 2 degrees of freedom stays below 13.8 (p = 0.001) for a correct sampler.
  const std::vector<size_t> sizes = {100, 300, 600};
  for (auto [sampling, t] : {std::pair{Sampling::kProportional, 1.0}, std::pair{Sampling::kUniform, 1.0},
                            std::pair{Sampling::kTemperature, 3.0}}) {
    MixtureSampler s(sizes, sampling, t, 11);
    const auto counts = draw_counts(s, 3, 20000);
    EXPECT_LT(chi_square(counts, s.probabilities()), 13.8) << counts[0] << " " << counts[1] << " " << counts[2];
  }
  // And a wrong hypothesis is rejected: proportional draws do not look uniform.
  MixtureSampler s(sizes, Sampling::kProportional, 1.0, 11);
  EXPECT_GT(chi_square(draw_counts(s, 3, 20000), {1.0 / 3, 1.0 / 3, 1.0 / 3}), 1000.0);
}

TEST(Mixture, DeterministicAndResumable) {
  const std::vector<size_t> sizes = {5, 50, 500, 7};
  MixtureSampler a(sizes, Sampling::kTemperature, 2.0, 42), b(sizes, Sampling::kTemperature, 2.0, 42),
      c(sizes, Sampling::kTemperature, 2.0, 43);
  std::vector<size_t> sa, sb, sc;
  for (int i = 0; i < 1000; ++i) {
    sa.push_back(a.next_task());
    sb.push_back(b.next_task());
    sc.push_back(c.next_task());
  }
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  const std::string state = a.state();
  EXPECT_EQ(state.rfind("mixture-v1 42 1000 ", 0), 0u) << state;
  std::vector<size_t> rest_a, rest_d;
  for (int i = 0; i < 500; ++i) rest_a.push_back(a.next_task());
  MixtureSampler d(sizes, Sampling::kTemperature, 2.0, 999);  // another seed: restore overrides it
  d.restore(state);
  EXPECT_EQ(d.steps(), 1000u);
  for (int i = 0; i < 500; ++i) rest_d.push_back(d.next_task());
  EXPECT_EQ(rest_a, rest_d);
  try {
    d.restore("garbage");
    FAIL();
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()), "sampler state 'garbage': malformed (expected 'mixture-v1 <seed> <steps> <draws>')");
  }
}

namespace {
Encoded enc(int32_t task, int32_t idx, std::vector<int64_t> src, std::vector<int64_t> tgt) {
  return Encoded{task, idx, std::move(src), std::move(tgt)};
}
std::vector<Encoded> make_task(int32_t task, int n) {
  std::vector<Encoded> v;
  for (int i = 0; i < n; ++i)
    v.push_back(enc(task, i, std::vector<int64_t>(1 + (i % 4), 100 + task), std::vector<int64_t>(1 + (i % 3), 7)));
  return v;
}
}  // namespace

TEST(Batch, PadsToTheLongestRow) {
  const Encoded a = enc(2, 0, {5, 6, 1}, {8, 1});
  const Encoded b = enc(4, 3, {7, 1}, {9, 10, 11, 1});
  const Batch batch = collate({&a, &b}, 0);
  EXPECT_EQ(batch.batch_size, 2);
  EXPECT_EQ(batch.source_length, 3);
  EXPECT_EQ(batch.target_length, 4);
  EXPECT_EQ(batch.task_ids, (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(batch.example_indices, (std::vector<int32_t>{0, 3}));
  EXPECT_EQ(batch.input_ids, (std::vector<int64_t>{5, 6, 1, 7, 1, 0}));
  EXPECT_EQ(batch.attention_mask, (std::vector<int64_t>{1, 1, 1, 1, 1, 0}));
  EXPECT_EQ(batch.labels, (std::vector<int64_t>{8, 1, -100, -100, 9, 10, 11, 1}));
  const auto seq = sequential_batches(make_task(0, 10), 4, 0);
  ASSERT_EQ(seq.size(), 3u);
  EXPECT_EQ(seq[2].batch_size, 2);
  EXPECT_EQ(seq[2].example_indices, (std::vector<int32_t>{8, 9}));
}

TEST(Batch, MultiTaskStreamGroupsCoversAndResumes) {
  const auto t0 = make_task(0, 10), t1 = make_task(1, 40), t2 = make_task(2, 25);
  BatchOptions o;
  o.batch_size = 5;
  o.seed = 7;
  o.tasks_per_batch = 1;  // one task per batch
  MultiTaskBatcher one({&t0, &t1, &t2}, o, 0);
  std::map<int64_t, std::vector<int32_t>> seen;
  for (int i = 0; i < 30; ++i) {
    const Batch b = one.next();
    EXPECT_EQ(std::set<int64_t>(b.task_ids.begin(), b.task_ids.end()).size(), 1u);
    for (size_t r = 0; r < 5; ++r) seen[b.task_ids[r]].push_back(b.example_indices[r]);
  }
  // Each task's stream is a permutation per epoch: its first n draws are the n examples, once each.
  for (auto& [task, idx] : seen) {
    const size_t n = task == 0 ? 10 : task == 1 ? 40 : 25;
    if (idx.size() < n) continue;
    std::set<int32_t> first(idx.begin(), idx.begin() + static_cast<long>(n));
    EXPECT_EQ(first.size(), n) << "task " << task;
  }
  o.tasks_per_batch = 2;
  MultiTaskBatcher two({&t0, &t1, &t2}, o, 0);
  for (int i = 0; i < 20; ++i) {
    const Batch b = two.next();
    EXPECT_TRUE(std::is_sorted(b.task_ids.begin(), b.task_ids.end()));
    EXPECT_LE(std::set<int64_t>(b.task_ids.begin(), b.task_ids.end()).size(), 2u);
  }
  o.tasks_per_batch = 0;  // rows drawn independently, sorted by task
  o.sampling = Sampling::kUniform;
  MultiTaskBatcher a({&t0, &t1, &t2}, o, 0), b({&t0, &t1, &t2}, o, 0);
  for (int i = 0; i < 13; ++i) {
    const Batch x = a.next(), y = b.next();
    EXPECT_TRUE(std::is_sorted(x.task_ids.begin(), x.task_ids.end()));
    EXPECT_EQ(x.input_ids, y.input_ids);  // same seed, same stream
  }
  const std::string state = a.state();
  std::vector<Batch> after;
  for (int i = 0; i < 9; ++i) after.push_back(a.next());
  BatchOptions other = o;
  other.seed = 99;  // restore() takes the seed from the state
  MultiTaskBatcher c({&t0, &t1, &t2}, other, 0);
  c.restore(state);
  for (int i = 0; i < 9; ++i) {
    const Batch x = c.next();
    EXPECT_EQ(x.task_ids, after[i].task_ids);
    EXPECT_EQ(x.example_indices, after[i].example_indices);
    EXPECT_EQ(x.input_ids, after[i].input_ids);
    EXPECT_EQ(x.labels, after[i].labels);
  }
  MultiTaskBatcher wrong({&t0, &t1}, o, 0);
  EXPECT_THROW(wrong.restore(state), peft::InputError);
}
