// Config -> data options, task selection, caps and hold-outs.
#include <gtest/gtest.h>

#include <set>

#include "common/error.h"
#include "config/config.h"
#include "data/cache.h"
#include "data/options.h"
#include "data_test_util.h"

using namespace peft::data;

TEST(Options, FromTheDefaultConfig) {
  peft::Config c = peft::default_config();
  const PromptOptions p = prompt_options_from(c.data);
  EXPECT_EQ(p.prompt_template, PromptTemplate::kTkInstruct);
  EXPECT_EQ(p.max_source_length, c.data.max_source_length);
  EXPECT_EQ(p.max_target_length, c.data.max_target_length);
  EXPECT_EQ(p.num_pos_examples, c.data.num_positive_examples);
  EXPECT_EQ(p.add_task_definition, c.data.add_task_definition);
  c.data.sampling = "temperature";
  c.data.temperature = 3;
  c.train.group_by_task = true;
  c.train.batch_size = 6;
  c.run.seed = 5;
  const BatchOptions b = batch_options_from(c);
  EXPECT_EQ(b.sampling, Sampling::kTemperature);
  EXPECT_EQ(b.temperature, 3.0);
  EXPECT_EQ(b.tasks_per_batch, 1);
  EXPECT_EQ(b.batch_size, 6);
  EXPECT_EQ(b.seed, 5u);
}

namespace {
TaskSuite suite_of(int n_tasks, int n_examples) {
  TaskSuite s;
  s.root = "mem";
  for (int t = 0; t < n_tasks; ++t) {
    Task task;
    task.name = "t" + std::to_string(t);
    task.split = "train";
    for (int i = 0; i < n_examples; ++i)
      task.examples.push_back({task.name + "-" + std::to_string(i), task.name, "", "in " + std::to_string(i), {"o"}});
    s.tasks.push_back(task);
  }
  return s;
}
}  // namespace

TEST(Options, SelectCapAndHoldOut) {
  TaskSuite s = suite_of(3, 40);
  select_tasks(s, {"t2", "t0"}, "data.train_tasks");
  ASSERT_EQ(s.tasks.size(), 2u);
  EXPECT_EQ(s.tasks[0].name, "t2");
  try {
    select_tasks(s, {"t9"}, "data.train_tasks");
    FAIL();
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()), "data.train_tasks: unknown task 't9' (not in mem)");
  }
  Task t = s.tasks[0];
  const auto key_before = cache_key(t, peft::data::testing::word_codec(), PromptOptions{});
  hold_out_examples(t, 10, 1);
  EXPECT_EQ(t.examples.size(), 30u);
  EXPECT_EQ(t.test_examples.size(), 10u);
  std::set<std::string> ids;
  for (const auto& e : t.examples) ids.insert(e.id);
  for (const auto& e : t.test_examples) ids.insert(e.id);
  EXPECT_EQ(ids.size(), 40u);  // a partition
  EXPECT_NE(cache_key(t, peft::data::testing::word_codec(), PromptOptions{}), key_before);
  Task again = s.tasks[0];
  hold_out_examples(again, 10, 1);
  EXPECT_EQ(again.test_examples[3].id, t.test_examples[3].id);
  Task small = s.tasks[1];
  hold_out_examples(small, 100, 1);  // never more than half
  EXPECT_EQ(small.test_examples.size(), 20u);
  Task capped = s.tasks[1];
  cap_examples(capped, 15, 2);
  EXPECT_EQ(capped.examples.size(), 15u);
  EXPECT_TRUE(std::is_sorted(capped.examples.begin(), capped.examples.end(), [](const Example& a, const Example& b) {
    return std::stoi(a.id.substr(3)) < std::stoi(b.id.substr(3));
  }));
  try {
    load_suite("csv", PEFT_SOURCE_DIR);
    FAIL();
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()), "data.format: unknown value 'csv' (expected jsonl, superni or bbh)");
  }
}
