#include "tokenizer/spm.h"

#include <dlfcn.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "common/error.h"

namespace peft {

namespace {

using Emit = void (*)(void*, const char*, size_t);

struct ShimApi {
  void* (*load)(const char*, size_t, char*, size_t) = nullptr;
  void (*free)(void*) = nullptr;
  int (*piece_size)(void*) = nullptr;
  int (*piece_to_id)(void*, const char*, size_t) = nullptr;
  void (*id_to_piece)(void*, int, Emit, void*) = nullptr;
  int (*encode)(void*, const char*, size_t, Emit, void*, char*, size_t) = nullptr;
  int (*decode)(void*, const char* const*, const size_t*, size_t, Emit, void*, char*, size_t) = nullptr;
  int (*train)(const char*, size_t, Emit, void*, char*, size_t) = nullptr;  // optional: only for training
};

// Next to the running executable first (build/ and installs), then the path CMake built it at.
std::vector<std::string> shim_candidates() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("PEFT_SPM_SHIM")) out.emplace_back(env);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) out.push_back((exe.parent_path() / "libpeft_spm.so").string());
#ifdef PEFT_SPM_SHIM_PATH
  out.emplace_back(PEFT_SPM_SHIM_PATH);
#endif
  return out;
}

const ShimApi& api() {
  static ShimApi shim;
  static std::once_flag once;
  std::call_once(once, [] {
    void* lib = nullptr;
    std::string tried;
    for (const auto& path : shim_candidates()) {
      lib = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
      if (lib) break;
      tried += " " + path + " (" + ::dlerror() + ")";
    }
    if (!lib) throw std::runtime_error("cannot load libpeft_spm.so:" + tried);
    auto sym = [&](const char* name) {
      void* p = ::dlsym(lib, name);
      if (!p) throw std::runtime_error(std::string("libpeft_spm.so lacks ") + name);
      return p;
    };
    shim.load = reinterpret_cast<decltype(shim.load)>(sym("peft_spm_load"));
    shim.free = reinterpret_cast<decltype(shim.free)>(sym("peft_spm_free"));
    shim.piece_size = reinterpret_cast<decltype(shim.piece_size)>(sym("peft_spm_piece_size"));
    shim.piece_to_id = reinterpret_cast<decltype(shim.piece_to_id)>(sym("peft_spm_piece_to_id"));
    shim.id_to_piece = reinterpret_cast<decltype(shim.id_to_piece)>(sym("peft_spm_id_to_piece"));
    shim.encode = reinterpret_cast<decltype(shim.encode)>(sym("peft_spm_encode"));
    shim.decode = reinterpret_cast<decltype(shim.decode)>(sym("peft_spm_decode"));
    shim.train = reinterpret_cast<decltype(shim.train)>(::dlsym(lib, "peft_spm_train"));
  });
  return shim;
}

void append_string(void* user, const char* data, size_t size) {
  static_cast<std::string*>(user)->assign(data, size);
}
void push_string(void* user, const char* data, size_t size) {
  static_cast<std::vector<std::string>*>(user)->emplace_back(data, size);
}

}  // namespace

SpmModel::SpmModel(const std::string& serialized, const std::string& source) {
  char err[512] = {0};
  handle_ = api().load(serialized.data(), serialized.size(), err, sizeof err);
  if (!handle_) fail_input(where(source) + "not a SentencePiece model (" + err + ")");
}

SpmModel::~SpmModel() {
  if (handle_) api().free(handle_);
}

int SpmModel::piece_size() const { return api().piece_size(handle_); }

int SpmModel::piece_to_id(const std::string& piece) const {
  return api().piece_to_id(handle_, piece.data(), piece.size());
}

std::string SpmModel::id_to_piece(int id) const {
  std::string out;
  api().id_to_piece(handle_, id, append_string, &out);
  return out;
}

std::vector<std::string> SpmModel::encode(const std::string& text) const {
  std::vector<std::string> pieces;
  char err[512] = {0};
  if (api().encode(handle_, text.data(), text.size(), push_string, &pieces, err, sizeof err) != 0)
    throw std::runtime_error(std::string("sentencepiece encode failed: ") + err);
  return pieces;
}

std::string SpmModel::decode(const std::vector<std::string>& pieces) const {
  std::vector<const char*> data;
  std::vector<size_t> sizes;
  for (const auto& p : pieces) {
    data.push_back(p.data());
    sizes.push_back(p.size());
  }
  std::string out;
  char err[512] = {0};
  if (api().decode(handle_, data.data(), sizes.data(), pieces.size(), append_string, &out, err, sizeof err) != 0)
    throw std::runtime_error(std::string("sentencepiece decode failed: ") + err);
  return out;
}

std::string SpmModel::train(const std::string& args) {
  const auto& shim = api();
  if (!shim.train) throw std::runtime_error("libpeft_spm.so lacks peft_spm_train (rebuild target peft_spm)");
  std::string out;
  char err[1024] = {0};
  if (shim.train(args.data(), args.size(), append_string, &out, err, sizeof err) != 0)
    fail_input(std::string("sentencepiece training failed: ") + err);
  return out;
}

}  // namespace peft
