// T5Tokenizer (HF transformers 4.33, slow, legacy=True): SentencePiece `spiece.model` plus 100 sentinels
// <extra_id_N> = vocab_size - 1 - N (32099 .. 32000 for the 32000-piece model).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/spm.h"
#include "tokenizer/tokenizer.h"

namespace peft {

class T5Tokenizer : public Tokenizer {
 public:
  // `model_file` is a spiece.model; InputError naming it when missing or unreadable.
  explicit T5Tokenizer(const std::filesystem::path& model_file, int extra_ids = 100);
  ~T5Tokenizer() override;

  // Ids with </s> appended (not doubled when the text already ends in </s>, as HF).
  std::vector<int64_t> encode(const std::string& text) const override;
  // Ids without the trailing </s>.
  std::vector<int64_t> encode_no_eos(const std::string& text) const;
  // Pieces as HF `tokenize(text)`: special tokens whole, the rest SentencePiece pieces.
  std::vector<std::string> tokenize(const std::string& text) const;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const override;

  int64_t pad_id() const override { return pad_id_; }
  int64_t eos_id() const override { return eos_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t vocab_size() const override { return sp_size_ + extra_ids_; }
  int64_t sentinel_id(int n) const { return vocab_size() - 1 - n; }
  std::string name() const override { return "t5-sentencepiece"; }
  std::string fingerprint() const override { return name() + ":" + sha256_; }

  // HF `_convert_id_to_token` / `_convert_token_to_id`.
  std::string id_to_token(int64_t id) const;
  int64_t token_to_id(const std::string& token) const;

 private:
  std::unique_ptr<SpmModel> sp_;
  int64_t sp_size_ = 0;
  int extra_ids_ = 100;
  int64_t pad_id_ = 0, eos_id_ = 1, unk_id_ = 2;  // looked up in the model: <pad>, </s>, <unk>
  std::string sha256_;
  std::vector<std::string> special_tokens_;  // eos, unk, pad, <extra_id_0..>: never split, skipped on decode
};

}  // namespace peft
