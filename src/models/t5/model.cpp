#include "models/t5/model.h"

#include <cmath>

#include "models/argmax.h"
#include "models/loss.h"
#include "models/skinny_linear.h"

namespace peft {

T5ForConditionalGenerationImpl::T5ForConditionalGenerationImpl(const T5Config& config) : config_(config) {
  config_.validate("T5Config");
  shared = register_module("shared", torch::nn::Embedding(config.vocab_size, config.d_model));
  encoder = register_module("encoder", T5Stack(config, /*is_decoder=*/false, shared));
  decoder = register_module("decoder", T5Stack(config, /*is_decoder=*/true, shared));
  if (!config.tie_word_embeddings)
    lm_head = register_module("lm_head", AdaptableLinear(config.d_model, config.vocab_size, false));
  init_weights();
}

// HF T5PreTrainedModel._init_weights.
void T5ForConditionalGenerationImpl::init_weights() {
  torch::NoGradGuard no_grad;
  const double factor = config_.initializer_factor;
  const double d_model = static_cast<double>(config_.d_model), d_ff = static_cast<double>(config_.d_ff);
  const double d_kv = static_cast<double>(config_.d_kv), n_heads = static_cast<double>(config_.num_heads);
  shared->weight.normal_(0.0, factor * 1.0);
  if (lm_head) lm_head->weight.normal_(0.0, factor * 1.0);
  for (auto& m : modules(/*include_self=*/false)) {
    if (auto* norm = m->as<T5LayerNormImpl>()) {
      norm->weight.fill_(factor * 1.0);
    } else if (auto* ff = m->as<T5DenseReluDenseImpl>()) {
      if (ff->is_gated_act) {
        ff->wi_0->weight.normal_(0.0, factor * std::pow(d_model, -0.5));
        ff->wi_1->weight.normal_(0.0, factor * std::pow(d_model, -0.5));
      } else {
        ff->wi->weight.normal_(0.0, factor * std::pow(d_model, -0.5));
      }
      ff->wo->weight.normal_(0.0, factor * std::pow(d_ff, -0.5));
    } else if (auto* attn = m->as<T5AttentionImpl>()) {
      attn->q->weight.normal_(0.0, factor * std::pow(d_model * d_kv, -0.5));
      attn->k->weight.normal_(0.0, factor * std::pow(d_model, -0.5));
      attn->v->weight.normal_(0.0, factor * std::pow(d_model, -0.5));
      attn->o->weight.normal_(0.0, factor * std::pow(n_heads * d_kv, -0.5));
      if (attn->has_relative_attention_bias)
        attn->relative_attention_bias->weight.normal_(0.0, factor * std::pow(d_model, -0.5));
    }
  }
}

torch::Tensor T5ForConditionalGenerationImpl::shift_right(const torch::Tensor& labels) const {
  torch::Tensor shifted = torch::empty_like(labels);
  const int64_t t = labels.size(-1);
  if (t > 1) shifted.narrow(-1, 1, t - 1).copy_(labels.narrow(-1, 0, t - 1));
  shifted.narrow(-1, 0, 1).fill_(config_.decoder_start_token_id);
  return shifted.masked_fill(shifted == -100, config_.pad_token_id);
}

T5StackOutput T5ForConditionalGenerationImpl::encode(const torch::Tensor& input_ids,
                                                     const torch::Tensor& attention_mask, const ForwardContext& ctx,
                                                     bool output_hidden_states, bool output_attentions) {
  return encoder->forward(input_ids, attention_mask, torch::Tensor(), torch::Tensor(), ctx, output_hidden_states,
                          output_attentions);
}

torch::Tensor T5ForConditionalGenerationImpl::lm_logits(const torch::Tensor& sequence_output,
                                                        const ForwardContext& ctx) {
  if (config_.tie_word_embeddings) {
    // Tied head (v1.0): rescale, as Mesh TensorFlow did, before projecting on the embedding matrix.
    const torch::Tensor scaled = sequence_output * std::pow(static_cast<double>(config_.d_model), -0.5);
    if (skinny_linear_applies(scaled, shared->weight)) return skinny_linear(scaled, shared->weight, {});
    return torch::nn::functional::linear(scaled, shared->weight);
  }
  return lm_head->forward(sequence_output, ctx);
}

Seq2SeqOutput T5ForConditionalGenerationImpl::decode(const T5StackOutput& enc, const torch::Tensor& decoder_input_ids_in,
                                                     const torch::Tensor& decoder_attention_mask,
                                                     const torch::Tensor& labels, const ForwardContext& ctx,
                                                     bool output_hidden_states, bool output_attentions) {
  torch::Tensor decoder_input_ids = decoder_input_ids_in;
  if (!decoder_input_ids.defined()) {
    TORCH_CHECK(labels.defined(), "T5 decode needs decoder_input_ids or labels");
    decoder_input_ids = shift_right(labels);
  }
  T5StackOutput dec = decoder->forward(decoder_input_ids, decoder_attention_mask, enc.last_hidden_state,
                                       enc.attention_mask, ctx, output_hidden_states, output_attentions);
  Seq2SeqOutput out;
  out.logits = lm_logits(dec.last_hidden_state, ctx);
  if (labels.defined()) out.loss = token_cross_entropy(out.logits, labels);
  out.encoder_last_hidden_state = enc.last_hidden_state;
  out.encoder_attention_mask = enc.attention_mask;
  out.decoder_last_hidden_state = dec.last_hidden_state;
  out.encoder_hidden_states = enc.hidden_states;
  out.encoder_attentions = enc.attentions;
  out.decoder_hidden_states = std::move(dec.hidden_states);
  out.decoder_attentions = std::move(dec.attentions);
  out.cross_attentions = std::move(dec.cross_attentions);
  return out;
}

Seq2SeqOutput T5ForConditionalGenerationImpl::forward(const torch::Tensor& input_ids,
                                                      const torch::Tensor& attention_mask,
                                                      const torch::Tensor& decoder_input_ids,
                                                      const torch::Tensor& decoder_attention_mask,
                                                      const torch::Tensor& labels, const ForwardContext& ctx,
                                                      bool output_hidden_states, bool output_attentions) {
  T5StackOutput enc = encode(input_ids, attention_mask, ctx, output_hidden_states, output_attentions);
  return decode(enc, decoder_input_ids, decoder_attention_mask, labels, ctx, output_hidden_states, output_attentions);
}

torch::Tensor T5ForConditionalGenerationImpl::generate(const torch::Tensor& input_ids,
                                                       const torch::Tensor& attention_mask, const ForwardContext& ctx,
                                                       int64_t max_new_tokens) {
  torch::NoGradGuard no_grad;
  const int64_t batch_size = input_ids.size(0);
  T5StackOutput enc = encode(input_ids, attention_mask, ctx);  // once

  auto lopts = input_ids.options().dtype(torch::kLong);
  torch::Tensor next_input = torch::full({batch_size, 1}, config_.decoder_start_token_id, lopts);
  std::vector<torch::Tensor> tokens{next_input};
  torch::Tensor unfinished = torch::ones({batch_size}, lopts);
  T5DecoderCache cache;  // self-attention K/V grow by one position per step; cross K/V computed on step 1
  for (int64_t step = 0; step < max_new_tokens; ++step) {
    T5StackOutput dec = decoder->forward(next_input, torch::Tensor(), enc.last_hidden_state, enc.attention_mask, ctx,
                                         false, false, &cache);
    torch::Tensor logits = lm_logits(dec.last_hidden_state.select(1, -1), ctx);  // [B, vocab]
    torch::Tensor next_tokens = argmax_last_dim(logits);
    // Finished rows emit pad (HF greedy_search).
    next_tokens = next_tokens * unfinished + config_.pad_token_id * (1 - unfinished);
    tokens.push_back(next_tokens.unsqueeze(1));
    unfinished = unfinished * (next_tokens != config_.eos_token_id).to(torch::kLong);
    next_input = next_tokens.unsqueeze(1);
    if (unfinished.max().item<int64_t>() == 0) break;
  }
  return torch::cat(tokens, 1);
}

}  // namespace peft
