// Placeholders until the lead wires the real implementations (each replaces its function here).
#include <iostream>

#include "cli/commands.h"
#include "common/error.h"

namespace peft::cli {
namespace {
[[noreturn]] void not_yet(const std::string& command) {
  throw InputError("peft " + command + ": not implemented yet");
}
}  // namespace

int cmd_bench(const Config&, const BenchOptions&) { not_yet("bench"); }

}  // namespace peft::cli
