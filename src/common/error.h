// Errors that reach the user. Every failure the user can fix (bad config, bad file, bad flag) is an
// InputError: the CLI prints its one-line message and exits with code 2. Anything else is a bug: exit 1.
#pragma once
#include <stdexcept>
#include <string>

namespace peft {

inline constexpr int kExitOk = 0;
inline constexpr int kExitInternal = 1;
inline constexpr int kExitInput = 2;

class InputError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// "file: message" or "file:line: message" — the one shape every input error takes.
std::string where(const std::string& file, int line = 0);

[[noreturn]] void fail_input(const std::string& message);

}  // namespace peft
