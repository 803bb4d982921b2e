// T5ForConditionalGeneration (Hugging Face transformers 4.33, v1.0 and v1.1/Flan): parameter names are HF's
// (`shared.weight`, `encoder.block.0.layer.0.SelfAttention.q.weight`, ..., `lm_head.weight` when untied).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "models/context.h"
#include "models/t5/config.h"
#include "models/t5/stack.h"

namespace peft {

struct Seq2SeqOutput {
  torch::Tensor logits;  // [B, T, vocab]
  torch::Tensor loss;    // 0-dim; undefined without labels
  torch::Tensor encoder_last_hidden_state, decoder_last_hidden_state;
  torch::Tensor encoder_attention_mask;  // the mask the decoder attended with (after prompt hooks)
  // Filled when output_hidden_states: [0] = embedding output, last = after the final norm (HF's convention).
  std::vector<torch::Tensor> encoder_hidden_states, decoder_hidden_states;
  // Filled when output_attentions: softmax probabilities [B, heads, q, k] per block.
  std::vector<torch::Tensor> encoder_attentions, decoder_attentions, cross_attentions;
};

class T5ForConditionalGenerationImpl : public torch::nn::Module {
 public:
  // Random initialisation as HF's _init_weights (normal, std scaled by initializer_factor).
  explicit T5ForConditionalGenerationImpl(const T5Config& config);

  // decoder_input_ids undefined: labels shifted right (decoder_start_token_id first, -100 -> pad).
  // labels defined: loss = mean token cross-entropy over labels != -100.
  Seq2SeqOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& decoder_input_ids, const torch::Tensor& decoder_attention_mask,
                        const torch::Tensor& labels, const ForwardContext& ctx, bool output_hidden_states = false,
                        bool output_attentions = false);

  T5StackOutput encode(const torch::Tensor& input_ids, const torch::Tensor& attention_mask, const ForwardContext& ctx,
                       bool output_hidden_states = false, bool output_attentions = false);

  // Runs the decoder on an encoder output; fills the decoder fields, logits and loss of the result.
  Seq2SeqOutput decode(const T5StackOutput& encoder_output, const torch::Tensor& decoder_input_ids,
                       const torch::Tensor& decoder_attention_mask, const torch::Tensor& labels,
                       const ForwardContext& ctx, bool output_hidden_states = false, bool output_attentions = false);

  // Decoder hidden states [.., d_model] -> vocabulary logits (v1.0's tied head rescales by d_model^-0.5 first).
  torch::Tensor lm_logits(const torch::Tensor& sequence_output, const ForwardContext& ctx);

  // Greedy decoding with a key/value cache, as HF generate(num_beams=1) without logits processors: returns
  // [B, 1 + n] starting with decoder_start_token_id; rows that emitted eos continue with pad; stops after
  // max_new_tokens or when every row has emitted eos. Runs without autograd.
  torch::Tensor generate(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                         const ForwardContext& ctx, int64_t max_new_tokens);

  // labels -> decoder_input_ids: shift right, decoder_start_token_id first, -100 replaced by pad.
  torch::Tensor shift_right(const torch::Tensor& labels) const;

  const T5Config& config() const { return config_; }

  torch::nn::Embedding shared{nullptr};
  T5Stack encoder{nullptr}, decoder{nullptr};
  AdaptableLinear lm_head{nullptr};  // only when !tie_word_embeddings

 private:
  void init_weights();
  T5Config config_;
};
TORCH_MODULE(T5ForConditionalGeneration);

}  // namespace peft
