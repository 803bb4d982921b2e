// T5's layer norm (RMS norm, no mean subtraction, no bias): weight * (x * rsqrt(mean(x^2) + eps)), as
// Hugging Face's T5LayerNorm. On the CPU in float32 it is one fused autograd function: a pass to read each
// row and one to write it, and the same in backward. Written with LibTorch ops it was pow, mean, add, rsqrt
// and two multiplications forward and about twice that backward, each a pass over [tokens, d_model] on one
// thread, at 32 norms per T5-small training step.
#pragma once
#include <torch/torch.h>

namespace peft {

// x [..., n], weight [n]. Other devices and dtypes: the same formula with LibTorch ops (as HF writes it,
// including its cast back to half-precision weights).
torch::Tensor rms_norm(const torch::Tensor& x, const torch::Tensor& weight, double eps);

}  // namespace peft
