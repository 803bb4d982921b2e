#include "cli/commands.h"

namespace peft::cli {

int cmd_config(const Config& config, std::ostream& out) {
  out << to_yaml(config);
  return 0;
}

int cmd_config_reference(std::ostream& out) {
  out << reference_yaml();
  return 0;
}

}  // namespace peft::cli
