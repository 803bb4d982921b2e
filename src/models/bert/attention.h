// BERT self-attention (attention.self), its output projection (attention.output) and the pair (attention).
#pragma once
#include <torch/torch.h>

#include <utility>

#include "models/bert/config.h"
#include "models/context.h"
#include "models/hooks.h"
#include "models/linear.h"

namespace peft::bert {

// Prefix hooks prepend key/value rows [B, heads, l, d_head]; the mask always lets every query see them.
class BertSelfAttentionImpl : public torch::nn::Module, public HasPrefixHooks {
 public:
  explicit BertSelfAttentionImpl(const BertConfig& config);
  // hidden_states [B, S, H]; extended_attention_mask additive, broadcastable to [B, heads, S, S_k].
  // Returns {context [B, S, H], attention probabilities [B, heads, S, S_k]}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& hidden_states,
                                                  const torch::Tensor& extended_attention_mask,
                                                  const ForwardContext& ctx);

  AdaptableLinear query{nullptr}, key{nullptr}, value{nullptr};
  int64_t num_attention_heads, attention_head_size;
  double attention_probs_dropout_prob;

 private:
  torch::Tensor transpose_for_scores(const torch::Tensor& x) const;  // [B, S, H] -> [B, heads, S, d_head]
};
TORCH_MODULE(BertSelfAttention);

// Sub-layer hooks (kSelfAttention) see input = the attention block's input hidden_states and output =
// dropout(dense(context)), before LayerNorm(output + input).
class BertSelfOutputImpl : public torch::nn::Module, public HasSublayerHooks {
 public:
  explicit BertSelfOutputImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden_states, const torch::Tensor& input_tensor,
                        const ForwardContext& ctx);

  AdaptableLinear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double hidden_dropout_prob;
};
TORCH_MODULE(BertSelfOutput);

class BertAttentionImpl : public torch::nn::Module {
 public:
  explicit BertAttentionImpl(const BertConfig& config);
  // Returns {attention_output, attention probabilities}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& hidden_states,
                                                  const torch::Tensor& extended_attention_mask,
                                                  const ForwardContext& ctx);

  BertSelfAttention self{nullptr};
  BertSelfOutput output{nullptr};
};
TORCH_MODULE(BertAttention);

}  // namespace peft::bert
