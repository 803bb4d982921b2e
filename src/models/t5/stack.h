// T5Stack: embeddings (the model's `shared`, not registered here) -> blocks -> final RMS norm.
// The encoder stack is the prompt-tuning site (HasEmbeddingHooks).
#pragma once
#include <torch/torch.h>

#include <vector>

#include "models/context.h"
#include "models/hooks.h"
#include "models/t5/config.h"
#include "models/t5/layers.h"

namespace peft {

struct T5StackOutput {
  torch::Tensor last_hidden_state;  // after final_layer_norm (and dropout)
  // Encoder: the attention mask actually used (prompt tuning may have extended it); the decoder's
  // cross-attention must use this one. Undefined when no mask was given and no hook added one.
  torch::Tensor attention_mask;
  std::vector<torch::Tensor> hidden_states;  // when asked: [0] = embedding output, last = after final norm
  std::vector<torch::Tensor> attentions, cross_attentions;  // when asked: per block, [B, heads, q, k]
};

// Cache of a whole decoder stack for incremental decoding.
struct T5DecoderCache {
  std::vector<T5BlockCache> blocks;
  int64_t past_length() const { return blocks.empty() ? 0 : blocks[0].self_attention.length; }
};

class T5StackImpl : public torch::nn::Module, public HasEmbeddingHooks {
 public:
  T5StackImpl(const T5Config& config, bool is_decoder, torch::nn::Embedding embed_tokens);

  // Encoder: (input_ids, attention_mask). Decoder: also encoder_hidden_states / encoder_attention_mask, and
  // optionally a cache (then input_ids are the new tokens only, and attention_mask, when given, covers past + new).
  T5StackOutput forward(const torch::Tensor& input_ids, const torch::Tensor& attention_mask,
                        const torch::Tensor& encoder_hidden_states, const torch::Tensor& encoder_attention_mask,
                        const ForwardContext& ctx, bool output_hidden_states, bool output_attentions,
                        T5DecoderCache* cache = nullptr);

  bool is_decoder;
  int64_t num_heads;
  double dropout;
  torch::nn::Embedding embed_tokens{nullptr};  // shared with the model; deliberately not registered
  torch::nn::ModuleList block;
  std::vector<T5Block> blocks;  // typed view of `block`
  T5LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(T5Stack);

// (1 - mask) * finfo(dtype).min, broadcast as [B, 1, 1, k] (HF's invert_attention_mask).
torch::Tensor t5_inverted_mask(const torch::Tensor& attention_mask, torch::ScalarType dtype);

}  // namespace peft
