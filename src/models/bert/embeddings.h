// BertEmbeddings: word + position + token-type embeddings, LayerNorm, dropout (transformers modeling_bert.py).
#pragma once
#include <torch/torch.h>

#include "models/bert/config.h"
#include "models/context.h"
#include "models/hooks.h"

namespace peft::bert {

// Embedding hooks (prompt tuning) are owned here and applied by BertModel, which also owns the mask.
class BertEmbeddingsImpl : public torch::nn::Module, public HasEmbeddingHooks {
 public:
  explicit BertEmbeddingsImpl(const BertConfig& config);
  // input_ids [B, S] int64; token_type_ids / position_ids may be undefined (zeros / 0..S-1).
  torch::Tensor forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                        const torch::Tensor& position_ids, const ForwardContext& ctx);

  torch::nn::Embedding word_embeddings{nullptr}, position_embeddings{nullptr}, token_type_embeddings{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double hidden_dropout_prob;
};
TORCH_MODULE(BertEmbeddings);

}  // namespace peft::bert
