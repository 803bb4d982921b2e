// Cross-key checks, run once after the YAML file and the `--set` overrides are merged. Single-key checks
// (type, range, enum) happen while reading, from the option table.
#pragma once
#include <string>
#include <vector>

#include "config/config.h"

namespace peft {

struct ConfigProblem {
  std::string key;      // the key blamed (its file line or `--set` is shown in the message)
  std::string message;  // e.g. "must be 1 when routing.method is poly (use mhr for several heads), got 4"
};

// Every problem, in a fixed order; empty = valid. load_config reports the first one as an InputError.
std::vector<ConfigProblem> validate_config(const Config& config);

}  // namespace peft
