// The places where adapters attach to a backbone (see docs/architecture.md). A model exposes each site
// once; an adapter kind implements the hook of the site(s) it needs and is registered there by name.
#pragma once
#include <torch/torch.h>

#include <memory>
#include <utility>
#include <vector>

#include "models/context.h"

namespace peft {

// Attaches to a linear layer: y = base(transform_input(x)), then transform_output(x, y). A linear with one hook
// first offers it the whole computation (fused_forward): LoRA / Poly / MHR add their update inside the base's
// GEMM output and gradient (models/routed_lowrank.h) instead of in a second [tokens, d_out] tensor.
// LoRA / Poly / MHR / AdaMix-LoRA add to the output; (IA)^3 scales the output (k, v) or the input (wo).
// transform_output owns `y` (the caller passes its only reference). LoRA adds its low-rank product in the GEMM
// that starts from y (addmm, beta = 1), out of place: in place on a view of y, autograd would wrap the base
// linear's gradient in a CopySlices (a clone and a copy per adapted linear in every backward).
class LinearHook {
 public:
  virtual ~LinearHook() = default;
  virtual torch::Tensor transform_input(const torch::Tensor& x, const ForwardContext& ctx) { return x; }
  virtual torch::Tensor transform_output(const torch::Tensor& x, torch::Tensor y, const ForwardContext& ctx) {
    return y;
  }
  // The same result as transform_output(x, x W^T + bias) computed in one op, or an undefined tensor when the
  // hook has no such op for these operands.
  virtual torch::Tensor fused_forward(const torch::Tensor& x, const torch::Tensor& weight, const torch::Tensor& bias,
                                      const ForwardContext& ctx) {
    return {};
  }
};

// Attaches to a sub-layer (attention or FFN): given the sub-layer's input (after the pre-norm in T5; the
// residual-stream input in BERT) and its output (before dropout+residual in T5; before LayerNorm(.+x) in
// BERT), returns the new output. Sequential bottleneck adapters use `output`; parallel ones use `input`.
class SublayerHook {
 public:
  virtual ~SublayerHook() = default;
  virtual torch::Tensor apply(const torch::Tensor& input, torch::Tensor output, const ForwardContext& ctx) = 0;
};

// Attaches to an attention module: extra key/value rows prepended to K and V (prefix tuning, MAM).
// Returns {keys, values}, each [B, n_heads, prefix_len, d_head], always visible through the mask.
class PrefixHook {
 public:
  virtual ~PrefixHook() = default;
  virtual std::pair<torch::Tensor, torch::Tensor> prefix(int64_t batch, const ForwardContext& ctx) = 0;
};

// Attaches to the encoder input: soft tokens prepended to the embeddings (prompt tuning).
// Returns {embeddings, attention_mask} with the prompt prepended.
class EmbeddingHook {
 public:
  virtual ~EmbeddingHook() = default;
  virtual std::pair<torch::Tensor, torch::Tensor> prepend(torch::Tensor embeddings, torch::Tensor attention_mask,
                                                          const ForwardContext& ctx) = 0;
};

// Mixins a model's modules inherit so adapters can find their sites by walking named_modules() and
// dynamic_cast-ing: the module's Hugging Face name says where it is, `kind` says what it is.
enum class SublayerKind { kSelfAttention, kCrossAttention, kFeedForward };

struct HasSublayerHooks {
  virtual ~HasSublayerHooks() = default;
  SublayerKind sublayer_kind = SublayerKind::kFeedForward;
  std::vector<std::shared_ptr<SublayerHook>> sublayer_hooks;
  // Runs the hooks in order: output = hook(input, output).
  torch::Tensor run_sublayer_hooks(const torch::Tensor& input, torch::Tensor output, const ForwardContext& ctx) {
    for (auto& h : sublayer_hooks) output = h->apply(input, std::move(output), ctx);
    return output;
  }
};

struct HasPrefixHooks {
  virtual ~HasPrefixHooks() = default;
  std::vector<std::shared_ptr<PrefixHook>> prefix_hooks;
};

struct HasEmbeddingHooks {
  virtual ~HasEmbeddingHooks() = default;
  std::vector<std::shared_ptr<EmbeddingHook>> embedding_hooks;
};

}  // namespace peft
