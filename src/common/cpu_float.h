// The test every peft CPU kernel makes before taking a tensor: float32 in host memory. Anything else (CUDA,
// half precision, double) goes through LibTorch's own ops.
#pragma once
#include <torch/torch.h>

namespace peft {

inline bool is_cpu_float(const torch::Tensor& t) { return t.device().is_cpu() && t.scalar_type() == torch::kFloat; }

}  // namespace peft
