// Prompt templates (Tk-Instruct's exact layout), truncation and encoding.
#include <gtest/gtest.h>

#include "common/error.h"
#include "data/cache.h"
#include "data/codec.h"
#include "data/prompt.h"
#include "data_test_util.h"

using namespace peft::data;

namespace {
Task fixed_task() {
  Task t;
  t.name = "task_reverse";
  t.split = "train";
  t.definition = "Reverse the word";
  t.positive_examples = {{"abc", "cba", "c, b and a backwards"}, {"hello.", "olleh", ""}};
  return t;
}
const Example kExample{"r-1", "task_reverse", "Reverse the word", " xyz ", {"zyx", "ZYX"}};
}  // namespace

TEST(Prompt, TkInstructTemplateOnFixedExample) {
  PromptOptions o;  // tk-instruct, definition, 2 positive examples
  EXPECT_EQ(format_source(fixed_task(), kExample, o),
            "Definition: Reverse the word.\n\n"
            " Positive Example 1 -\nInput: abc.\n Output: cba.\n\n"
            " Positive Example 2 -\nInput: hello.\n Output: olleh.\n\n"
            "Now complete the following example -\nInput: xyz.\nOutput: ");
  o.num_pos_examples = 0;
  EXPECT_EQ(format_source(fixed_task(), kExample, o),
            "Definition: Reverse the word.\n\nNow complete the following example -\nInput: xyz.\nOutput: ");
  o.num_pos_examples = 1;
  o.add_explanation = true;
  o.add_task_name = true;
  EXPECT_EQ(format_source(fixed_task(), kExample, o),
            "task_reverse. Definition: Reverse the word.\n\n"
            " Positive Example 1 -\nInput: abc.\n Output: cba.\n Explanation: c, b and a backwards.\n\n"
            "Now complete the following example -\nInput: xyz.\nOutput: ");
  o = PromptOptions{};
  o.add_task_definition = false;
  o.num_pos_examples = 5;  // more than the task has
  EXPECT_EQ(format_source(fixed_task(), kExample, o),
            " Positive Example 1 -\nInput: abc.\n Output: cba.\n\n"
            " Positive Example 2 -\nInput: hello.\n Output: olleh.\n\n"
            "Now complete the following example -\nInput: xyz.\nOutput: ");
}

TEST(Prompt, PositiveExamplesOnlyWhileThePromptFits) {
  // Word counts with the test codec: definition 4, each example 8, the input part 9, EOS 1. Like Tk-Instruct,
  // the fit check for example 2 measures definition + example 1 + example 2 + input = 30 tokens.
  const TokenCodec codec = peft::data::testing::word_codec();
  PromptOptions o;
  auto n_examples = [&](int max_len) {
    o.max_source_length = max_len;
    const std::string s = format_source(fixed_task(), kExample, o, &codec);
    return (s.find("Positive Example 1") != std::string::npos) + (s.find("Positive Example 2") != std::string::npos);
  };
  EXPECT_EQ(n_examples(21), 0);
  EXPECT_EQ(n_examples(22), 1);
  EXPECT_EQ(n_examples(29), 1);
  EXPECT_EQ(n_examples(30), 2);
}

TEST(Prompt, QAAndInputOnlyTemplates) {
  PromptOptions o;
  o.prompt_template = parse_prompt_template("qa");
  EXPECT_EQ(format_source(fixed_task(), kExample, o),
            "Reverse the word\n\nQ: abc\nA: cba\n\nQ: hello.\nA: olleh\n\nQ: xyz\nA:");
  o.prompt_template = parse_prompt_template("input-only");
  EXPECT_EQ(format_source(fixed_task(), kExample, o), " xyz ");
  EXPECT_EQ(prompt_template_name(parse_prompt_template("tk-instruct")), "tk-instruct");
  try {
    parse_prompt_template("alpaca");
    FAIL();
  } catch (const peft::InputError& e) {
    EXPECT_EQ(std::string(e.what()), "data.template: unknown template 'alpaca' (expected tk-instruct, qa or input-only)");
  }
}

