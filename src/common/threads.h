// CPU threads for LibTorch and the BLAS under it. torch::set_num_threads sizes LibTorch's OpenMP pool only;
// OpenBLAS (libopenblas0-pthread) keeps its own pthread pool, sized to every core at load time, whose idle
// workers spin in sched_yield, as OpenMP's do. Two pools of N threads on N cores fight: on the 2-core
// machine a T5-small LoRA step took 3.16 s with 2 + 2 threads, 1.97 s with 1 + 1, and 1.59 s with OpenBLAS
// at 2 and OpenMP at 1 (`peft bench --methods lora`, idle). So when OpenBLAS's pool is present, the
// matmuls get all `n` threads and LibTorch's own element-wise loops run on the calling thread; otherwise
// (MKL or CUDA builds) LibTorch gets `n`.
#pragma once
#include <dlfcn.h>

#include <cstdlib>
#include <torch/torch.h>

namespace peft {

// The `n` of the last set_cpu_threads call (1 before any): what peft's own parallel loops may use.
inline int cpu_threads_setting = 1;
inline int cpu_threads() { return cpu_threads_setting; }

// OpenBLAS's idle workers spin in sched_yield for 2^28 cycles (~0.1 s) after each GEMM before they sleep, and
// peft's own parallel loops (per-example and per-head products, decoding's skinny_linear) run between GEMMs on
// the same cores: on 2 cores each such loop shares its second core with a spinning worker. OpenBLAS reads its
// spin limit from OPENBLAS_THREAD_TIMEOUT when it loads, before main; unless the user set it, peft sets it to
// 4 (2^4 cycles: sleep almost at once, woken by a condition variable when a GEMM needs them), re-reads the
// environment and stops the workers, which OpenBLAS restarts with the new limit at the next threaded GEMM.
// (`peft bench --methods lora,mhr`, 4 processes each way, alternating: MHR step median 1.90 s vs 2.07, MHR/LoRA
// 1.12 vs 1.19, LoRA-unmerged generation 189 vs 177 new tokens/s.) A BLAS without these functions is left alone.
inline void shorten_blas_spin() {
  static const bool done = [] {
    if (getenv("OPENBLAS_THREAD_TIMEOUT") != nullptr) return true;
    using VoidFn = void (*)();
    using IntFn = int (*)();
    auto read_env = reinterpret_cast<VoidFn>(dlsym(RTLD_DEFAULT, "openblas_read_env"));
    auto shutdown = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "blas_thread_shutdown_"));
    if (read_env == nullptr || shutdown == nullptr) return false;
    setenv("OPENBLAS_THREAD_TIMEOUT", "4", /*overwrite=*/0);
    read_env();
    shutdown();
    return true;
  }();
  (void)done;
}

inline void set_cpu_threads(int n) {
  cpu_threads_setting = n < 1 ? 1 : n;
  using Fn = void (*)(int);
  if (auto openblas_set_num_threads = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) {
    shorten_blas_spin();
    openblas_set_num_threads(n);
    torch::set_num_threads(1);
  } else {
    torch::set_num_threads(n);
  }
}

}  // namespace peft
