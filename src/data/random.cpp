#include "data/random.h"

#include <algorithm>

namespace peft::data {

size_t sample_index(const std::vector<double>& cumulative, CountingRng& rng) {
  const double u = uniform01(rng) * cumulative.back();
  // First bucket whose cumulative weight exceeds u; zero-weight buckets are never chosen.
  const auto it = std::upper_bound(cumulative.begin(), cumulative.end(), u);
  return it == cumulative.end() ? cumulative.size() - 1 : static_cast<size_t>(it - cumulative.begin());
}

namespace {
uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}
}  // namespace

uint64_t derive_seed(uint64_t base, const std::string& label, uint64_t n) {
  uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a 64
  for (unsigned char c : label) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return splitmix64(splitmix64(base ^ h) + n);
}

}  // namespace peft::data
