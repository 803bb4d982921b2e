#include "data/prompt.h"

#include <cstring>

#include "common/error.h"

namespace peft::data {

PromptTemplate parse_prompt_template(const std::string& name) {
  if (name == "tk-instruct" || name == "tk_instruct") return PromptTemplate::kTkInstruct;
  if (name == "qa") return PromptTemplate::kQA;
  if (name == "input-only" || name == "input_only") return PromptTemplate::kInputOnly;
  fail_input("data.template: unknown template '" + name + "' (expected tk-instruct, qa or input-only)");
}

std::string prompt_template_name(PromptTemplate t) {
  switch (t) {
    case PromptTemplate::kTkInstruct: return "tk-instruct";
    case PromptTemplate::kQA: return "qa";
    case PromptTemplate::kInputOnly: return "input-only";
  }
  return "?";
}

std::string PromptOptions::fingerprint() const {
  return "template=" + prompt_template_name(prompt_template) + ";task_name=" + std::to_string(add_task_name) +
         ";definition=" + std::to_string(add_task_definition) + ";pos=" + std::to_string(num_pos_examples) +
         ";explanation=" + std::to_string(add_explanation) + ";max_source=" + std::to_string(max_source_length) +
         ";max_target=" + std::to_string(max_target_length);
}

namespace {

// Python's str.strip() for the ASCII whitespace that occurs in the data.
std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\v\f";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// Tk-Instruct ends every field with "." unless its last character is in Python's string.punctuation.
void end_with_punct(std::string& s) {
  static const char* kPunct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  if (s.empty() || std::strchr(kPunct, s.back()) == nullptr || s.back() == '\0') s += ".";
}

size_t n_tokens(const TokenCodec* codec, const std::string& text) { return codec->encode(text).size(); }

std::string tk_instruct_source(const Task& task, const Example& ex, const PromptOptions& o, const TokenCodec* codec) {
  // Mirrors DataCollatorForNI.__call__ (yizhongw/Tk-Instruct, src/ni_collator.py), negative examples aside.
  std::string task_input = "Now complete the following example -\n";
  task_input += "Input: " + strip(ex.input);
  end_with_punct(task_input);
  task_input += "\nOutput: ";

  std::string task_name;
  if (o.add_task_name) task_name = task.name + ". ";

  std::string definition;
  if (o.add_task_definition) {
    definition = "Definition: " + strip(task.definition);
    end_with_punct(definition);
    definition += "\n\n";
  }

  std::vector<std::string> pos_examples;
  const size_t n_pos = std::min<size_t>(std::max(o.num_pos_examples, 0), task.positive_examples.size());
  for (size_t idx = 0; idx < n_pos; ++idx) {
    const auto& pe = task.positive_examples[idx];
    std::string s = " Positive Example " + std::to_string(idx + 1) + " -\n";
    s += "Input: " + strip(pe.input);
    end_with_punct(s);
    s += "\n";
    s += " Output: " + strip(pe.output);
    end_with_punct(s);
    s += "\n";
    if (o.add_explanation && !pe.explanation.empty()) {
      s += " Explanation: " + strip(pe.explanation);
      end_with_punct(s);
      s += "\n";
    }
    s += "\n";
    if (codec) {
      // The reference measures with " ".join(pos_examples) although it concatenates with "".join; kept as is.
      std::string joined;
      for (size_t k = 0; k < pos_examples.size(); ++k) joined += (k ? " " : "") + pos_examples[k];
      if (n_tokens(codec, definition + joined + s + task_input) > static_cast<size_t>(o.max_source_length)) break;
    }
    pos_examples.push_back(s);
  }
  std::string source = task_name + definition;
  for (const auto& s : pos_examples) source += s;
  return source + task_input;
}

std::string qa_source(const Task& task, const Example& ex, const PromptOptions& o, const TokenCodec* codec) {
  std::string head;
  if (o.add_task_definition && !task.definition.empty()) head = strip(task.definition) + "\n\n";
  const std::string query = "Q: " + strip(ex.input) + "\nA:";
  std::string shots;
  const size_t n_pos = std::min<size_t>(std::max(o.num_pos_examples, 0), task.positive_examples.size());
  for (size_t idx = 0; idx < n_pos; ++idx) {
    const auto& pe = task.positive_examples[idx];
    const std::string s = "Q: " + strip(pe.input) + "\nA: " + strip(pe.output) + "\n\n";
    if (codec && n_tokens(codec, head + shots + s + query) > static_cast<size_t>(o.max_source_length)) break;
    shots += s;
  }
  return head + shots + query;
}

}  // namespace

std::string format_source(const Task& task, const Example& example, const PromptOptions& options,
                          const TokenCodec* codec) {
  switch (options.prompt_template) {
    case PromptTemplate::kTkInstruct: return tk_instruct_source(task, example, options, codec);
    case PromptTemplate::kQA: return qa_source(task, example, options, codec);
    case PromptTemplate::kInputOnly: return example.input;
  }
  return example.input;
}

std::vector<int64_t> truncate_ids(std::vector<int64_t> ids, int max_length, int64_t eos_id) {
  if (max_length <= 0 || ids.size() <= static_cast<size_t>(max_length)) return ids;
  const bool had_eos = eos_id >= 0 && ids.back() == eos_id;
  ids.resize(static_cast<size_t>(max_length));
  if (had_eos) ids.back() = eos_id;
  return ids;
}

Encoded encode_example(const Task& task, int32_t task_index, const Example& example, int32_t example_index,
                       const PromptOptions& options, const TokenCodec& codec) {
  Encoded e;
  e.task_index = task_index;
  e.example_index = example_index;
  e.source_ids = truncate_ids(codec.encode(format_source(task, example, options, &codec)), options.max_source_length,
                              codec.eos_id);
  e.target_ids = truncate_ids(codec.encode(example.outputs.empty() ? std::string() : example.outputs.front()),
                              options.max_target_length, codec.eos_id);
  return e;
}

}  // namespace peft::data
