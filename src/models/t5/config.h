// T5 hyper-parameters, named exactly as Hugging Face's config.json (transformers 4.33 T5Config).
#pragma once
#include <nlohmann/json.hpp>

#include <string>

namespace peft {

struct T5Config {
  int64_t vocab_size = 32128;
  int64_t d_model = 512;
  int64_t d_kv = 64;
  int64_t d_ff = 2048;
  int64_t num_layers = 6;
  int64_t num_decoder_layers = 6;  // defaults to num_layers
  int64_t num_heads = 8;
  int64_t relative_attention_num_buckets = 32;
  int64_t relative_attention_max_distance = 128;
  double dropout_rate = 0.1;
  double layer_norm_epsilon = 1e-6;
  double initializer_factor = 1.0;
  std::string feed_forward_proj = "relu";
  // Derived from feed_forward_proj as HF does ("gated-gelu" -> gated, gelu_new); explicit keys in config.json
  // override the derivation, because HF's PretrainedConfig sets unknown kwargs after deriving.
  std::string dense_act_fn = "relu";
  bool is_gated_act = false;
  bool tie_word_embeddings = true;
  int64_t pad_token_id = 0;
  int64_t eos_token_id = 1;
  int64_t decoder_start_token_id = 0;  // defaults to pad_token_id

  // Required keys: vocab_size, d_model, d_kv, d_ff, num_layers, num_heads (the shape of the weights; guessing
  // them from HF's t5-small defaults would silently load a different model). Everything else has HF's default.
  // Errors are one-line InputErrors naming `source` and the key.
  static T5Config from_json(const nlohmann::json& j, const std::string& source);

  // Throws InputError (naming `source`) when a value cannot work: unknown activation, non-positive sizes.
  void validate(const std::string& source) const;

  nlohmann::json to_json() const;
};

// Activation names the T5 FFN accepts (HF ACT2FN keys that we implement).
bool is_known_activation(const std::string& name);

}  // namespace peft
