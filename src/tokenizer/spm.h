// SentencePiece, reached through libpeft_spm.so (see spm_shim/spm_shim.cpp for why it is loaded apart).
#pragma once
#include <memory>
#include <string>
#include <vector>

namespace peft {

class SpmModel {
 public:
  // Parses a serialized ModelProto (the bytes of spiece.model). `source` names the file in errors.
  SpmModel(const std::string& serialized, const std::string& source);
  ~SpmModel();
  SpmModel(const SpmModel&) = delete;
  SpmModel& operator=(const SpmModel&) = delete;

  int piece_size() const;
  int piece_to_id(const std::string& piece) const;
  std::string id_to_piece(int id) const;
  std::vector<std::string> encode(const std::string& text) const;
  std::string decode(const std::vector<std::string>& pieces) const;

  // Trains a model with SentencePieceTrainer::Train(args) (flags as spm_train takes them, without
  // --model_prefix) and returns the serialized ModelProto. Throws InputError with sentencepiece's message.
  static std::string train(const std::string& args);

 private:
  void* handle_ = nullptr;
};

}  // namespace peft
