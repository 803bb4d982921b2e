#include "models/t5/stack.h"

#include <limits>

#include "models/dropout.h"

namespace peft {

namespace {

double finfo_min(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kHalf: return -65504.0;
    case torch::kBFloat16: return -3.3895313892515355e38;
    case torch::kDouble: return std::numeric_limits<double>::lowest();
    default: return std::numeric_limits<float>::lowest();
  }
}

}  // namespace

torch::Tensor t5_inverted_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype) {
  torch::Tensor ext = attention_mask.unsqueeze(1).unsqueeze(1).to(dtype);
  return (1.0 - ext) * finfo_min(dtype);
}

T5StackImpl::T5StackImpl(const T5Config& config, bool is_decoder_, torch::nn::Embedding embed)
    : is_decoder(is_decoder_), num_heads(config.num_heads), dropout(config.dropout_rate), embed_tokens(std::move(embed)) {
  const int64_t n = is_decoder ? config.num_decoder_layers : config.num_layers;
  for (int64_t i = 0; i < n; ++i) {
    blocks.emplace_back(config, is_decoder, /*has_relative_attention_bias=*/i == 0);
    block->push_back(blocks.back());
  }
  block = register_module("block", block);
  final_layer_norm = register_module("final_layer_norm", T5LayerNorm(config.d_model, config.layer_norm_epsilon));
}

T5StackOutput T5StackImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask_in,
                                   const torch::Tensor& encoder_hidden_states,
                                   const torch::Tensor& encoder_attention_mask, const ForwardContext& ctx,
                                   bool output_hidden_states, bool output_attentions, T5DecoderCache* cache) {
  TORCH_CHECK(cache == nullptr || is_decoder, "a key/value cache is only for the decoder");
  T5StackOutput out;
  torch::Tensor inputs_embeds = embed_tokens->forward(input_ids);
  torch::Tensor attention_mask = attention_mask_in;
  if (!is_decoder && !embedding_hooks.empty()) {
    if (!attention_mask.defined())
      attention_mask = torch::ones({input_ids.size(0), input_ids.size(1)}, input_ids.options().dtype(torch::kLong));
    for (auto& hook : embedding_hooks)
      std::tie(inputs_embeds, attention_mask) = hook->prepend(inputs_embeds, attention_mask, ctx);
  }
  TORCH_CHECK(is_decoder == false || embedding_hooks.empty(), "embedding hooks attach to the T5 encoder only");
  out.attention_mask = attention_mask;

  const int64_t seq_length = inputs_embeds.size(1);
  const int64_t past_length = cache != nullptr ? cache->past_length() : 0;
  const int64_t key_length = past_length + seq_length;
  const auto dtype = inputs_embeds.scalar_type();

  // Relative bias from block 0 plus the additive mask, computed once and shared by every block (as HF does).
  torch::Tensor position_bias = blocks[0]->self_attention->SelfAttention->compute_bias(seq_length, key_length, past_length);
  if (is_decoder) {
    // Causal: query at absolute position past_length + i sees keys 0 .. past_length + i. With a single new
    // token and no padding mask everything is visible, and HF's added zeros change nothing: skip it.
    if (seq_length > 1 || attention_mask.defined()) {
      auto lopts = torch::TensorOptions().dtype(torch::kLong).device(inputs_embeds.device());
      torch::Tensor query_pos = torch::arange(past_length, key_length, lopts).unsqueeze(1);
      torch::Tensor key_pos = torch::arange(key_length, lopts).unsqueeze(0);
      torch::Tensor ext = (key_pos <= query_pos).to(dtype).unsqueeze(0).unsqueeze(0);  // [1, 1, q, k]
      if (attention_mask.defined()) ext = ext * attention_mask.to(dtype).unsqueeze(1).unsqueeze(1);
      position_bias = position_bias + (1.0 - ext) * finfo_min(dtype);
    }
  } else if (attention_mask.defined()) {
    position_bias = position_bias + t5_inverted_mask(attention_mask, dtype);
  }
  // Cross-attention has no relative bias (HF adds zeros): the inverted encoder mask alone.
  torch::Tensor encoder_decoder_position_bias;
  if (is_decoder && encoder_attention_mask.defined())
    encoder_decoder_position_bias = t5_inverted_mask(encoder_attention_mask, dtype);

  if (cache != nullptr && cache->blocks.size() != blocks.size()) cache->blocks.resize(blocks.size());

  torch::Tensor hidden_states = inputs_embeds;
  if (ctx.training && dropout > 0) hidden_states = peft::dropout(hidden_states, dropout, true);
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (output_hidden_states) out.hidden_states.push_back(hidden_states);
    T5BlockOutput b = blocks[i]->forward(hidden_states, position_bias, encoder_hidden_states,
                                         encoder_decoder_position_bias, ctx, output_attentions,
                                         cache != nullptr ? &cache->blocks[i] : nullptr);
    hidden_states = b.hidden_states;
    if (output_attentions) {
      out.attentions.push_back(b.self_attention_weights);
      if (is_decoder) out.cross_attentions.push_back(b.cross_attention_weights);
    }
  }
  hidden_states = final_layer_norm->forward(hidden_states);
  if (ctx.training && dropout > 0) hidden_states = peft::dropout(hidden_states, dropout, true);
  if (output_hidden_states) out.hidden_states.push_back(hidden_states);
  out.last_hidden_state = hidden_states;
  return out;
}

}  // namespace peft
