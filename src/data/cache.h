// Tokenised tasks, cached on disk.
//
// One cache file per task: <cache_dir>/<task>.<key[0:16]>.enc, key = SHA-256 of (format version, tokenizer
// fingerprint, the task's content_sha256 = hash of its source files, PromptOptions::fingerprint(), the ids of
// Task::examples and Task::test_examples in order, so caps and hold-outs select their own file). Any
// change of tokenizer, data file or formatting gives a new key, hence a new file; a stale, foreign or corrupt
// file is treated as a miss and rewritten (write_file_atomic, so a crash never leaves a torn cache).
//
// Binary format (all integers little-endian):
//   magic "PEFTENC\0" (8 bytes), u32 format_version, 64 bytes key (hex), u32 n_train, u32 n_test,
//   then n_train + n_test records: i32 example_index, u32 n_source, n_source x i64, u32 n_target, n_target x i64.
#pragma once
#include <filesystem>
#include <string>
#include <vector>

#include "data/prompt.h"
#include "data/task.h"

namespace peft::data {

inline constexpr uint32_t kEncodedFormatVersion = 1;

struct EncodedTask {
  std::vector<Encoded> train;  // from Task::examples
  std::vector<Encoded> test;   // from Task::test_examples
};

struct CacheStats {
  size_t hits = 0;
  size_t misses = 0;
};

// Tokenises every task (task_index = position in suite.tasks). cache_dir empty = no cache.
std::vector<EncodedTask> encode_suite(const TaskSuite& suite, const TokenCodec& codec, const PromptOptions& options,
                                      const std::filesystem::path& cache_dir = {}, CacheStats* stats = nullptr);

EncodedTask encode_task(const Task& task, int32_t task_index, const TokenCodec& codec, const PromptOptions& options);

std::string cache_key(const Task& task, const TokenCodec& codec, const PromptOptions& options);
std::filesystem::path cache_path(const std::filesystem::path& cache_dir, const Task& task, const std::string& key);

// Serialisation (exposed for tests). decode returns false on any mismatch or corruption.
std::string serialize_encoded(const EncodedTask& task, const std::string& key);
bool deserialize_encoded(const std::string& bytes, const std::string& key, int32_t task_index, EncodedTask* out);

}  // namespace peft::data
