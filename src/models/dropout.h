// Dropout for every model and adapter in peft: y = x * m / (1 - p) with m ~ Bernoulli(1 - p), as
// torch.nn.functional.dropout. On the CPU the mask comes from a counter-based generator (splitmix64 of a
// per-call seed and the element index) instead of LibTorch's `bernoulli_`, which draws one mt19937 number per
// element: 0.25 s for the 31 M elements a T5-small training step drops (batch 8, 128 + 32 tokens), a fifth
// of the whole LoRA step. The seed is drawn from LibTorch's default CPU generator, so a run is reproduced by
// its seed and resumed exactly from a saved RNG state; the mask does not depend on the thread count.
// Other devices and dtypes use torch::dropout.
#pragma once
#include <torch/torch.h>

namespace peft {

torch::Tensor dropout(const torch::Tensor& x, double p, bool training);

// dropout(relu(x), p, training) in one pass (T5 v1.0's feed-forward): the kept mask also requires x > 0, so the
// backward is one masked scale instead of dropout's and relu's. Same values, gradients and random stream.
torch::Tensor relu_dropout(const torch::Tensor& x, double p, bool training);

// The CPU mask kernel under both: y = x * keep / (1 - p) over n floats, keep[i] in {0, 1} from the counter hash
// of `seed` and i (and x[i] > 0 with `relu`). `vectorised` picks the AVX2 loop when the CPU has it; the scalar
// loop is the reference it must equal bit for bit (tests).
void dropout_mask_kernel(const float* x, float* y, uint8_t* keep, int64_t n, double p, uint64_t seed, bool relu,
                         bool vectorised);

}  // namespace peft
