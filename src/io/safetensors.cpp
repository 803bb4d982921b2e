#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "common/error.h"

namespace peft::io {
namespace {

struct DtypeInfo {
  const char* name;
  torch::Dtype dtype;
  int64_t size;
};

// safetensors dtype names (https://github.com/huggingface/safetensors, Dtype enum) that LibTorch can hold.
constexpr DtypeInfo kDtypes[] = {
    {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};

const DtypeInfo* find_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DtypeInfo& find_dtype(torch::Dtype dtype, const std::string& file, const std::string& tensor) {
  for (const auto& d : kDtypes)
    if (d.dtype == dtype) return d;
  throw std::invalid_argument(file + ": tensor '" + tensor + "': dtype " + std::string(c10::toString(dtype)) +
                              " has no safetensors equivalent");
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

// One line, whatever nlohmann put in its message.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  return s;
}

struct Entry {
  std::string name;
  const DtypeInfo* dtype;
  std::vector<int64_t> shape;
  uint64_t begin, end;
};

struct Header {
  std::vector<Entry> entries;  // sorted by begin offset
  std::map<std::string, std::string> metadata;
};

// Validates the JSON header against the size of the data section: every tensor's byte range must lie inside it,
// match dtype x shape exactly, and not overlap another (the reference implementation's rules, except that we
// tolerate gaps).
Header parse_header(const std::string& file, const char* json_begin, size_t json_size, uint64_t data_size) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_begin, json_begin + json_size);
  } catch (const nlohmann::json::parse_error& e) {
    fail_input(where(file) + "malformed safetensors header (JSON): " + one_line(e.what()));
  }
  if (!j.is_object()) fail_input(where(file) + "malformed safetensors header: not a JSON object");
  Header h;
  for (auto it = j.begin(); it != j.end(); ++it) {
    const std::string& name = it.key();
    const auto& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object()) fail_input(where(file) + "malformed safetensors header: '__metadata__' is not an object");
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          fail_input(where(file) + "malformed safetensors header: metadata '" + m.key() + "' is not a string");
        h.metadata[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    const std::string what = where(file) + "tensor '" + name + "': ";
    if (!v.is_object() || !v.contains("dtype") || !v.contains("shape") || !v.contains("data_offsets"))
      fail_input(what + "header entry needs dtype, shape and data_offsets");
    if (!v["dtype"].is_string()) fail_input(what + "dtype is not a string");
    Entry e;
    e.name = name;
    const std::string dtype_name = v["dtype"].get<std::string>();
    e.dtype = find_dtype(dtype_name);
    if (!e.dtype) fail_input(what + "unknown or unsupported dtype '" + dtype_name + "'");
    const auto& shape = v["shape"];
    if (!shape.is_array()) fail_input(what + "shape is not an array");
    uint64_t numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) fail_input(what + "shape has a non-integer or negative size");
      e.shape.push_back(d.get<int64_t>());
      numel *= static_cast<uint64_t>(e.shape.back());
    }
    const auto& off = v["data_offsets"];
    if (!off.is_array() || off.size() != 2 || !off[0].is_number_unsigned() || !off[1].is_number_unsigned())
      fail_input(what + "data_offsets must be [begin, end]");
    e.begin = off[0].get<uint64_t>();
    e.end = off[1].get<uint64_t>();
    if (e.begin > e.end) fail_input(what + "data_offsets [" + std::to_string(e.begin) + "," + std::to_string(e.end) +
                                    "] end before begin");
    if (e.end > data_size)
      fail_input(what + "data_offsets [" + std::to_string(e.begin) + "," + std::to_string(e.end) +
                 "] beyond the data section (" + std::to_string(data_size) + " bytes; file truncated?)");
    const uint64_t expected = numel * static_cast<uint64_t>(e.dtype->size);
    if (e.end - e.begin != expected)
      fail_input(what + "data_offsets [" + std::to_string(e.begin) + "," + std::to_string(e.end) + "] hold " +
                 std::to_string(e.end - e.begin) + " bytes but " + dtype_name + " " + shape_str(e.shape) + " needs " +
                 std::to_string(expected));
    h.entries.push_back(std::move(e));
  }
  std::sort(h.entries.begin(), h.entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
  });
  const Entry* furthest = nullptr;  // the non-empty tensor reaching furthest so far
  for (const Entry& cur : h.entries) {
    if (cur.end == cur.begin) continue;
    if (furthest && cur.begin < furthest->end)
      fail_input(where(file) + "tensor '" + cur.name + "': data_offsets [" + std::to_string(cur.begin) + "," +
                 std::to_string(cur.end) + "] overlap tensor '" + furthest->name + "'");
    if (!furthest || cur.end > furthest->end) furthest = &cur;
  }
  return h;
}

uint64_t read_le_u64(const unsigned char* p) {
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | p[i];
  return n;
}

// Checks the 8-byte length prefix against the file size; returns the header length.
uint64_t check_header_length(const std::string& file, const unsigned char* prefix, uint64_t file_size) {
  const uint64_t n = read_le_u64(prefix);
  if (n > file_size - 8)
    fail_input(where(file) + "safetensors header length " + std::to_string(n) + " is beyond the file size (" +
               std::to_string(file_size) + " bytes; truncated or not a safetensors file)");
  return n;
}

