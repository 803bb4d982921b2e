// BERT hyper-parameters, named as in Hugging Face's config.json (transformers BertConfig).
#pragma once
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace peft::bert {

struct BertConfig {
  // Required: they decide every tensor shape, so a default would only hide a wrong file.
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t intermediate_size = 0;
  // Optional, with transformers' defaults.
  std::string hidden_act = "gelu";  // gelu (exact erf), gelu_new, gelu_pytorch_tanh, gelu_fast, relu, silu/swish, tanh
  double hidden_dropout_prob = 0.1;
  double attention_probs_dropout_prob = 0.1;
  int64_t max_position_embeddings = 512;
  int64_t type_vocab_size = 2;
  double layer_norm_eps = 1e-12;
  int64_t pad_token_id = 0;
  std::string position_embedding_type = "absolute";  // the only one supported
  int64_t num_labels = 2;                            // len(id2label), else num_labels
  std::optional<double> classifier_dropout;          // null -> hidden_dropout_prob
  std::string problem_type;                          // "", single_label_classification, multi_label_classification, regression
  std::vector<std::string> architectures;

  int64_t head_dim() const { return hidden_size / num_attention_heads; }

  // `source` names the file in errors: `DIR/config.json: missing key 'hidden_size'`.
  static BertConfig from_json(const nlohmann::json& j, const std::string& source);
};

}  // namespace peft::bert
