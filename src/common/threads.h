// CPU threads for LibTorch and the BLAS under it. torch::set_num_threads sizes LibTorch's OpenMP pool only;
// OpenBLAS (libopenblas0-pthread) keeps its own pthread pool, sized to every core at load time, whose idle
// workers spin in sched_yield, as OpenMP's do. Two pools of N threads on N cores fight: on the 2-core
// machine a T5-small LoRA step took 3.16 s with 2 + 2 threads, 1.97 s with 1 + 1, and 1.59 s with OpenBLAS
// at 2 and OpenMP at 1 (`peft bench --methods lora`, idle). So when OpenBLAS's pool is present, the
// matmuls get all `n` threads and LibTorch's own element-wise loops run on the calling thread; otherwise
// (MKL or CUDA builds) LibTorch gets `n`.
#pragma once
#include <dlfcn.h>
#include <torch/torch.h>

namespace peft {

// The `n` of the last set_cpu_threads call (1 before any): what peft's own parallel loops may use.
inline int cpu_threads_setting = 1;
inline int cpu_threads() { return cpu_threads_setting; }

inline void set_cpu_threads(int n) {
  cpu_threads_setting = n < 1 ? 1 : n;
  using Fn = void (*)(int);
  if (auto openblas_set_num_threads = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    openblas_set_num_threads(n);
    torch::set_num_threads(1);
  } else {
    torch::set_num_threads(n);
  }
}

}  // namespace peft