// A read-only view of a whole file, unmapped when the last tensor viewing it goes away.
class Mapping {
 public:
  explicit Mapping(const std::string& file) {
    const int fd = ::open(file.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) fail_input(where(file) + "cannot open file (" + std::strerror(errno) + ")");
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      fail_input(where(file) + "cannot stat file");
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ < 8) {
      ::close(fd);
      fail_input(where(file) + "too short for a safetensors file (" + std::to_string(size_) + " bytes)");
    }
    // MAP_PRIVATE + PROT_WRITE: a caller that writes into a returned tensor gets its own copy-on-write page
    // instead of a crash, and the file itself never changes.
    void* p = ::mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    ::close(fd);
    if (p == MAP_FAILED) fail_input(where(file) + "cannot memory-map file (" + std::strerror(errno) + ")");
    data_ = static_cast<unsigned char*>(p);
  }
  ~Mapping() { ::munmap(data_, size_); }
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  unsigned char* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace

TensorMap read_safetensors(const std::filesystem::path& path, std::optional<torch::Dtype> dtype) {
  const std::string file = path.string();
  auto mapping = std::make_shared<Mapping>(file);
  const uint64_t n = check_header_length(file, mapping->data(), mapping->size());
  const uint64_t data_start = 8 + n;
  const Header h = parse_header(file, reinterpret_cast<const char*>(mapping->data() + 8), n,
                                mapping->size() - data_start);
  TensorMap out;
  for (const Entry& e : h.entries) {
    const torch::Dtype stored = e.dtype->dtype;
    const bool floating = stored == torch::kFloat32 || stored == torch::kFloat16 || stored == torch::kBFloat16;
    const torch::Dtype wanted = (dtype && floating) ? *dtype : stored;
    unsigned char* ptr = mapping->data() + data_start + e.begin;
    torch::Tensor t;
    if (e.end == e.begin) {
      t = torch::empty(e.shape, torch::TensorOptions().dtype(wanted));
    } else {
      // The deleter owns a reference to the mapping: the file stays mapped while any view of it lives.
      t = torch::from_blob(
          ptr, e.shape, [mapping](void*) {}, torch::TensorOptions().dtype(stored));
      // Misaligned data (a foreign writer without header padding) must not be handed to kernels as-is.
      if (reinterpret_cast<uintptr_t>(ptr) % static_cast<uintptr_t>(e.dtype->size) != 0) t = t.clone();
      if (wanted != stored) t = t.to(wanted);
    }
    out.emplace(e.name, std::move(t));
  }
  return out;
}

std::map<std::string, TensorHeader> read_safetensors_header(const std::filesystem::path& path,
                                                            std::map<std::string, std::string>* metadata) {
  const std::string file = path.string();
  std::ifstream in(path, std::ios::binary);
  if (!in) fail_input(where(file) + "cannot open file");
  std::error_code ec;
  const uint64_t file_size = std::filesystem::file_size(path, ec);
  if (ec || file_size < 8) fail_input(where(file) + "too short for a safetensors file");
  unsigned char prefix[8];
  in.read(reinterpret_cast<char*>(prefix), 8);
  const uint64_t n = check_header_length(file, prefix, file_size);
  std::string json(n, '\0');
  in.read(json.data(), static_cast<std::streamsize>(n));
  if (!in) fail_input(where(file) + "cannot read the safetensors header");
  const Header h = parse_header(file, json.data(), json.size(), file_size - 8 - n);
  std::map<std::string, TensorHeader> out;
  for (const Entry& e : h.entries) out[e.name] = TensorHeader{e.dtype->name, e.shape};
  if (metadata) *metadata = h.metadata;
  return out;
}

void write_safetensors(const std::filesystem::path& path, const TensorMap& tensors,
                       const std::map<std::string, std::string>& metadata) {
  const std::string file = path.string();
  // Same layout as the reference writer: tensors in name order, fields dtype/shape/data_offsets, metadata last,
  // data packed back to back, header padded with spaces to a multiple of 8 so every tensor stays aligned.
  std::vector<torch::Tensor> data;
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw std::invalid_argument(file + ": '__metadata__' is not a valid tensor name");
    const DtypeInfo& d = find_dtype(tensor.scalar_type(), file, name);
    torch::Tensor t = tensor.detach().to(torch::kCPU).contiguous();
    const uint64_t bytes = static_cast<uint64_t>(t.numel()) * static_cast<uint64_t>(d.size);
    nlohmann::ordered_json entry;
    entry["dtype"] = d.name;
    entry["shape"] = t.sizes().vec();
    entry["data_offsets"] = {offset, offset + bytes};
    header[name] = std::move(entry);
    offset += bytes;
    data.push_back(std::move(t));
  }
  if (!metadata.empty()) {
    nlohmann::ordered_json meta = nlohmann::ordered_json::object();
    for (const auto& [k, v] : metadata) meta[k] = v;
    header["__metadata__"] = std::move(meta);
  }
  std::string json = header.dump();
  json.append((8 - json.size() % 8) % 8, ' ');
  unsigned char prefix[8];
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<unsigned char>((json.size() >> (8 * i)) & 0xff);

  // Streamed to a temporary file and renamed (as common/files.h write_file_atomic does), without building a
  // second in-memory copy of a possibly large checkpoint.
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  const std::filesystem::path tmp = file + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) fail_input(where(file) + "cannot open for writing");
    out.write(reinterpret_cast<const char*>(prefix), 8);
    out.write(json.data(), static_cast<std::streamsize>(json.size()));
    for (const auto& t : data)
      out.write(static_cast<const char*>(t.data_ptr()),
                static_cast<std::streamsize>(t.numel() * static_cast<int64_t>(t.element_size())));
    out.flush();
    if (!out) {
      out.close();
      std::filesystem::remove(tmp);
      fail_input(where(file) + "write failed (disk full?)");
    }
  }
  std::filesystem::rename(tmp, path);
}

}  // namespace peft::io
