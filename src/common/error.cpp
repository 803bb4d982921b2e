#include "common/error.h"

namespace peft {

std::string where(const std::string& file, int line) {
  return line > 0 ? file + ":" + std::to_string(line) + ": " : file + ": ";
}

void fail_input(const std::string& message) { throw InputError(message); }

}  // namespace peft
