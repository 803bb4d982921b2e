// File helpers shared by every writer: a run never leaves a half-written file behind.
#pragma once
#include <filesystem>
#include <string>

namespace peft {

// Writes `content` to `path` through `path.tmp.<pid>` + rename, so readers see the old or the new file, never a torn one.
void write_file_atomic(const std::filesystem::path& path, const std::string& content);

// Reads a whole file; a missing or unreadable file is an InputError naming it.
std::string read_file(const std::filesystem::path& path);

// Hex SHA-256 of a byte string (cache keys, checkpoint manifests).
std::string sha256_hex(const std::string& bytes);

}  // namespace peft
