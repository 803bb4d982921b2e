#include <gtest/gtest.h>

#include <filesystem>

#include "common/error.h"
#include "common/files.h"

namespace fs = std::filesystem;

TEST(Sha256, KnownVectors) {
  EXPECT_EQ(peft::sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(peft::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(peft::sha256_hex(std::string(1000, 'a')),
            "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3");
}

TEST(Files, AtomicWriteReplacesAndLeavesNoTemporary) {
  const fs::path dir = fs::temp_directory_path() / "peft_files_test";
  fs::remove_all(dir);
  const fs::path p = dir / "sub" / "a.txt";
  peft::write_file_atomic(p, "one");
  peft::write_file_atomic(p, "two");
  EXPECT_EQ(peft::read_file(p), "two");
  int n = 0;
  for (const auto& e : fs::directory_iterator(p.parent_path())) { (void)e; ++n; }
  EXPECT_EQ(n, 1);
  fs::remove_all(dir);
}

TEST(Files, MissingFileIsInputErrorNamingIt) {
  try {
    peft::read_file("/nonexistent/x.yaml");
    FAIL() << "expected InputError";
  } catch (const peft::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/x.yaml"), std::string::npos);
  }
}
