#include "models/t5/config.h"

#include <algorithm>
#include <array>

#include "common/error.h"

namespace peft {

namespace {

constexpr std::array<const char*, 14> kActivations = {
    "relu", "gelu", "gelu_new", "gelu_pytorch_tanh", "gelu_fast", "gelu_accurate", "quick_gelu",
    "silu", "swish", "tanh", "sigmoid", "linear", "relu6", "mish"};

template <typename T>
T get_or(const nlohmann::json& j, const std::string& key, T fallback, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  try {
    return it->get<T>();
  } catch (const nlohmann::json::exception&) {
    fail_input(where(source) + "key '" + key + "': wrong type (" + it->type_name() + ")");
  }
}

template <typename T>
T get_required(const nlohmann::json& j, const std::string& key, const std::string& source) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) fail_input(where(source) + "missing key '" + key + "'");
  return get_or<T>(j, key, T{}, source);
}

}  // namespace

bool is_known_activation(const std::string& name) {
  return std::any_of(kActivations.begin(), kActivations.end(), [&](const char* a) { return name == a; });
}

T5Config T5Config::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) fail_input(where(source) + "expected a JSON object");
  T5Config c;
  c.vocab_size = get_required<int64_t>(j, "vocab_size", source);
  c.d_model = get_required<int64_t>(j, "d_model", source);
  c.d_kv = get_required<int64_t>(j, "d_kv", source);
  c.d_ff = get_required<int64_t>(j, "d_ff", source);
  c.num_layers = get_required<int64_t>(j, "num_layers", source);
  c.num_heads = get_required<int64_t>(j, "num_heads", source);
  c.num_decoder_layers = get_or<int64_t>(j, "num_decoder_layers", c.num_layers, source);
  c.relative_attention_num_buckets = get_or<int64_t>(j, "relative_attention_num_buckets", 32, source);
  c.relative_attention_max_distance = get_or<int64_t>(j, "relative_attention_max_distance", 128, source);
  c.dropout_rate = get_or<double>(j, "dropout_rate", 0.1, source);
  c.layer_norm_epsilon = get_or<double>(j, "layer_norm_epsilon", 1e-6, source);
  c.initializer_factor = get_or<double>(j, "initializer_factor", 1.0, source);
  c.feed_forward_proj = get_or<std::string>(j, "feed_forward_proj", "relu", source);

  // HF T5Config.__init__: "gated-<act>" or "<act>"; anything with more dashes (or a non-"gated" prefix) is refused.
  const std::string& ffp = c.feed_forward_proj;
  const auto dash = ffp.find('-');
  if (dash == std::string::npos) {
    c.is_gated_act = false;
    c.dense_act_fn = ffp;
  } else {
    const std::string head = ffp.substr(0, dash), act = ffp.substr(dash + 1);
    if (head != "gated" || act.find('-') != std::string::npos)
      fail_input(where(source) + "feed_forward_proj: '" + ffp +
                 "' is not a valid activation (expected 'gated-{ACT_FN}' or '{ACT_FN}', e.g. 'gated-gelu' or 'relu')");
    c.is_gated_act = true;
    c.dense_act_fn = act;
  }
  if (ffp == "gated-gelu") c.dense_act_fn = "gelu_new";  // HF's backwards-compatibility rule
  c.dense_act_fn = get_or<std::string>(j, "dense_act_fn", c.dense_act_fn, source);
  c.is_gated_act = get_or<bool>(j, "is_gated_act", c.is_gated_act, source);

  c.tie_word_embeddings = get_or<bool>(j, "tie_word_embeddings", true, source);
  c.pad_token_id = get_or<int64_t>(j, "pad_token_id", 0, source);
  c.eos_token_id = get_or<int64_t>(j, "eos_token_id", 1, source);
  c.decoder_start_token_id = get_or<int64_t>(j, "decoder_start_token_id", c.pad_token_id, source);
  c.validate(source);
  return c;
}

void T5Config::validate(const std::string& source) const {
  if (!is_known_activation(dense_act_fn)) {
    std::string known;
    for (const char* a : kActivations) known += (known.empty() ? "" : ", ") + std::string(a);
    fail_input(where(source) + "dense_act_fn: unknown activation '" + dense_act_fn + "' (from feed_forward_proj '" +
               feed_forward_proj + "'; known: " + known + ")");
  }
  const std::pair<const char*, int64_t> positive[] = {
      {"vocab_size", vocab_size}, {"d_model", d_model}, {"d_kv", d_kv}, {"d_ff", d_ff}, {"num_layers", num_layers},
      {"num_decoder_layers", num_decoder_layers}, {"num_heads", num_heads},
      {"relative_attention_num_buckets", relative_attention_num_buckets},
      {"relative_attention_max_distance", relative_attention_max_distance}};
  for (const auto& [key, value] : positive)
    if (value <= 0) fail_input(where(source) + key + ": must be positive, got " + std::to_string(value));
  if (dropout_rate < 0 || dropout_rate >= 1)
    fail_input(where(source) + "dropout_rate: must be in [0, 1), got " + std::to_string(dropout_rate));
  if (layer_norm_epsilon < 0)
    fail_input(where(source) + "layer_norm_epsilon: must be >= 0, got " + std::to_string(layer_norm_epsilon));
  if (decoder_start_token_id < 0 || decoder_start_token_id >= vocab_size)
    fail_input(where(source) + "decoder_start_token_id: " + std::to_string(decoder_start_token_id) +
               " is outside the vocabulary (" + std::to_string(vocab_size) + ")");
}

nlohmann::json T5Config::to_json() const {
  return {{"model_type", "t5"},
          {"vocab_size", vocab_size},
          {"d_model", d_model},
          {"d_kv", d_kv},
          {"d_ff", d_ff},
          {"num_layers", num_layers},
          {"num_decoder_layers", num_decoder_layers},
          {"num_heads", num_heads},
          {"relative_attention_num_buckets", relative_attention_num_buckets},
          {"relative_attention_max_distance", relative_attention_max_distance},
          {"dropout_rate", dropout_rate},
          {"layer_norm_epsilon", layer_norm_epsilon},
          {"initializer_factor", initializer_factor},
          {"feed_forward_proj", feed_forward_proj},
          {"dense_act_fn", dense_act_fn},
          {"is_gated_act", is_gated_act},
          {"tie_word_embeddings", tie_word_embeddings},
          {"pad_token_id", pad_token_id},
          {"eos_token_id", eos_token_id},
          {"decoder_start_token_id", decoder_start_token_id}};
}

}  // namespace peft
