// A small T5-shaped module tree (same Hugging Face names, same hook sites) so the adapter tests run
// without the real backbones: encoder.block.i.layer.0.SelfAttention.{q,k,v,o}, encoder.block.i.layer.1.
// DenseReluDense.{wi,wo}, plus a `classifier` for modules_to_save.
#pragma once
#include <torch/torch.h>

#include "adapters/adapter.h"
#include "models/hooks.h"
#include "models/linear.h"

namespace peft::testing {

inline torch::Tensor rms_norm(const torch::Tensor& x) { return x * torch::rsqrt(x.pow(2).mean(-1, true) + 1e-6); }

// T5-style attention: no score scaling; prefixes (from hooks) prepended to K and V and always visible.
struct ToyAttentionImpl : torch::nn::Module, HasPrefixHooks {
  ToyAttentionImpl(int64_t d, int64_t h) : n_heads(h), d_kv(d / h) {
    q = register_module("q", AdaptableLinear(d, d, false));
    k = register_module("k", AdaptableLinear(d, d, false));
    v = register_module("v", AdaptableLinear(d, d, false));
    o = register_module("o", AdaptableLinear(d, d, false));
  }
  torch::Tensor heads(const torch::Tensor& x) const {  // [B, L, d] -> [B, h, L, d_kv]
    return x.view({x.size(0), x.size(1), n_heads, d_kv}).transpose(1, 2);
  }
  // Returns the context [B, h, L, d_kv] before `o` when `context` is set (identity tests).
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, const ForwardContext& ctx,
                        torch::Tensor* context = nullptr) {
    const int64_t B = x.size(0);
    torch::Tensor Q = heads(q(x, ctx)), K = heads(k(x, ctx)), V = heads(v(x, ctx));
    torch::Tensor bias = (1.0 - mask.to(x.dtype())).view({B, 1, 1, -1}) * -1e9;
    for (auto& hook : prefix_hooks) {
      auto [pk, pv] = hook->prefix(B, ctx);
      K = torch::cat({pk, K}, 2);
      V = torch::cat({pv, V}, 2);
      bias = torch::cat({torch::zeros({B, 1, 1, pk.size(2)}, bias.options()), bias}, 3);
    }
    torch::Tensor p = torch::softmax(torch::matmul(Q, K.transpose(-1, -2)) + bias, -1);
    torch::Tensor c = torch::matmul(p, V);
    if (context) *context = c;
    return o(c.transpose(1, 2).reshape({B, -1, n_heads * d_kv}), ctx);
  }
  int64_t n_heads, d_kv;
  AdaptableLinear q{nullptr}, k{nullptr}, v{nullptr}, o{nullptr};
};
TORCH_MODULE(ToyAttention);

struct ToySelfAttentionLayerImpl : torch::nn::Module, HasSublayerHooks {
  ToySelfAttentionLayerImpl(int64_t d, int64_t h) {
    sublayer_kind = SublayerKind::kSelfAttention;
    SelfAttention = register_module("SelfAttention", ToyAttention(d, h));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, const ForwardContext& ctx) {
    torch::Tensor z = rms_norm(x);
    return x + run_sublayer_hooks(z, SelfAttention->forward(z, mask, ctx), ctx);
  }
  ToyAttention SelfAttention{nullptr};
};
TORCH_MODULE(ToySelfAttentionLayer);

struct ToyDenseReluDenseImpl : torch::nn::Module {
  ToyDenseReluDenseImpl(int64_t d, int64_t d_ff) {
    wi = register_module("wi", AdaptableLinear(d, d_ff, false));
    wo = register_module("wo", AdaptableLinear(d_ff, d, false));
  }
  torch::Tensor forward(const torch::Tensor& x, const ForwardContext& ctx) { return wo(torch::relu(wi(x, ctx)), ctx); }
  AdaptableLinear wi{nullptr}, wo{nullptr};
};
TORCH_MODULE(ToyDenseReluDense);

