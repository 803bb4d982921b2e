#include "data/sampler.h"

#include <cmath>
#include <sstream>

#include "common/error.h"

namespace peft::data {

Sampling parse_sampling(const std::string& name) {
  if (name == "proportional") return Sampling::kProportional;
  if (name == "uniform") return Sampling::kUniform;
  if (name == "temperature") return Sampling::kTemperature;
  fail_input("data.sampling: unknown value '" + name + "' (expected proportional, uniform or temperature)");
}

std::vector<double> mixture_probabilities(const std::vector<size_t>& sizes, Sampling sampling, double temperature) {
  if (sizes.empty()) fail_input("task mixture: no tasks");
  if (sampling == Sampling::kTemperature && !(temperature > 0)) fail_input("data.temperature: must be > 0");
  std::vector<double> w(sizes.size());
  for (size_t i = 0; i < sizes.size(); ++i) {
    const double n = static_cast<double>(sizes[i]);
    if (sizes[i] == 0) w[i] = 0;
    else if (sampling == Sampling::kUniform) w[i] = 1;
    else if (sampling == Sampling::kProportional) w[i] = n;
    else w[i] = std::pow(n, 1.0 / temperature);
  }
  double total = 0;
  for (double x : w) total += x;
  if (!(total > 0)) fail_input("task mixture: every task is empty");
  for (double& x : w) x /= total;
  return w;
}

MixtureSampler::MixtureSampler(const std::vector<size_t>& task_sizes, Sampling sampling, double temperature,
                               uint64_t seed)
    : probabilities_(mixture_probabilities(task_sizes, sampling, temperature)), rng_(seed) {
  double c = 0;
  for (double p : probabilities_) cumulative_.push_back(c += p);
}

size_t MixtureSampler::next_task() {
  ++steps_;
  return sample_index(cumulative_, rng_);
}

std::string MixtureSampler::state() const {
  return "mixture-v1 " + std::to_string(rng_.seed()) + " " + std::to_string(steps_) + " " +
         std::to_string(rng_.draws());
}

void MixtureSampler::restore(const std::string& state) {
  std::istringstream in(state);
  std::string tag;
  uint64_t seed = 0, steps = 0, draws = 0;
  if (!(in >> tag >> seed >> steps >> draws) || tag != "mixture-v1")
    fail_input("sampler state '" + state + "': malformed (expected 'mixture-v1 <seed> <steps> <draws>')");
  rng_.restore(seed, draws);
  steps_ = steps;
}

}  // namespace peft::data
