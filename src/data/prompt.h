// Turning an example into model text (prompt templates) and token ids (truncation).
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "data/task.h"

namespace peft::data {

// What data needs from a tokenizer. Kept as a value type so data has no compile-time tie to the tokenizer
// module and tests can supply a trivial one; codec_from(const peft::Tokenizer&) (codec.h) builds it from the
// real tokenizer.
struct TokenCodec {
  // Text -> ids, including the end-of-sequence id when the model appends one (T5: </s>).
  std::function<std::vector<int64_t>(const std::string&)> encode;
  int64_t pad_id = 0;
  int64_t eos_id = -1;      // -1: the tokenizer appends none
  std::string fingerprint;  // changes whenever encode() could give different ids (cache key)
};

enum class PromptTemplate {
  kTkInstruct,  // Tk-Instruct's DataCollatorForNI (default): "Definition: ...\n\n Positive Example 1 -\n..."
  kQA,          // BBH answer-only: definition, then "Q: <input>\nA: <output>\n\n" exemplars, then "Q: <input>\nA:"
  kInputOnly,   // the raw input
};

PromptTemplate parse_prompt_template(const std::string& name);  // "tk-instruct" | "qa" | "input-only"
std::string prompt_template_name(PromptTemplate t);

struct PromptOptions {
  PromptTemplate prompt_template = PromptTemplate::kTkInstruct;
  bool add_task_name = false;
  bool add_task_definition = true;
  int num_pos_examples = 2;
  bool add_explanation = false;
  int max_source_length = 512;  // tokens, incl. EOS
  int max_target_length = 128;  // tokens, incl. EOS

  // Stable text of every field (cache key).
  std::string fingerprint() const;
};

// Source text of one example. With a codec, positive examples are added only while the whole prompt still
// fits in max_source_length tokens (as Tk-Instruct does); without one, all num_pos_examples are added.
std::string format_source(const Task& task, const Example& example, const PromptOptions& options,
                          const TokenCodec* codec = nullptr);

// HF truncation=True, max_length=n: keeps the first n ids, with the final EOS kept as the last id.
std::vector<int64_t> truncate_ids(std::vector<int64_t> ids, int max_length, int64_t eos_id);

struct Encoded {
  int32_t task_index = 0;     // index into the TaskSuite's tasks (routing's task id)
  int32_t example_index = 0;  // index into Task::examples or Task::test_examples
  std::vector<int64_t> source_ids;
  std::vector<int64_t> target_ids;  // outputs[0] (Tk-Instruct picks a random reference; we fix the first)
};

Encoded encode_example(const Task& task, int32_t task_index, const Example& example, int32_t example_index,
                       const PromptOptions& options, const TokenCodec& codec);

}  // namespace peft::data
