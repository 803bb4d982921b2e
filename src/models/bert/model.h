// BertModel (embeddings, encoder, pooler) and BertForSequenceClassification (bert, classifier), with the
// parameter names of transformers, and load_bert(), which builds one from a Hugging Face checkpoint.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "models/bert/config.h"
#include "models/bert/embeddings.h"
#include "models/bert/layer.h"
#include "models/context.h"
#include "models/linear.h"

namespace peft::bert {

struct BertInputs {
  torch::Tensor input_ids;       // [B, S] int64
  torch::Tensor attention_mask;  // [B, S], 1 = token, 0 = padding; undefined = all ones
  torch::Tensor token_type_ids;  // [B, S]; undefined = zeros
  torch::Tensor position_ids;    // [B or 1, S]; undefined = 0..S-1
  bool output_hidden_states = false;
  bool output_attentions = false;
};

struct BertModelOutput {
  torch::Tensor last_hidden_state;           // [B, S, H]
  torch::Tensor pooler_output;               // [B, H]; undefined without a pooler
  std::vector<torch::Tensor> hidden_states;  // 0 = embedding output, then each layer (output_hidden_states)
  std::vector<torch::Tensor> attentions;     // softmax probabilities [B, heads, S, S_k] (output_attentions)
  torch::Tensor attention_mask;              // the mask actually used (longer when embedding hooks prepend tokens)
};

struct SequenceClassifierOutput {
  torch::Tensor logits;  // [B, num_labels]
  torch::Tensor loss;    // 0-dim; undefined without labels
  BertModelOutput bert;
};

class BertPoolerImpl : public torch::nn::Module {
 public:
  explicit BertPoolerImpl(const BertConfig& config);
  torch::Tensor forward(const torch::Tensor& hidden_states, const ForwardContext& ctx);  // tanh(dense(h[:, 0]))
  AdaptableLinear dense{nullptr};
};
TORCH_MODULE(BertPooler);

// What load_bert returns: either head, with access to the shared encoder.
class BertPreTrainedModel : public torch::nn::Module {
 public:
  explicit BertPreTrainedModel(BertConfig config) : config(std::move(config)) {}
  virtual class BertModelImpl& base_model() = 0;
  // "" for BertModel, "bert." for heads: the prefix of the encoder's names in named_parameters().
  virtual std::string base_model_prefix() const = 0;
  const BertConfig config;
};

class BertModelImpl : public BertPreTrainedModel {
 public:
  explicit BertModelImpl(const BertConfig& config, bool add_pooling_layer = true);
  BertModelOutput forward(const BertInputs& inputs, const ForwardContext& ctx);
  BertModelImpl& base_model() override { return *this; }
  std::string base_model_prefix() const override { return ""; }

  BertEmbeddings embeddings{nullptr};
  BertEncoder encoder{nullptr};
  BertPooler pooler{nullptr};  // null when add_pooling_layer is false
};
TORCH_MODULE(BertModel);

class BertForSequenceClassificationImpl : public BertPreTrainedModel {
 public:
  explicit BertForSequenceClassificationImpl(const BertConfig& config);
  // labels: [B] int64 (single-label), [B, num_labels] float (multi-label) or [B] float (regression, 1 label);
  // the loss follows config.problem_type, or transformers' inference from num_labels and the labels' dtype.
  SequenceClassifierOutput forward(const BertInputs& inputs, const ForwardContext& ctx,
                                   const torch::Tensor& labels = {});
  BertModelImpl& base_model() override { return *bert; }
  std::string base_model_prefix() const override { return "bert."; }

  BertModel bert{nullptr};
  AdaptableLinear classifier{nullptr};
  double classifier_dropout;
};
TORCH_MODULE(BertForSequenceClassification);

enum class BertHead {
  kAuto,                    // from the stored names (`bert.` prefix + classifier) or config.architectures
  kBase,                    // BertModel; a checkpoint with a head gives its `bert.*` part
  kSequenceClassification,  // a checkpoint without classifier gets a freshly initialised one
};

// Builds the model from config.json and loads every weight (io::load_weights: all missing / unexpected /
// wrongly shaped names in one error). Returned in eval mode: dropout runs only with ctx.training or after train().
// num_labels > 0 overrides config.json's (for a new classification head; a stored one must match it).
std::shared_ptr<BertPreTrainedModel> load_bert(const io::HfCheckpoint& checkpoint, BertHead head = BertHead::kAuto,
                                               int64_t num_labels = 0);

}  // namespace peft::bert
