// A small pool of sleeping worker threads for peft's own CPU kernels (models/skinny_linear.cpp), so they can
// use the `run.threads` cores while OpenBLAS's pool is idle, without a third pool that spins: workers block
// on a condition variable between jobs (a wake-up costs microseconds; the kernels it serves take 50 us+).
#pragma once
#include <cstdint>
#include <functional>

namespace peft {

// Splits [0, n) into `parts` contiguous ranges and runs fn(begin, end) on each, one on the calling thread
// and the others on pool workers; returns when all are done. parts <= 1 runs fn(0, n) inline. Calls from
// several threads at once are serialised.
void run_in_parts(int64_t n, int parts, const std::function<void(int64_t, int64_t)>& fn);

}  // namespace peft
