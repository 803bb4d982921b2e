// CPU thread count for LibTorch AND the BLAS under it. torch::set_num_threads sizes LibTorch's OpenMP pool
// only; OpenBLAS (libopenblas0-pthread) keeps its own pthread pool, sized to every core at load time, whose
// idle workers spin in sched_yield. Left alone, a `--threads 1` run still ran 2 BLAS threads (78,797
// sched_yield calls in one 50-step adapt cell), and 2 OpenMP + 2 BLAS threads on 2 busy cores slowed
// element-wise work (AdamW) by an order of magnitude.
#pragma once
#include <dlfcn.h>
#include <torch/torch.h>

namespace peft {

inline void set_cpu_threads(int n) {
  torch::set_num_threads(n);
  using Fn = void (*)(int);
  if (auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) fn(n);
}

}  // namespace peft
