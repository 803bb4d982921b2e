// Encoding cache round trip, few-shot splits, stats.
#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "common/files.h"
#include "data/cache.h"
#include "data/fewshot.h"
#include "data/stats.h"
#include "data_test_util.h"

namespace fs = std::filesystem;
using namespace peft::data;
using peft::data::testing::TempDir;

namespace {
TaskSuite small_suite() {
  TaskSuite s;
  s.root = "mem";
  for (int t = 0; t < 3; ++t) {
    Task task;
    task.name = "task" + std::to_string(t);
    task.split = t < 2 ? "train" : "test";
    task.definition = "Do thing number " + std::to_string(t);
    task.positive_examples = {{"a b", "c", ""}};
    for (int i = 0; i < 5 + t; ++i)
      task.examples.push_back({task.name + "-" + std::to_string(i), task.name, task.definition,
                               std::string(static_cast<size_t>(i + 1), 'x') + " y", {"out " + std::to_string(i)}});
    if (t == 2) task.test_examples.push_back({"task2-t0", task.name, task.definition, "zz top", {"o"}});
    task.content_sha256 = peft::sha256_hex(task.name);
    s.tasks.push_back(task);
  }
  return s;
}
bool same(const std::vector<EncodedTask>& a, const std::vector<EncodedTask>& b) {
  if (a.size() != b.size()) return false;
  for (size_t t = 0; t < a.size(); ++t)
    for (const auto* pair : {&a[t].train, &a[t].test}) {
      const auto& other = pair == &a[t].train ? b[t].train : b[t].test;
      if (pair->size() != other.size()) return false;
      for (size_t i = 0; i < other.size(); ++i) {
        const Encoded &x = (*pair)[i], &y = other[i];
        if (x.task_index != y.task_index || x.example_index != y.example_index || x.source_ids != y.source_ids ||
            x.target_ids != y.target_ids)
          return false;
      }
    }
  return true;
}
}  // namespace

TEST(Cache, SerializeRoundTripAndRejects) {
  EncodedTask t;
  t.train.push_back({4, 0, {5, -7, 1LL << 40, 1}, {9, 1}});
  t.train.push_back({4, 1, {}, {1}});
  t.test.push_back({4, 0, {3, 1}, {}});
  const std::string key = peft::sha256_hex("k");
  const std::string bytes = serialize_encoded(t, key);
  EXPECT_EQ(bytes.substr(0, 7), "PEFTENC");
  EncodedTask back;
  ASSERT_TRUE(deserialize_encoded(bytes, key, 4, &back));
  EXPECT_TRUE(same({t}, {back}));
  EXPECT_FALSE(deserialize_encoded(bytes, peft::sha256_hex("other"), 4, &back));  // other key
  std::string newer = bytes;
  newer[8] = static_cast<char>(kEncodedFormatVersion + 1);  // format version field
  EXPECT_FALSE(deserialize_encoded(newer, key, 4, &back));
  EXPECT_FALSE(deserialize_encoded(bytes.substr(0, bytes.size() - 3), key, 4, &back));  // truncated
  EXPECT_FALSE(deserialize_encoded(bytes + "x", key, 4, &back));                       // trailing bytes
}

TEST(Cache, SecondRunReadsTheCache) {
  TempDir dir;
  const TaskSuite suite = small_suite();
  const TokenCodec codec = peft::data::testing::word_codec();
  PromptOptions o;
  CacheStats first, second, third;
  const auto a = encode_suite(suite, codec, o, dir.path(), &first);
  EXPECT_EQ(first.misses, 3u);
  EXPECT_EQ(first.hits, 0u);
  const auto b = encode_suite(suite, codec, o, dir.path(), &second);
  EXPECT_EQ(second.hits, 3u);
  EXPECT_EQ(second.misses, 0u);
  EXPECT_TRUE(same(a, b));
  EXPECT_TRUE(same(a, encode_suite(suite, codec, o)));  // no cache: same ids
  EXPECT_EQ(a[2].test.size(), 1u);
  EXPECT_EQ(a[1].train[0].task_index, 1);
  // Other formatting options, another tokenizer or changed task content: another key, a new file.
  o.num_pos_examples = 0;
  encode_suite(suite, codec, o, dir.path(), &third);
  EXPECT_EQ(third.misses, 3u);
  TokenCodec other = codec;
  other.fingerprint = "another";
  EXPECT_NE(cache_key(suite.tasks[0], codec, o), cache_key(suite.tasks[0], other, o));
  TaskSuite edited = suite;
  edited.tasks[0].content_sha256 = peft::sha256_hex("edited");
  EXPECT_NE(cache_key(suite.tasks[0], codec, o), cache_key(edited.tasks[0], codec, o));
  // A corrupt cache file is rebuilt, not trusted.
  const fs::path p = cache_path(dir.path(), suite.tasks[0], cache_key(suite.tasks[0], codec, o));
  ASSERT_TRUE(fs::exists(p));
  peft::write_file_atomic(p, "PEFTENC\0garbage");
  CacheStats fourth;
  const auto c = encode_suite(suite, codec, o, dir.path(), &fourth);
  EXPECT_EQ(fourth.misses, 1u);
  EXPECT_EQ(fourth.hits, 2u);
  EXPECT_TRUE(same(c, encode_suite(suite, codec, o)));
  size_t n_tmp = 0;
  for (const auto& f : fs::directory_iterator(dir.path())) n_tmp += f.path().string().find(".tmp.") != std::string::npos;
  EXPECT_EQ(n_tmp, 0u);
}

