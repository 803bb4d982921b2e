// Shared by the test binaries: run something that must fail with a user-facing error, get its one-line message.
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "common/error.h"

namespace peft::test {

// Runs `fn`, expects a peft::InputError, returns its message ("" and a test failure when none is thrown).
template <typename Fn>
std::string input_error(Fn&& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no InputError thrown";
  return "";
}

}  // namespace peft::test