struct ToyLayerFFImpl : torch::nn::Module, HasSublayerHooks {
  ToyLayerFFImpl(int64_t d, int64_t d_ff) {
    sublayer_kind = SublayerKind::kFeedForward;
    DenseReluDense = register_module("DenseReluDense", ToyDenseReluDense(d, d_ff));
  }
  torch::Tensor forward(const torch::Tensor& x, const ForwardContext& ctx) {
    torch::Tensor z = rms_norm(x);
    return x + run_sublayer_hooks(z, DenseReluDense->forward(z, ctx), ctx);
  }
  ToyDenseReluDense DenseReluDense{nullptr};
};
TORCH_MODULE(ToyLayerFF);

struct ToyBlockImpl : torch::nn::Module {
  ToyBlockImpl(int64_t d, int64_t h, int64_t d_ff) {
    attn = ToySelfAttentionLayer(d, h);
    ff = ToyLayerFF(d, d_ff);
    layer = register_module("layer", torch::nn::ModuleList(attn, ff));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, const ForwardContext& ctx) {
    return ff->forward(attn->forward(x, mask, ctx), ctx);
  }
  torch::nn::ModuleList layer{nullptr};
  ToySelfAttentionLayer attn{nullptr};
  ToyLayerFF ff{nullptr};
};
TORCH_MODULE(ToyBlock);

struct ToyStackImpl : torch::nn::Module, HasEmbeddingHooks {
  ToyStackImpl(int64_t d, int64_t h, int64_t d_ff, int64_t n_layers) {
    block = register_module("block", torch::nn::ModuleList());
    for (int64_t i = 0; i < n_layers; ++i) {
      blocks.push_back(ToyBlock(d, h, d_ff));
      block->push_back(blocks.back());
    }
  }
  torch::Tensor forward(torch::Tensor x, torch::Tensor mask, const ForwardContext& ctx) {
    for (auto& hook : embedding_hooks) std::tie(x, mask) = hook->prepend(x, mask, ctx);
    for (auto& b : blocks) x = b->forward(x, mask, ctx);
    return x;
  }
  torch::nn::ModuleList block{nullptr};
  std::vector<ToyBlock> blocks;
};
TORCH_MODULE(ToyStack);

struct ToyModelImpl : torch::nn::Module {
  static constexpr int64_t d = 16, h = 4, d_ff = 32, n_layers = 2;
  explicit ToyModelImpl(uint64_t seed = 0) {
    torch::manual_seed(seed);
    encoder = register_module("encoder", ToyStack(d, h, d_ff, n_layers));
    classifier = register_module("classifier", torch::nn::Linear(d, 3));
  }
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& mask, const ForwardContext& ctx = {}) {
    return classifier(encoder->forward(x, mask, ctx));
  }
  ToyStack encoder{nullptr};
  torch::nn::Linear classifier{nullptr};
};
TORCH_MODULE(ToyModel);

inline adapters::ModelInfo toy_info() {
  return {"t5", ToyModelImpl::d, ToyModelImpl::h, ToyModelImpl::d / ToyModelImpl::h};
}

struct ToyBatch {
  torch::Tensor x, mask;
};
inline ToyBatch toy_batch(uint64_t seed = 123) {
  torch::manual_seed(seed);
  torch::Tensor x = torch::randn({2, 5, ToyModelImpl::d});
  torch::Tensor mask = torch::ones({2, 5}, torch::kLong);
  mask[1][4] = 0;  // one padded position
  return {x, mask};
}

// Max |a - b|.
inline double max_diff(const torch::Tensor& a, const torch::Tensor& b) { return (a - b).abs().max().item<double>(); }

// Max |a - b| / (1 + |b|): fp32 closeness at atol = rtol (merge identities at 1e-5 on logits of size ~10).
inline double max_rel_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return ((a - b).abs() / (1 + b.abs())).max().item<double>();
}

// Fills every adapter parameter with random values so merges and gradients are not trivially zero.
// (IA)^3 vectors stay around 1 (so unmerge's division is well conditioned).
inline void randomize(const std::vector<std::pair<std::string, torch::Tensor>>& params, uint64_t seed = 7) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(seed);
  for (auto [name, p] : params) {
    const bool scale = name.size() >= 5 && name.compare(name.size() - 5, 5, "ia3_l") == 0;
    p.copy_(torch::randn_like(p) * 0.1 + (scale ? 1.0 : 0.0));
  }
}

}  // namespace peft::testing
