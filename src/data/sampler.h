// Task mixture sampling with exact, serialisable state.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/random.h"

namespace peft::data {

enum class Sampling { kProportional, kUniform, kTemperature };
Sampling parse_sampling(const std::string& name);  // "proportional" | "uniform" | "temperature"

// p_i for task sizes n_i: proportional p_i ∝ n_i; uniform p_i = 1/K; temperature p_i ∝ n_i^(1/T)
// (T = 1 is proportional, T -> inf uniform). Tasks with n_i = 0 get p_i = 0.
std::vector<double> mixture_probabilities(const std::vector<size_t>& task_sizes, Sampling sampling,
                                          double temperature = 1.0);

// Draws task indices i.i.d. from the mixture. Deterministic given the seed on every platform (see random.h).
class MixtureSampler {
 public:
  MixtureSampler(const std::vector<size_t>& task_sizes, Sampling sampling, double temperature, uint64_t seed);

  size_t next_task();
  const std::vector<double>& probabilities() const { return probabilities_; }
  uint64_t steps() const { return steps_; }

  // "mixture-v1 <seed> <steps> <rng draws>"; restore() continues the exact same sequence.
  std::string state() const;
  void restore(const std::string& state);  // InputError on a malformed string

 private:
  std::vector<double> probabilities_;
  std::vector<double> cumulative_;
  CountingRng rng_;
  uint64_t steps_ = 0;
};

}  // namespace peft::data
