// One BERT encoder layer (attention, intermediate, output) and the stack of them (encoder.layer.{i}).
#pragma once
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "models/bert/attention.h"
#include "models/bert/config.h"
#include "models/context.h"
#include "models/hooks.h"
#include "models/linear.h"

namespace peft::bert {

// hidden_act by its transformers name (ACT2FN); names were validated by BertConfig::from_json.
torch::Tensor activation(const std::string& name, const torch::Tensor& x);

class BertIntermediateImpl : public torch::nn::Module {
 public:
  explicit BertIntermediateImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden_states, const ForwardContext& ctx);

  AdaptableLinear dense{nullptr};
  std::string hidden_act;
};
TORCH_MODULE(BertIntermediate);

// The FFN's output projection. Sub-layer hooks (kFeedForward) see input = the FFN input (the attention output)
// and output = dropout(dense(intermediate)), before LayerNorm(output + input).
class BertOutputImpl : public torch::nn::Module, public HasSublayerHooks {
 public:
  explicit BertOutputImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden_states, const torch::Tensor& input_tensor,
                        const ForwardContext& ctx);

  AdaptableLinear dense{nullptr};
  torch::nn::LayerNorm LayerNorm{nullptr};
  double hidden_dropout_prob;
};
TORCH_MODULE(BertOutput);

class BertLayerImpl : public torch::nn::Module {
 public:
  explicit BertLayerImpl(const BertConfig& config);
  // Returns {layer_output, attention probabilities}.
  std::pair<torch::Tensor, torch::Tensor> forward(const torch::Tensor& hidden_states,
                                                  const torch::Tensor& extended_attention_mask,
                                                  const ForwardContext& ctx);

  BertAttention attention{nullptr};
  BertIntermediate intermediate{nullptr};
  BertOutput output{nullptr};
};
TORCH_MODULE(BertLayer);

struct BertEncoderOutput {
  torch::Tensor last_hidden_state;
  std::vector<torch::Tensor> hidden_states;  // input + each layer's output, when asked for
  std::vector<torch::Tensor> attentions;     // each layer's probabilities, when asked for
};

class BertEncoderImpl : public torch::nn::Module {
 public:
  explicit BertEncoderImpl(const BertConfig& config);
  BertEncoderOutput forward(const torch::Tensor& hidden_states, const torch::Tensor& extended_attention_mask,
                            const ForwardContext& ctx, bool output_hidden_states, bool output_attentions);

  torch::nn::ModuleList layer{nullptr};
  std::vector<BertLayer> layers;  // the same modules as `layer`, typed
};
TORCH_MODULE(BertEncoder);

}  // namespace peft::bert
