#include "models/bert/embeddings.h"

#include "common/error.h"
#include "models/dropout.h"

namespace peft::bert {

BertEmbeddingsImpl::BertEmbeddingsImpl(const BertConfig& config) : hidden_dropout_prob(config.hidden_dropout_prob) {
  // padding_idx matters beyond init: it zeroes the gradient of the pad row, as in transformers.
  word_embeddings = register_module(
      "word_embeddings", torch::nn::Embedding(torch::nn::EmbeddingOptions(config.vocab_size, config.hidden_size)
                                                  .padding_idx(config.pad_token_id)));
  position_embeddings = register_module(
      "position_embeddings", torch::nn::Embedding(config.max_position_embeddings, config.hidden_size));
  token_type_embeddings =
      register_module("token_type_embeddings", torch::nn::Embedding(config.type_vocab_size, config.hidden_size));
  LayerNorm = register_module(
      "LayerNorm",
      torch::nn::LayerNorm(torch::nn::LayerNormOptions({config.hidden_size}).eps(config.layer_norm_eps)));
}

torch::Tensor BertEmbeddingsImpl::forward(const torch::Tensor& input_ids, const torch::Tensor& token_type_ids,
                                          const torch::Tensor& position_ids, const ForwardContext& ctx) {
  const int64_t seq_length = input_ids.size(1);
  const int64_t max_positions = position_embeddings->weight.size(0);
  if (!position_ids.defined() && seq_length > max_positions)
    fail_input("BERT input of " + std::to_string(seq_length) + " tokens is longer than max_position_embeddings " +
               std::to_string(max_positions) + " (truncate the input)");
  const auto long_opts = torch::TensorOptions().dtype(torch::kLong).device(input_ids.device());
  const torch::Tensor pos =
      position_ids.defined() ? position_ids : torch::arange(seq_length, long_opts).unsqueeze(0);
  const torch::Tensor types = token_type_ids.defined() ? token_type_ids : torch::zeros_like(input_ids);
  torch::Tensor embeddings = word_embeddings(input_ids) + token_type_embeddings(types);
  embeddings = embeddings + position_embeddings(pos);
  embeddings = LayerNorm(embeddings);
  return peft::dropout(embeddings, hidden_dropout_prob, ctx.training || is_training());
}

}  // namespace peft::bert
