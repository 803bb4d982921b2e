// Common tokenizer interface: what the data pipeline and the CLI need from T5 (SentencePiece) and BERT
// (WordPiece) tokenizers. Both reproduce the ids of the Hugging Face slow tokenizers (transformers 4.33).
#pragma once
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

namespace peft {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Ids of one text including the model's special tokens (T5: trailing </s>; BERT: [CLS] ... [SEP]).
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;
  // Text of ids as HF `decode(ids, skip_special_tokens=...)` (clean_up_tokenization_spaces=True).
  virtual std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const = 0;

  virtual int64_t pad_id() const = 0;
  // T5: </s>. BERT has no EOS: [SEP], the token that closes a sequence.
  virtual int64_t eos_id() const = 0;
  // Number of ids (HF len(tokenizer)): T5 32100 = 32000 pieces + 100 sentinels; BERT = lines of vocab.txt.
  virtual int64_t vocab_size() const = 0;
  // "t5-sentencepiece" or "bert-wordpiece".
  virtual std::string name() const = 0;
  // Identifies the vocabulary for cache keys: name() + ":" + sha256 of the vocabulary file.
  virtual std::string fingerprint() const = 0;
};

// Chooses by file: `dir/spiece.model` -> T5Tokenizer, `dir/vocab.txt` -> BertTokenizer (lower-cased).
// Neither present -> InputError naming the directory.
std::unique_ptr<Tokenizer> load_tokenizer(const std::filesystem::path& dir);

}  // namespace peft
