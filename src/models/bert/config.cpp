#include "models/bert/config.h"

#include <algorithm>

#include "common/error.h"

namespace peft::bert {
namespace {

template <typename T>
T get_key(const nlohmann::json& j, const std::string& key, const std::string& source, const char* type_name) {
  try {
    return j.at(key).get<T>();
  } catch (const nlohmann::json::exception&) {
    fail_input(where(source) + "key '" + key + "' must be " + type_name + ", got " + j.at(key).dump());
  }
}

template <typename T>
void required(const nlohmann::json& j, const std::string& key, const std::string& source, T& out,
              const char* type_name) {
  if (!j.contains(key) || j.at(key).is_null()) fail_input(where(source) + "missing key '" + key + "'");
  out = get_key<T>(j, key, source, type_name);
}

template <typename T>
void optional(const nlohmann::json& j, const std::string& key, const std::string& source, T& out,
              const char* type_name) {
  if (j.contains(key) && !j.at(key).is_null()) out = get_key<T>(j, key, source, type_name);
}

}  // namespace

BertConfig BertConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail_input(where(source) + "config is not a JSON object");
  BertConfig c;
  required(j, "vocab_size", source, c.vocab_size, "an integer");
  required(j, "hidden_size", source, c.hidden_size, "an integer");
  required(j, "num_hidden_layers", source, c.num_hidden_layers, "an integer");
  required(j, "num_attention_heads", source, c.num_attention_heads, "an integer");
  required(j, "intermediate_size", source, c.intermediate_size, "an integer");
  optional(j, "hidden_act", source, c.hidden_act, "a string");
  optional(j, "hidden_dropout_prob", source, c.hidden_dropout_prob, "a number");
  optional(j, "attention_probs_dropout_prob", source, c.attention_probs_dropout_prob, "a number");
  optional(j, "max_position_embeddings", source, c.max_position_embeddings, "an integer");
  optional(j, "type_vocab_size", source, c.type_vocab_size, "an integer");
  optional(j, "layer_norm_eps", source, c.layer_norm_eps, "a number");
  optional(j, "pad_token_id", source, c.pad_token_id, "an integer");
  optional(j, "position_embedding_type", source, c.position_embedding_type, "a string");
  optional(j, "problem_type", source, c.problem_type, "a string");
  optional(j, "architectures", source, c.architectures, "a list of strings");
  if (j.contains("classifier_dropout") && !j.at("classifier_dropout").is_null())
    c.classifier_dropout = get_key<double>(j, "classifier_dropout", source, "a number or null");
  // transformers writes id2label, not num_labels; num_labels = len(id2label).
  if (j.contains("id2label") && j.at("id2label").is_object())
    c.num_labels = static_cast<int64_t>(j.at("id2label").size());
  else
    optional(j, "num_labels", source, c.num_labels, "an integer");

  static const char* kActs[] = {"gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "relu", "silu", "swish", "tanh"};
  if (std::find(std::begin(kActs), std::end(kActs), c.hidden_act) == std::end(kActs))
    fail_input(where(source) + "hidden_act '" + c.hidden_act +
               "' is not supported (gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu, swish, tanh)");
  if (c.position_embedding_type != "absolute")
    fail_input(where(source) + "position_embedding_type '" + c.position_embedding_type +
               "' is not supported (only 'absolute')");
  for (const char* key : {"vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"})
    if (j.at(key).get<int64_t>() <= 0) fail_input(where(source) + "key '" + key + "' must be positive");
  if (c.hidden_size % c.num_attention_heads != 0)
    fail_input(where(source) + "hidden_size " + std::to_string(c.hidden_size) +
               " is not a multiple of num_attention_heads " + std::to_string(c.num_attention_heads));
  if (c.num_labels < 1) fail_input(where(source) + "key 'num_labels' must be positive");
  if (j.contains("is_decoder") && j.at("is_decoder").is_boolean() && j.at("is_decoder").get<bool>())
    fail_input(where(source) + "is_decoder true is not supported (BERT encoder only)");
  return c;
}

}  // namespace peft::bert
