// A small pool of worker threads for peft's own CPU kernels (models/skinny_linear.cpp, decode_attention, the
// routed low-rank products, ...), so they can use the `run.threads` cores while OpenBLAS's pool is idle. An idle
// worker spins 50 us for the next job, then sleeps on a condition variable: decoding calls the kernels back to
// back (a wake-up from sleep took 5-22 us on the 2-core VM, of a ~100 us kernel), and a pool that never sleeps
// would take a core from OpenBLAS during the GEMMs that follow.
#pragma once
#include <cstdint>
#include <functional>

namespace peft {

// Splits [0, n) into `parts` contiguous ranges and runs fn(begin, end) on each, one on the calling thread
// and the others on pool workers; returns when all are done. parts <= 1 runs fn(0, n) inline. Calls from
// several threads at once are serialised.
void run_in_parts(int64_t n, int parts, const std::function<void(int64_t, int64_t)>& fn);

// The same for work given per index: fn(i) for every i in [0, n), split into `parts` ranges.
void run_for_each(int64_t n, int parts, const std::function<void(int64_t)>& fn);

}  // namespace peft
