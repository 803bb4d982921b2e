#include "data/cache.h"

#include <cstring>
#include <system_error>

#include "common/files.h"

namespace fs = std::filesystem;

namespace peft::data {

namespace {

constexpr char kMagic[8] = {'P', 'E', 'F', 'T', 'E', 'N', 'C', '\0'};

void put_u32(std::string& s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_i64(std::string& s, int64_t v) {
  const auto u = static_cast<uint64_t>(v);
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((u >> (8 * i)) & 0xff));
}

struct Reader {
  const std::string& s;
  size_t pos = 0;
  bool ok = true;
  uint64_t get(int bytes) {
    if (!ok || pos + static_cast<size_t>(bytes) > s.size()) {
      ok = false;
      return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v |= static_cast<uint64_t>(static_cast<unsigned char>(s[pos + i])) << (8 * i);
    pos += static_cast<size_t>(bytes);
    return v;
  }
};

bool read_ids(Reader& r, std::vector<int64_t>& ids) {
  const uint64_t n = r.get(4);
  if (!r.ok || n * 8 > r.s.size() - r.pos) return false;
  ids.resize(n);
  for (auto& id : ids) id = static_cast<int64_t>(r.get(8));
  return r.ok;
}

}  // namespace

std::string serialize_encoded(const EncodedTask& task, const std::string& key) {
  std::string s(kMagic, sizeof(kMagic));
  put_u32(s, kEncodedFormatVersion);
  std::string k = key;
  k.resize(64, ' ');
  s += k;
  put_u32(s, static_cast<uint32_t>(task.train.size()));
  put_u32(s, static_cast<uint32_t>(task.test.size()));
  for (const auto* list : {&task.train, &task.test})
    for (const auto& e : *list) {
      put_u32(s, static_cast<uint32_t>(e.example_index));
      put_u32(s, static_cast<uint32_t>(e.source_ids.size()));
      for (auto id : e.source_ids) put_i64(s, id);
      put_u32(s, static_cast<uint32_t>(e.target_ids.size()));
      for (auto id : e.target_ids) put_i64(s, id);
    }
  return s;
}

bool deserialize_encoded(const std::string& bytes, const std::string& key, int32_t task_index, EncodedTask* out) {
  if (bytes.size() < 8 + 4 + 64 + 8 || std::memcmp(bytes.data(), kMagic, 8) != 0) return false;
  Reader r{bytes, 8};
  if (r.get(4) != kEncodedFormatVersion) return false;  // other versions are rebuilt, never misread
  std::string k = key;
  k.resize(64, ' ');
  if (bytes.compare(r.pos, 64, k) != 0) return false;
  r.pos += 64;
  const uint64_t n_train = r.get(4), n_test = r.get(4);
  EncodedTask t;
  for (uint64_t i = 0; i < n_train + n_test && r.ok; ++i) {
    Encoded e;
    e.task_index = task_index;
    e.example_index = static_cast<int32_t>(r.get(4));
    if (!read_ids(r, e.source_ids) || !read_ids(r, e.target_ids)) return false;
    (i < n_train ? t.train : t.test).push_back(std::move(e));
  }
  if (!r.ok || r.pos != bytes.size()) return false;
  *out = std::move(t);
  return true;
}

std::string cache_key(const Task& task, const TokenCodec& codec, const PromptOptions& options) {
  // The ids say which examples (after caps and hold-outs) are in which list, in which order.
  std::string ids;
  for (const auto* list : {&task.examples, &task.test_examples}) {
    for (const auto& e : *list) ids += e.id + '\x1f';
    ids += '\x1e';
  }
  return sha256_hex("peft-encoded-v" + std::to_string(kEncodedFormatVersion) + "\n" + codec.fingerprint + "\n" +
                    task.name + "\n" + task.content_sha256 + "\n" + options.fingerprint() + "\n" + sha256_hex(ids));
}

fs::path cache_path(const fs::path& cache_dir, const Task& task, const std::string& key) {
  return cache_dir / (task.name + "." + key.substr(0, 16) + ".enc");
}

EncodedTask encode_task(const Task& task, int32_t task_index, const TokenCodec& codec, const PromptOptions& options) {
  EncodedTask t;
  t.train.reserve(task.examples.size());
  for (size_t i = 0; i < task.examples.size(); ++i)
    t.train.push_back(encode_example(task, task_index, task.examples[i], static_cast<int32_t>(i), options, codec));
  for (size_t i = 0; i < task.test_examples.size(); ++i)
    t.test.push_back(encode_example(task, task_index, task.test_examples[i], static_cast<int32_t>(i), options, codec));
  return t;
}

std::vector<EncodedTask> encode_suite(const TaskSuite& suite, const TokenCodec& codec, const PromptOptions& options,
                                      const fs::path& cache_dir, CacheStats* stats) {
  std::vector<EncodedTask> out;
  out.reserve(suite.tasks.size());
  for (size_t ti = 0; ti < suite.tasks.size(); ++ti) {
    const Task& task = suite.tasks[ti];
    const auto task_index = static_cast<int32_t>(ti);
    if (cache_dir.empty()) {
      out.push_back(encode_task(task, task_index, codec, options));
      continue;
    }
    const std::string key = cache_key(task, codec, options);
    const fs::path path = cache_path(cache_dir, task, key);
    EncodedTask t;
    std::error_code ec;
    if (fs::exists(path, ec)) {
      std::string bytes;
      try {
        bytes = read_file(path);
      } catch (const std::exception&) {
        bytes.clear();  // unreadable cache: rebuild it
      }
      if (deserialize_encoded(bytes, key, task_index, &t) && t.train.size() == task.examples.size() &&
          t.test.size() == task.test_examples.size()) {
        if (stats) ++stats->hits;
        out.push_back(std::move(t));
        continue;
      }
    }
    t = encode_task(task, task_index, codec, options);
    write_file_atomic(path, serialize_encoded(t, key));
    if (stats) ++stats->misses;
    out.push_back(std::move(t));
  }
  return out;
}

}  // namespace peft::data
