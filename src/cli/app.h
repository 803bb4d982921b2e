#pragma once

namespace peft::cli {
// Parses the command line, runs one subcommand, and maps errors to exit codes (0 ok, 2 input, 1 internal).
int run(int argc, char** argv);
}  // namespace peft::cli
