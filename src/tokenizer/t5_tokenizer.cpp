#include "tokenizer/t5_tokenizer.h"


#include <algorithm>
#include <stdexcept>

#include "common/error.h"
#include "common/files.h"
#include "tokenizer/special_split.h"
#include "tokenizer/unicode.h"

namespace peft {

namespace {

const char* const kEos = "</s>";
const char* const kUnk = "<unk>";
const char* const kPad = "<pad>";

}  // namespace

T5Tokenizer::T5Tokenizer(const std::filesystem::path& model_file, int extra_ids)
    : extra_ids_(extra_ids) {
  const std::string bytes = read_file(model_file);  // InputError naming the file when missing
  sp_ = std::make_unique<SpmModel>(bytes, model_file.string());
  sp_size_ = sp_->piece_size();
  pad_id_ = sp_->piece_to_id(kPad);
  eos_id_ = sp_->piece_to_id(kEos);
  unk_id_ = sp_->piece_to_id(kUnk);
  sha256_ = sha256_hex(bytes);
  special_tokens_ = {kEos, kUnk, kPad};
  for (int n = 0; n < extra_ids_; ++n) special_tokens_.push_back("<extra_id_" + std::to_string(n) + ">");
}

T5Tokenizer::~T5Tokenizer() = default;

std::string T5Tokenizer::id_to_token(int64_t id) const {
  // Negative ids (e.g. -100 label padding) fail as in HF; ids past the sentinels (T5's 32128-wide output
  // layer) become "<extra_id_-N>" as in HF, which SentencePiece later decodes as unknown.
  if (id < 0) throw std::out_of_range("T5Tokenizer: id " + std::to_string(id) + " out of range");
  if (id < sp_size_) return sp_->id_to_piece(static_cast<int>(id));
  return "<extra_id_" + std::to_string(vocab_size() - 1 - id) + ">";
}

int64_t T5Tokenizer::token_to_id(const std::string& token) const {
  // HF: "<extra_id_(\d+)>" as a prefix match -> vocab_size - 1 - N; everything else through SentencePiece.
  const std::string prefix = "<extra_id_";
  if (token.compare(0, prefix.size(), prefix) == 0) {
    size_t i = prefix.size();
    size_t j = i;
    while (j < token.size() && token[j] >= '0' && token[j] <= '9') ++j;
    if (j > i && j < token.size() && token[j] == '>') return vocab_size() - 1 - std::stoll(token.substr(i, j - i));
  }
  return sp_->piece_to_id(token);
}

std::vector<std::string> T5Tokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> out;
  for (const auto& chunk : split_on_special_tokens(text, special_tokens_)) {
    if (chunk.special) {
      out.push_back(chunk.text);
    } else {
      const auto pieces = sp_->encode(chunk.text);
      out.insert(out.end(), pieces.begin(), pieces.end());
    }
  }
  return out;
}

std::vector<int64_t> T5Tokenizer::encode_no_eos(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const auto& token : tokenize(text)) ids.push_back(token_to_id(token));
  return ids;
}

std::vector<int64_t> T5Tokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids = encode_no_eos(text);
  // HF _add_eos_if_not_present: a text that already ends in </s> does not get a second one.
  if (ids.empty() || ids.back() != eos_id()) ids.push_back(eos_id());
  return ids;
}

std::string T5Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  // convert_ids_to_tokens(skip_special_tokens) then T5Tokenizer.convert_tokens_to_string (4.33), then
  // clean_up_tokenization. Special ids: pad, eos, unk and the sentinels.
  std::vector<std::string> tokens;
  for (int64_t id : ids) {
    const bool is_special =
        id == pad_id() || id == eos_id() || id == unk_id() || (id >= sp_size_ && id < vocab_size());
    if (skip_special_tokens && is_special) continue;
    tokens.push_back(id_to_token(id));
  }
  std::string out;
  std::vector<std::string> current;
  bool prev_is_special = false;
  auto sp_decode = [&](const std::vector<std::string>& pieces) {
    return pieces.empty() ? std::string() : sp_->decode(pieces);
  };
  for (const auto& token : tokens) {
    if (std::find(special_tokens_.begin(), special_tokens_.end(), token) != special_tokens_.end()) {
      if (!prev_is_special) out += " ";
      out += sp_decode(current) + token;
      prev_is_special = true;
      current.clear();
    } else {
      current.push_back(token);
      prev_is_special = false;
    }
  }
  out += sp_decode(current);
  return clean_up_tokenization(unicode::encode_utf8(unicode::strip(unicode::decode_utf8(out))));
}

}  // namespace peft
