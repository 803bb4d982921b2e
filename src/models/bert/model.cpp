#include "models/bert/model.h"

#include <algorithm>
#include <limits>

#include "common/error.h"
#include "models/dropout.h"

namespace peft::bert {
namespace {

// torch.finfo(dtype).min, which transformers puts on masked positions.
double finfo_min(torch::Dtype dtype) {
  switch (dtype) {
    case torch::kFloat64: return std::numeric_limits<double>::lowest();
    case torch::kFloat16: return -65504.0;
    case torch::kBFloat16: return -3.3895313892515355e38;
    default: return static_cast<double>(std::numeric_limits<float>::lowest());
  }
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

}  // namespace

BertPoolerImpl::BertPoolerImpl(const BertConfig& config) {
  dense = register_module("dense", AdaptableLinear(config.hidden_size, config.hidden_size, true));
}

torch::Tensor BertPoolerImpl::forward(const torch::Tensor& hidden_states, const ForwardContext& ctx) {
  return torch::tanh(dense(hidden_states.select(1, 0), ctx));
}

BertModelImpl::BertModelImpl(const BertConfig& config, bool add_pooling_layer) : BertPreTrainedModel(config) {
  embeddings = register_module("embeddings", BertEmbeddings(config));
  encoder = register_module("encoder", BertEncoder(config));
  if (add_pooling_layer) pooler = register_module("pooler", BertPooler(config));
}

BertModelOutput BertModelImpl::forward(const BertInputs& inputs, const ForwardContext& ctx) {
  BertModelOutput out;
  torch::Tensor hidden = embeddings(inputs.input_ids, inputs.token_type_ids, inputs.position_ids, ctx);
  torch::Tensor mask = inputs.attention_mask.defined() ? inputs.attention_mask : torch::ones_like(inputs.input_ids);
  for (auto& hook : embeddings->embedding_hooks) std::tie(hidden, mask) = hook->prepend(hidden, mask, ctx);
  out.attention_mask = mask;
  // transformers' get_extended_attention_mask: [B, 1, 1, S], 0 where visible, finfo.min where masked.
  const auto dtype = hidden.scalar_type();
  torch::Tensor extended = mask.unsqueeze(1).unsqueeze(2).to(dtype);
  extended = (1.0 - extended) * finfo_min(dtype);
  BertEncoderOutput enc = encoder(hidden, extended, ctx, inputs.output_hidden_states, inputs.output_attentions);
  out.last_hidden_state = enc.last_hidden_state;
  out.hidden_states = std::move(enc.hidden_states);
  out.attentions = std::move(enc.attentions);
  if (pooler) out.pooler_output = pooler(out.last_hidden_state, ctx);
  return out;
}

BertForSequenceClassificationImpl::BertForSequenceClassificationImpl(const BertConfig& config)
    : BertPreTrainedModel(config),
      classifier_dropout(config.classifier_dropout.value_or(config.hidden_dropout_prob)) {
  bert = register_module("bert", BertModel(config));
  classifier = register_module("classifier", AdaptableLinear(config.hidden_size, config.num_labels, true));
}

SequenceClassifierOutput BertForSequenceClassificationImpl::forward(const BertInputs& inputs,
                                                                    const ForwardContext& ctx,
                                                                    const torch::Tensor& labels) {
  SequenceClassifierOutput out;
  out.bert = bert(inputs, ctx);
  torch::Tensor pooled = peft::dropout(out.bert.pooler_output, classifier_dropout, ctx.training || is_training());
  out.logits = classifier(pooled, ctx);
  if (!labels.defined()) return out;
  const int64_t num_labels = config.num_labels;
  std::string problem_type = config.problem_type;
  if (problem_type.empty()) {
    if (num_labels == 1)
      problem_type = "regression";
    else if (labels.scalar_type() == torch::kLong || labels.scalar_type() == torch::kInt)
      problem_type = "single_label_classification";
    else
      problem_type = "multi_label_classification";
  }
  namespace F = torch::nn::functional;
  if (problem_type == "regression") {
    out.loss = num_labels == 1 ? F::mse_loss(out.logits.squeeze(), labels.squeeze().to(out.logits.dtype()))
                               : F::mse_loss(out.logits, labels.to(out.logits.dtype()));
  } else if (problem_type == "single_label_classification") {
    out.loss = F::cross_entropy(out.logits.view({-1, num_labels}), labels.view({-1}).to(torch::kLong));
  } else if (problem_type == "multi_label_classification") {
    out.loss = F::binary_cross_entropy_with_logits(out.logits, labels.to(out.logits.dtype()));
  } else {
    fail_input("config.json: problem_type '" + problem_type +
               "' is not supported (regression, single_label_classification, multi_label_classification)");
  }
  return out;
}

std::shared_ptr<BertPreTrainedModel> load_bert(const io::HfCheckpoint& checkpoint, BertHead head,
                                               int64_t num_labels) {
  const std::string config_file = (checkpoint.dir / "config.json").string();
  BertConfig config = BertConfig::from_json(checkpoint.config, config_file);
  if (num_labels > 0) config.num_labels = num_labels;
  // Errors name the weights file; a sharded checkpoint is named by its index.
  const auto single = checkpoint.dir / "model.safetensors";
  const auto index = checkpoint.dir / "model.safetensors.index.json";
  const std::string source =
      (!std::filesystem::exists(single) && std::filesystem::exists(index) ? index : single).string();

  // Older checkpoints name LayerNorm parameters gamma/beta (transformers renames them on load too).
  io::TensorMap tensors;
  for (const auto& [name, t] : checkpoint.tensors) {
    std::string n = name;
    for (const auto& [from, to] : {std::pair<std::string, std::string>{"LayerNorm.gamma", "LayerNorm.weight"},
                                   {"LayerNorm.beta", "LayerNorm.bias"}}) {
      const auto at = n.find(from);
      if (at != std::string::npos && at + from.size() == n.size()) n = n.substr(0, at) + to;
    }
    tensors[n] = t;
  }
  const bool prefixed = std::any_of(tensors.begin(), tensors.end(),
                                    [](const auto& kv) { return starts_with(kv.first, "bert."); });
  const bool has_classifier = tensors.count("classifier.weight") > 0;
  if (head == BertHead::kAuto) {
    const auto& arch = config.architectures;
    const bool seqcls_arch =
        std::find(arch.begin(), arch.end(), "BertForSequenceClassification") != arch.end();
    head = (has_classifier || seqcls_arch) ? BertHead::kSequenceClassification : BertHead::kBase;
  }
  std::vector<std::string> ignore = {"embeddings.position_ids", "bert.embeddings.position_ids"};

  if (head == BertHead::kBase) {
    auto model = std::make_shared<BertModelImpl>(config);
    io::TensorMap base;
    if (prefixed) {
      // A checkpoint with a head (e.g. BertForMaskedLM): the encoder is under `bert.`, the rest is not ours.
      for (const auto& [name, t] : tensors)
        if (starts_with(name, "bert.")) base[name.substr(5)] = t;
    } else {
      base = std::move(tensors);
    }
    io::load_weights(*model, base, source, ignore);
    model->eval();
    return model;
  }

  auto model = std::make_shared<BertForSequenceClassificationImpl>(config);
  io::TensorMap full;
  for (const auto& [name, t] : tensors) {
    if (prefixed || starts_with(name, "classifier."))
      full[name] = t;
    else
      full["bert." + name] = t;  // a bare BertModel checkpoint: the encoder goes under `bert.`
  }
  if (!has_classifier) {
    // A new classification head on a pre-trained encoder (as from_pretrained does): keep its initialisation.
    for (const auto& p : model->classifier->named_parameters()) full["classifier." + p.key()] = p.value().detach();
    for (auto it = full.begin(); it != full.end();)  // heads of other tasks (cls.*, ...) are not ours
      it = (starts_with(it->first, "bert.") || starts_with(it->first, "classifier.")) ? std::next(it) : full.erase(it);
  }
  io::load_weights(*model, full, source, ignore);
  model->eval();
  return model;
}

}  // namespace peft::bert
