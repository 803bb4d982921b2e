// Poly/MHR's mixing of the inventory into one adapter per task (methods.md §7-§8), as one differentiable op on
// the CPU: for routing weights w [U, h, S] and the skills A [h, S, d_in/h, r], B [h, S, r, d_out/h],
//   a_t[u, j, q d_in/h + i]  = sum_s w[u, q, s] A[q, s, i, j]   (each task's A, heads stacked, stored transposed)
//   b[u, j, q d_out/h + o]   = sum_s w[u, q, s] B[q, s, j, o]   (heads side by side)
// written straight into the layouts routed_lowrank_linear reads. In LibTorch ops this was a product over the
// heads plus a permuted copy each way, ~10 ops and 0.4-0.5 ms forward and backward per adapted linear for
// ~0.5 MFLOP of work.
#pragma once
#include <torch/torch.h>

#include <utility>

namespace peft::routing {

// {a_t [U, r, d_in], b [U, r, d_out]}, both contiguous. Differentiable with respect to all three inputs.
std::pair<torch::Tensor, torch::Tensor> mix_inventory(const torch::Tensor& w, const torch::Tensor& lora_a,
                                                      const torch::Tensor& lora_b);

// Whether mix_inventory runs for these operands: CPU float32 of the shapes above.
bool mix_inventory_applies(const torch::Tensor& w, const torch::Tensor& lora_a, const torch::Tensor& lora_b);

// The routing weights Router::weights defines, from logits z [U, h, S], in one differentiable op (in LibTorch ops:
// ~12 autograd nodes per adapted linear and step, 0.2 ms of the mixing's ~1 ms). u = sigmoid((z + log n -
// log(1 - n)) / tau) with the uniform noise n clamped to [1e-6, 1 - 1e-6] when `noise` is defined, else
// sigmoid(z); straight_through: the forward takes hard = [u > 0.5] and the backward u's gradient. Each row of S
// is then divided by its sum + 1e-12. Differentiable with respect to z.
torch::Tensor routing_weights(const torch::Tensor& z, const torch::Tensor& noise, double temperature,
                              bool straight_through);

// Whether routing_weights runs: CPU float32 z (and noise, when defined, of z's shape).
bool routing_weights_applies(const torch::Tensor& z, const torch::Tensor& noise);

}  // namespace peft::routing