TEST(Prompt, TruncationKeepsEos) {
  EXPECT_EQ(truncate_ids({5, 6, 7, 8, 1}, 3, 1), (std::vector<int64_t>{5, 6, 1}));
  EXPECT_EQ(truncate_ids({5, 6, 7, 8}, 3, 1), (std::vector<int64_t>{5, 6, 7}));  // no EOS to keep
  EXPECT_EQ(truncate_ids({5, 6, 1}, 3, 1), (std::vector<int64_t>{5, 6, 1}));
  EXPECT_EQ(truncate_ids({5, 6, 7, 1}, 2, -1), (std::vector<int64_t>{5, 6}));
}

TEST(Prompt, EncodeExampleUsesFirstReferenceAndLimits) {
  const TokenCodec codec = peft::data::testing::word_codec();
  PromptOptions o;
  o.num_pos_examples = 0;
  o.max_source_length = 6;
  o.max_target_length = 4;
  Example ex = kExample;
  ex.outputs = {"one two three four five", "x"};
  const Encoded e = encode_example(fixed_task(), 3, ex, 7, o, codec);
  EXPECT_EQ(e.task_index, 3);
  EXPECT_EQ(e.example_index, 7);
  // "Definition: Reverse the word. Now ..." -> word lengths 11, 7, 3, 5, 3 then EOS in the last slot.
  EXPECT_EQ(e.source_ids, (std::vector<int64_t>{21, 17, 13, 15, 13, 1}));
  EXPECT_EQ(e.target_ids, (std::vector<int64_t>{13, 13, 15, 1}));
}

TEST(Prompt, RealT5TokenizerThroughCodec) {
  const auto dir = peft::data::testing::shared_dir() / "models" / "t5-tokenizer";
  if (!std::filesystem::exists(dir / "spiece.model")) GTEST_SKIP() << "T5 tokenizer not found at " << dir;
  const auto tok = peft::load_tokenizer(dir);
  const TokenCodec codec = codec_from(*tok);
  EXPECT_EQ(codec.eos_id, 1);
  EXPECT_EQ(codec.pad_id, 0);
  EXPECT_EQ(codec.fingerprint, tok->fingerprint());
  PromptOptions o;
  o.max_source_length = 16;
  const Encoded e = encode_example(fixed_task(), 0, kExample, 0, o, codec);
  ASSERT_EQ(e.source_ids.size(), 16u);
  EXPECT_EQ(e.source_ids.back(), 1);
  EXPECT_EQ(e.source_ids, [&] {
    auto ids = tok->encode(format_source(fixed_task(), kExample, o, &codec));
    ids.resize(15);
    ids.push_back(1);
    return ids;
  }());
  EXPECT_EQ(e.target_ids, tok->encode("zyx"));
  EXPECT_EQ(e.target_ids.back(), 1);
}

TEST(Prompt, BuiltinSuiteFitsTheDefaultLengthsWithT5) {
  // The built-in suite is meant for tiny models: with the T5 vocabulary, Tk-Instruct prompts with both
  // positive examples stay far below the default limits (256 source / 64 target), so nothing is truncated.
  const auto dir = peft::data::testing::shared_dir() / "models" / "t5-tokenizer";
  const auto root = std::filesystem::path(PEFT_SOURCE_DIR) / "data" / "builtin";
  if (!std::filesystem::exists(dir / "spiece.model")) GTEST_SKIP() << "T5 tokenizer not found at " << dir;
  if (!std::filesystem::exists(root / "tasks.json")) GTEST_SKIP() << "data/builtin not generated";
  const auto tok = peft::load_tokenizer(dir);
  const TokenCodec codec = codec_from(*tok);
  const TaskSuite suite = read_suite(root);
  PromptOptions o;
  o.max_source_length = 256;
  o.max_target_length = 64;
  size_t max_src = 0, max_tgt = 0;
  for (size_t ti = 0; ti < suite.tasks.size(); ++ti) {
    const Task& t = suite.tasks[ti];
    // Every 10th example keeps the test fast; inputs within a task have the same shape.
    for (size_t i = 0; i < t.examples.size(); i += 10) {
      const Encoded e = encode_example(t, static_cast<int32_t>(ti), t.examples[i], static_cast<int32_t>(i), o, codec);
      max_src = std::max(max_src, e.source_ids.size());
      max_tgt = std::max(max_tgt, e.target_ids.size());
      EXPECT_NE(format_source(t, t.examples[i], o, &codec).find("Positive Example 2"), std::string::npos);
    }
  }
  EXPECT_LT(max_src, 128u);
  EXPECT_LT(max_tgt, 24u);
}
