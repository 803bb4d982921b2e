// A C interface over sentencepiece, built as its own shared library (libpeft_spm.so) and loaded with
// dlopen(RTLD_LOCAL | RTLD_DEEPBIND) by tokenizer/spm.cpp.
//
// Why: Debian's libsentencepiece embeds its own protobuf (3.14) and exports those symbols; LibTorch loads
// libprotobuf 3.21. Linked into one program, one copy's symbols interpose on the other's and the process
// crashes at start-up. Loaded this way, sentencepiece binds to its own copy and LibTorch never sees it.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cstring>
#include <string>
#include <vector>

// Declared in sentencepiece's common.h, which Debian does not install.
namespace sentencepiece::logging {
void SetMinLogLevel(int v);
}

extern "C" {

typedef void (*peft_spm_emit)(void* user, const char* data, size_t size);

static void copy_error(const sentencepiece::util::Status& s, char* err, size_t err_size) {
  if (err && err_size) {
    std::strncpy(err, s.ToString().c_str(), err_size - 1);
    err[err_size - 1] = '\0';
  }
}

__attribute__((visibility("default"))) void* peft_spm_load(const char* bytes, size_t size, char* err,
                                                           size_t err_size) {
  auto* sp = new sentencepiece::SentencePieceProcessor();
  const auto status = sp->LoadFromSerializedProto(std::string(bytes, size));
  if (!status.ok()) {
    copy_error(status, err, err_size);
    delete sp;
    return nullptr;
  }
  return sp;
}

__attribute__((visibility("default"))) void peft_spm_free(void* handle) {
  delete static_cast<sentencepiece::SentencePieceProcessor*>(handle);
}

__attribute__((visibility("default"))) int peft_spm_piece_size(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}

__attribute__((visibility("default"))) int peft_spm_piece_to_id(void* handle, const char* piece, size_t size) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->PieceToId(std::string(piece, size));
}

__attribute__((visibility("default"))) void peft_spm_id_to_piece(void* handle, int id, peft_spm_emit emit,
                                                                 void* user) {
  const std::string& piece = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->IdToPiece(id);
  emit(user, piece.data(), piece.size());
}

// Emits each piece of the encoding; returns 0 on success.
__attribute__((visibility("default"))) int peft_spm_encode(void* handle, const char* text, size_t size,
                                                           peft_spm_emit emit, void* user, char* err,
                                                           size_t err_size) {
  std::vector<std::string> pieces;
  const auto status =
      static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Encode(std::string(text, size), &pieces);
  if (!status.ok()) {
    copy_error(status, err, err_size);
    return 1;
  }
  for (const auto& p : pieces) emit(user, p.data(), p.size());
  return 0;
}

// Decodes `count` pieces; emits the text once; returns 0 on success.
__attribute__((visibility("default"))) int peft_spm_decode(void* handle, const char* const* pieces,
                                                           const size_t* sizes, size_t count, peft_spm_emit emit,
                                                           void* user, char* err, size_t err_size) {
  std::vector<std::string> in;
  in.reserve(count);
  for (size_t i = 0; i < count; ++i) in.emplace_back(pieces[i], sizes[i]);
  std::string out;
  const auto status = static_cast<sentencepiece::SentencePieceProcessor*>(handle)->Decode(in, &out);
  if (!status.ok()) {
    copy_error(status, err, err_size);
    return 1;
  }
  emit(user, out.data(), out.size());
  return 0;
}

// Trains a model from `args` (sentencepiece's command-line flags, e.g. "--input=f --vocab_size=2000"; with
// serialized output, no --model_prefix is needed) and emits the serialized ModelProto; returns 0 on success.
// Training lives in libsentencepiece_train, which `pkg-config --libs sentencepiece` already names.
__attribute__((visibility("default"))) int peft_spm_train(const char* args, size_t size, peft_spm_emit emit,
                                                          void* user, char* err, size_t err_size) {
  // Silence the trainer's logging: under RTLD_DEEPBIND its std::cerr binds to libstdc++'s own object, not the
  // executable's copy-relocated (initialised) one, and writing to it crashes. Errors come back as a Status.
  sentencepiece::logging::SetMinLogLevel(100);
  std::string model;
  const auto status = sentencepiece::SentencePieceTrainer::Train(std::string(args, size), nullptr, &model);
  if (!status.ok()) {
    copy_error(status, err, err_size);
    return 1;
  }
  emit(user, model.data(), model.size());
  return 0;
}
}  // extern "C"
