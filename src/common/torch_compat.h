// The one place where LibTorch 1.13 (Debian, CPU) and LibTorch 2.x (CUDA PyTorch) differ for us.
// Include this instead of calling version-specific APIs directly.
#pragma once
#include <torch/torch.h>
#include <torch/version.h>
#include <ATen/autocast_mode.h>

#include <sstream>
#include <string>
#include <type_traits>

namespace peft::compat {

inline constexpr bool kTorch2 = TORCH_VERSION_MAJOR >= 2;

// bf16 autocast scope on CUDA (no-op on CPU or when disabled).
class AutocastScope {
 public:
  AutocastScope(bool enable, torch::Device device) : active_(enable && device.is_cuda()) {
    if (!active_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    prev_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#else
    prev_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
#endif
    at::autocast::set_enabled(true);
  }
  ~AutocastScope() {
    if (!active_) return;
    at::autocast::clear_cache();
    at::autocast::set_enabled(false);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_dtype(at::kCUDA, prev_dtype_);
#else
    at::autocast::set_autocast_gpu_dtype(prev_dtype_);
#endif
  }
  AutocastScope(const AutocastScope&) = delete;
  AutocastScope& operator=(const AutocastScope&) = delete;

 private:
  bool active_;
  at::ScalarType prev_dtype_ = at::kHalf;
};

inline bool cuda_available() { return torch::cuda::is_available(); }

// The key of parameter p in torch::optim::Optimizer::state_: the TensorImpl's address printed as a string in
// LibTorch 1.13 (as its own optimizers write it), the address itself in later versions.
template <class StateMap>
typename StateMap::key_type optimizer_state_key(const StateMap&, const at::Tensor& p) {
  using Key = typename StateMap::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream text;
    text << static_cast<const void*>(p.unsafeGetTensorImpl());
    return text.str();
  } else {
    return static_cast<Key>(p.unsafeGetTensorImpl());
  }
}

}  // namespace peft::compat
