// BertTokenizer (HF transformers 4.33, slow): BasicTokenizer (cleaning, CJK splitting, lower-casing with
// accent stripping, punctuation splitting) followed by WordPiece over `vocab.txt`.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace peft {

// HF BasicTokenizer. strip_accents unset = follow do_lower_case.
class BasicTokenizer {
 public:
  explicit BasicTokenizer(bool do_lower_case = true, std::set<std::string> never_split = {},
                          bool tokenize_chinese_chars = true, std::optional<bool> strip_accents = std::nullopt);
  std::vector<std::string> tokenize(const std::string& text) const;

 private:
  bool do_lower_case_;
  std::set<std::string> never_split_;
  bool tokenize_chinese_chars_;
  std::optional<bool> strip_accents_;
};

// HF WordpieceTokenizer: greedy longest-match-first, continuation pieces prefixed "##"; a word with no
// segmentation or longer than max_input_chars_per_word code points becomes unk_token.
class WordpieceTokenizer {
 public:
  WordpieceTokenizer(const std::unordered_map<std::string, int64_t>* vocab, std::string unk_token,
                     size_t max_input_chars_per_word = 100);
  std::vector<std::string> tokenize(const std::string& text) const;

 private:
  const std::unordered_map<std::string, int64_t>* vocab_;
  std::string unk_token_;
  size_t max_input_chars_per_word_;
};

struct BertEncoding {
  std::vector<int64_t> input_ids;
  std::vector<int64_t> token_type_ids;
};

class BertTokenizer : public Tokenizer {
 public:
  // Reads vocab.txt (one token per line, id = line number); InputError naming the file when it is missing
  // or lacks one of [PAD] [UNK] [CLS] [SEP] [MASK].
  explicit BertTokenizer(const std::filesystem::path& vocab_file, bool do_lower_case = true);
  // From the lines of a vocabulary (tests, tiny vocabularies). `source` names it in error messages.
  BertTokenizer(const std::vector<std::string>& vocab, bool do_lower_case = true,
                const std::string& source = "<vocab>");

  // Tokens as HF `tokenize(text)` (no [CLS]/[SEP]).
  std::vector<std::string> tokenize(const std::string& text) const;
  // HF `tokenizer(text, text_pair, max_length=..., truncation="longest_first")`: [CLS] A [SEP] (B [SEP]),
  // token types 0 for the first segment and 1 for the second. No max_length = no truncation.
  BertEncoding encode_pair(const std::string& text, const std::optional<std::string>& text_pair = std::nullopt,
                           std::optional<size_t> max_length = std::nullopt) const;

  std::vector<int64_t> encode(const std::string& text) const override;
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const override;

  int64_t pad_id() const override { return pad_id_; }
  int64_t eos_id() const override { return sep_id_; }
  int64_t cls_id() const { return cls_id_; }
  int64_t sep_id() const { return sep_id_; }
  int64_t unk_id() const { return unk_id_; }
  int64_t mask_id() const { return mask_id_; }
  int64_t vocab_size() const override { return static_cast<int64_t>(vocab_.size()); }
  std::string name() const override { return "bert-wordpiece"; }
  std::string fingerprint() const override { return name() + ":" + sha256_; }

  int64_t token_to_id(const std::string& token) const;  // unknown -> [UNK]
  std::string id_to_token(int64_t id) const;

 private:
  void init(const std::vector<std::string>& lines, const std::string& source);

  std::unordered_map<std::string, int64_t> vocab_;
  std::unordered_map<int64_t, std::string> ids_to_tokens_;
  bool do_lower_case_ = true;
  std::string sha256_;
  std::vector<std::string> special_tokens_;  // [UNK] [SEP] [PAD] [CLS] [MASK]
  int64_t pad_id_ = 0, unk_id_ = 0, cls_id_ = 0, sep_id_ = 0, mask_id_ = 0;
};

}  // namespace peft
