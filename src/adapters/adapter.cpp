#include "adapters/adapter.h"

#include <stdexcept>

namespace peft::adapters {

void Adapter::merge() { throw std::logic_error(kind() + " adapter at '" + site_name_ + "' cannot be merged"); }
void Adapter::unmerge() { throw std::logic_error(kind() + " adapter at '" + site_name_ + "' cannot be unmerged"); }

void Adapter::register_flat_on(torch::nn::Module& site) {
  for (const auto& child : named_children()) site.register_module(child.key(), child.value());
  for (const auto& p : named_parameters(/*recurse=*/false)) site.register_parameter(p.key(), p.value(), p.value().requires_grad());
}

int64_t numel_of(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters()) n += p.numel();
  return n;
}

}  // namespace peft::adapters
