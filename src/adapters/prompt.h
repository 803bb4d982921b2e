// Prompt tuning (methods.md §6): n soft token embeddings prepended to the encoder input, the attention
// mask extended with ones. Attached to the HasEmbeddingHooks module (T5 encoder stack, BERT embeddings)
// as its child `prompt` (`encoder.prompt.embedding`).
#pragma once
#include "adapters/adapter.h"
#include "models/hooks.h"

namespace peft::adapters {

struct PromptOptions {
  int64_t num_virtual_tokens = 20;
  double init_std = 1.0;  // N(0, init_std), torch.nn.Embedding's init as HF PEFT's RANDOM init
};

class PromptAdapter : public Adapter, public EmbeddingHook {
 public:
  PromptAdapter(std::string site_name, int64_t d_model, const PromptOptions& options);

  std::string kind() const override { return "prompt"; }
  std::string child_name() const override { return "prompt"; }
  void attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) override;
  std::pair<torch::Tensor, torch::Tensor> prepend(torch::Tensor embeddings, torch::Tensor attention_mask,
                                                  const ForwardContext& ctx) override;

  static int64_t expected_num_parameters(int64_t n, int64_t d) { return n * d; }

  torch::Tensor embedding;  // [n, d]
};

}  // namespace peft::adapters
