// Where the tokenizer tests find the real vocabularies (/work/shared/models, never copied into the repo) and
// the reference cases (tests/fixtures/tokenizers, copied from /work/shared/fixtures).
#pragma once
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace peft_test {

inline std::filesystem::path shared_models_dir() { return std::filesystem::path(PEFT_SOURCE_DIR) / ".." / "shared" / "models"; }

inline std::filesystem::path tokenizer_fixture(const std::string& name) {
  return std::filesystem::path(PEFT_SOURCE_DIR) / "tests" / "fixtures" / "tokenizers" / name;
}

inline std::vector<nlohmann::json> read_jsonl(const std::filesystem::path& path) {
  std::vector<nlohmann::json> rows;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line))
    if (!line.empty()) rows.push_back(nlohmann::json::parse(line));
  return rows;
}

inline std::string case_id(const nlohmann::json& row) {
  return row.at("id").is_string() ? row.at("id").get<std::string>() : std::to_string(row.at("id").get<int>());
}

}  // namespace peft_test
