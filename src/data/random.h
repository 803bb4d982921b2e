// Portable random draws on top of std::mt19937_64, whose output sequence the C++ standard fixes. The
// standard distributions (uniform_int_distribution, discrete_distribution, shuffle) are implementation-
// defined, so the same seed would give different data orders under libstdc++ and libc++; these do not.
#pragma once
#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace peft::data {

// mt19937_64 that counts its draws, so its state can be saved as (seed, draws) and restored by discard().
class CountingRng {
 public:
  explicit CountingRng(uint64_t seed = 0) : seed_(seed), engine_(seed) {}
  uint64_t next() {
    ++draws_;
    return engine_();
  }
  uint64_t seed() const { return seed_; }
  uint64_t draws() const { return draws_; }
  void restore(uint64_t seed, uint64_t draws) {
    seed_ = seed;
    engine_.seed(seed);
    engine_.discard(draws);
    draws_ = draws;
  }

 private:
  uint64_t seed_;
  uint64_t draws_ = 0;
  std::mt19937_64 engine_;
};

// Double in [0, 1) from the top 53 bits.
inline double uniform01(CountingRng& rng) { return static_cast<double>(rng.next() >> 11) * 0x1.0p-53; }

// Integer in [0, n), n > 0, unbiased by rejection.
inline uint64_t uniform_below(CountingRng& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - (UINT64_MAX % n + 1) % n;  // largest multiple of n, minus 1
  uint64_t r;
  do r = rng.next();
  while (r > limit);
  return r % n;
}

// Fisher-Yates from the back, with uniform_below (same order as Python's random.shuffle structure).
template <typename T>
void portable_shuffle(std::vector<T>& v, CountingRng& rng) {
  for (size_t i = v.size(); i > 1; --i) {
    const size_t j = static_cast<size_t>(uniform_below(rng, i));
    std::swap(v[i - 1], v[j]);
  }
}

// Index drawn with probability proportional to weights (non-negative, positive sum): inverse CDF.
size_t sample_index(const std::vector<double>& cumulative, CountingRng& rng);

// Seed for an independent stream derived from a base seed and labels (SplitMix64 mixing of a FNV-1a hash).
uint64_t derive_seed(uint64_t base, const std::string& label, uint64_t n = 0);

}  // namespace peft::data
