// Helpers shared by the data tests: a trivial tokenizer and a scratch directory.
#pragma once
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/prompt.h"

namespace peft::data::testing {

// Whitespace tokenizer: each word -> 10 + its length (so ids are predictable), then EOS = 1. pad = 0.
inline TokenCodec word_codec() {
  TokenCodec c;
  c.encode = [](const std::string& text) {
    std::vector<int64_t> ids;
    size_t i = 0;
    while (i < text.size()) {
      while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
      size_t j = i;
      while (j < text.size() && !std::isspace(static_cast<unsigned char>(text[j]))) ++j;
      if (j > i) ids.push_back(10 + static_cast<int64_t>(j - i));
      i = j;
    }
    ids.push_back(1);
    return ids;
  };
  c.pad_id = 0;
  c.eos_id = 1;
  c.fingerprint = "test-word-codec-v1";
  return c;
}

class TempDir {
 public:
  TempDir() {
    static std::atomic<int> counter{0};
    path_ = std::filesystem::temp_directory_path() /
            ("peft_data_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path write(const std::string& rel, const std::string& content) const {
    const auto p = path_ / rel;
    std::filesystem::create_directories(p.parent_path());
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }

 private:
  std::filesystem::path path_;
};

inline std::filesystem::path shared_dir() { return std::filesystem::path(PEFT_SOURCE_DIR "/../shared"); }

}  // namespace peft::data::testing
