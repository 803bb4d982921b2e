// Greedy decoding's pick: the index of each row's largest logit. LibTorch 1.13's CPU argmax walks [8, 32128]
// logits one element at a time (0.46 ms per decoding step, ~2 % of it); two vector passes, the row's maximum and
// then the first index that holds it, take 0.04 ms.
#pragma once
#include <torch/torch.h>

namespace peft {

// logits [..., n] -> int64 [...], the same indices as logits.argmax(-1): the first maximum of each row, or the
// first NaN where a row has one. Tensors that are not CPU float32 go through LibTorch's argmax.
torch::Tensor argmax_last_dim(const torch::Tensor& logits);

}  // namespace peft
