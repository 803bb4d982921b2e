#include "adapters/prompt.h"

#include "common/error.h"

namespace peft::adapters {

PromptAdapter::PromptAdapter(std::string site_name, int64_t d, const PromptOptions& o) : Adapter(std::move(site_name)) {
  if (o.num_virtual_tokens <= 0) throw InputError("prompt num_virtual_tokens: must be positive");
  embedding = register_parameter("embedding", torch::empty({o.num_virtual_tokens, d}));
  torch::NoGradGuard no_grad;
  embedding.normal_(0.0, o.init_std);
}

void PromptAdapter::attach(torch::nn::Module& site, const std::shared_ptr<Adapter>& self) {
  site.register_module(child_name(), self);
  dynamic_cast<HasEmbeddingHooks&>(site).embedding_hooks.push_back(std::dynamic_pointer_cast<PromptAdapter>(self));
}

std::pair<torch::Tensor, torch::Tensor> PromptAdapter::prepend(torch::Tensor embeddings, torch::Tensor attention_mask,
                                                               const ForwardContext&) {
  const int64_t B = embeddings.size(0), n = embedding.size(0);
  torch::Tensor prompt = embedding.to(embeddings.dtype()).unsqueeze(0).expand({B, n, embedding.size(1)});
  torch::Tensor out = torch::cat({prompt, embeddings}, 1);
  if (!attention_mask.defined()) return {out, attention_mask};
  torch::Tensor ones = torch::ones({B, n}, attention_mask.options());
  return {out, torch::cat({ones, attention_mask}, 1)};
}

}  // namespace peft::adapters