namespace {
Task label_task(size_t n_test_overlap) {
  Task t;
  t.name = "held_out";
  t.split = "test";
  const char* labels[] = {"red", "green", "blue"};
  for (int i = 0; i < 60; ++i)
    t.examples.push_back({"p" + std::to_string(i), t.name, "", "input " + std::to_string(i), {labels[i % 3]}});
  for (int i = 0; i < 30; ++i) {
    // The first n_test_overlap test inputs repeat pool inputs: those pool examples must never be drawn.
    const std::string input = i < static_cast<int>(n_test_overlap) ? "input " + std::to_string(i) : "test " + std::to_string(i);
    t.test_examples.push_back({"t" + std::to_string(i), t.name, "", input, {labels[i % 3]}});
  }
  t.label_set = compute_label_set(t);
  return t;
}
}  // namespace

TEST(FewShot, SeededStratifiedAndDisjoint) {
  const Task t = label_task(9);
  ASSERT_EQ(t.label_set.size(), 3u);
  for (uint64_t seed : {1u, 2u, 3u}) {
    const FewShotSplit s = make_fewshot_split(t, 6, seed);
    ASSERT_EQ(s.train.size(), 6u);
    EXPECT_EQ(s.test.size(), 30u);
    std::map<std::string, int> per_label;
    std::set<std::string> test_ids, test_inputs;
    for (const auto& e : s.test) {
      test_ids.insert(e.id);
      test_inputs.insert(e.input);
    }
    for (const auto& e : s.train) {
      ++per_label[e.outputs[0]];
      EXPECT_EQ(test_ids.count(e.id), 0u);
      EXPECT_EQ(test_inputs.count(e.input), 0u) << e.input;
    }
    EXPECT_EQ(per_label, (std::map<std::string, int>{{"blue", 2}, {"green", 2}, {"red", 2}}));
  }
  // k = 4 over 3 labels: every label once, one twice.
  std::map<std::string, int> per_label;
  for (const auto& e : make_fewshot_split(t, 4, 5).train) ++per_label[e.outputs[0]];
  EXPECT_EQ(per_label.size(), 3u);
  auto ids = [](const FewShotSplit& s) {
    std::vector<std::string> v;
    for (const auto& e : s.train) v.push_back(e.id);
    return v;
  };
  EXPECT_EQ(ids(make_fewshot_split(t, 6, 1)), ids(make_fewshot_split(t, 6, 1)));
  EXPECT_NE(ids(make_fewshot_split(t, 6, 1)), ids(make_fewshot_split(t, 6, 2)));
  try {
    make_fewshot_split(t, 52, 1);  // 60 in the pool, 9 of them share an input with the test set
    FAIL();
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "task 'held_out': 52-shot split asked, but only 51 examples are available apart from the test set");
  }
  EXPECT_EQ(make_fewshot_split(t, 51, 1).train.size(), 51u);
}

TEST(FewShot, WithoutTestSetThePoolIsSplit) {
  Task t = label_task(0);
  t.test_examples.clear();
  t.examples[7].input = t.examples[3].input;  // a duplicate input, as BBH has
  t.label_set = compute_label_set(t);
  const FewShotSplit s = make_fewshot_split(t, 16, 9);
  ASSERT_EQ(s.train.size(), 16u);
  std::set<std::string> train_inputs;
  for (const auto& e : s.train) train_inputs.insert(e.input);
  for (const auto& e : s.test) EXPECT_EQ(train_inputs.count(e.input), 0u);
  const bool dup_taken = train_inputs.count(t.examples[3].input) > 0;
  EXPECT_EQ(s.test.size(), 60u - 16u - (dup_taken ? 1u : 0u) + 0u * dup_taken);
  // Free-form task: plain seeded sample.
  Task f = t;
  for (size_t i = 0; i < f.examples.size(); ++i) f.examples[i].outputs = {"o" + std::to_string(i)};
  f.label_set = compute_label_set(f);
  EXPECT_TRUE(f.label_set.empty());
  EXPECT_EQ(make_fewshot_split(f, 10, 9).train.size(), 10u);
}

TEST(Stats, PercentilesAndReport) {
  std::vector<size_t> v;
  for (size_t i = 1; i <= 100; ++i) v.push_back(101 - i);
  const LengthSummary s = summarize_lengths(v);
  EXPECT_EQ(s.count, 100u);
  EXPECT_EQ(s.p50, 50u);
  EXPECT_EQ(s.p90, 90u);
  EXPECT_EQ(s.p99, 99u);
  EXPECT_EQ(s.max, 100u);
  EXPECT_EQ(summarize_lengths({7}).p50, 7u);

  const TaskSuite suite = small_suite();
  PromptOptions o;
  o.prompt_template = PromptTemplate::kInputOnly;
  const auto enc = encode_suite(suite, peft::data::testing::word_codec(), o);
  const std::string report = mixture_stats(suite, enc, "uniform");
  // Input-only with the word codec: every source is 2 words + EOS = 3 tokens; targets 2 words + EOS.
  EXPECT_NE(report.find("task0 train      5      0      0  0.5000 |     3     3     3     3 |     3     3     3     3"),
            std::string::npos) << report;
  EXPECT_NE(report.find("task2 test       7      1      0       - |"), std::string::npos) << report;
  EXPECT_NE(report.find("total train: 2 tasks, 11 train/pool examples, 0 test examples"), std::string::npos) << report;
  EXPECT_NE(report.find("total test: 1 tasks, 7 train/pool examples, 1 test examples"), std::string::npos) << report;
}
