#include "tokenizer/bert_tokenizer.h"

#include <algorithm>
#include <stdexcept>

#include "common/error.h"
#include "common/files.h"
#include "tokenizer/special_split.h"
#include "tokenizer/unicode.h"

namespace peft {

namespace {

using unicode::Category;

// HF _is_whitespace: space, \t, \n, \r or category Zs.
bool is_whitespace(char32_t c) {
  if (c == U' ' || c == U'\t' || c == U'\n' || c == U'\r') return true;
  return unicode::category(c) == Category::kSpaceSeparator;
}

// HF _is_control: category C* except \t \n \r (which count as whitespace).
bool is_control(char32_t c) {
  if (c == U'\t' || c == U'\n' || c == U'\r') return false;
  return unicode::is_other(c);
}

// HF _is_punctuation: all non-letter/number ASCII (so "^", "$", "`" count) or category P*.
bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return unicode::is_punctuation_category(c);
}

// HF _is_chinese_char: the CJK Unified Ideographs blocks (not Japanese kana or Hangul).
bool is_chinese_char(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

// Python str.lower() applied one character at a time, as HF's do_lower_case pre-pass in tokenize() does
// (the regex `(.+?)` lowers single characters, so the final-sigma rule never applies).
std::u32string lower_chars(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (char32_t c : s) out += unicode::lower(c);
  return out;
}

std::u32string strip_accents(const std::u32string& s) {
  std::u32string out;
  for (char32_t c : unicode::nfd(s))
    if (unicode::category(c) != Category::kMarkNonSpacing) out.push_back(c);
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------------------
BasicTokenizer::BasicTokenizer(bool do_lower_case, std::set<std::string> never_split, bool tokenize_chinese_chars,
                               std::optional<bool> strip_accents)
    : do_lower_case_(do_lower_case),
      never_split_(std::move(never_split)),
      tokenize_chinese_chars_(tokenize_chinese_chars),
      strip_accents_(strip_accents) {}

std::vector<std::string> BasicTokenizer::tokenize(const std::string& utf8) const {
  // _clean_text: drop NUL, U+FFFD and control characters; every whitespace character becomes a space.
  std::u32string text;
  for (char32_t c : unicode::decode_utf8(utf8)) {
    if (c == 0 || c == 0xFFFD || is_control(c)) continue;
    text.push_back(is_whitespace(c) ? U' ' : c);
  }
  // CJK ideographs become words of their own.
  if (tokenize_chinese_chars_) {
    std::u32string spaced;
    for (char32_t c : text) {
      if (is_chinese_char(c)) {
        spaced.push_back(U' ');
        spaced.push_back(c);
        spaced.push_back(U' ');
      } else {
        spaced.push_back(c);
      }
    }
    text = std::move(spaced);
  }
  // NFC first so that precomposed and combining spellings of a character tokenize alike.
  text = unicode::nfc(text);

  std::u32string joined;  // " ".join(split_tokens), split again by whitespace below
  for (const auto& orig : unicode::split_whitespace(text)) {
    std::u32string token = orig;
    if (never_split_.count(unicode::encode_utf8(token)) == 0) {
      if (do_lower_case_) {
        token = lower_chars(token);
        if (strip_accents_.value_or(true)) token = strip_accents(token);
      } else if (strip_accents_.value_or(false)) {
        token = strip_accents(token);
      }
    }
    // _run_split_on_punc: each punctuation character is its own token (unless the token is never_split).
    const auto add = [&](const std::u32string& piece) {
      if (!joined.empty()) joined.push_back(U' ');
      joined += piece;
    };
    if (never_split_.count(unicode::encode_utf8(token)) != 0) {
      add(token);
      continue;
    }
    std::u32string current;
    bool start_new_word = true;
    std::vector<std::u32string> pieces;
    for (char32_t c : token) {
      if (is_punctuation(c)) {
        pieces.emplace_back(1, c);
        start_new_word = true;
      } else {
        if (start_new_word) pieces.emplace_back();
        start_new_word = false;
        pieces.back().push_back(c);
      }
    }
    for (const auto& p : pieces) add(p);
  }
  std::vector<std::string> out;
  for (const auto& t : unicode::split_whitespace(joined)) out.push_back(unicode::encode_utf8(t));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
WordpieceTokenizer::WordpieceTokenizer(const std::unordered_map<std::string, int64_t>* vocab, std::string unk_token,
                                       size_t max_input_chars_per_word)
    : vocab_(vocab), unk_token_(std::move(unk_token)), max_input_chars_per_word_(max_input_chars_per_word) {}

std::vector<std::string> WordpieceTokenizer::tokenize(const std::string& text) const {
  std::vector<std::string> output_tokens;
  for (const auto& word : unicode::split_whitespace(unicode::decode_utf8(text))) {
    const size_t n = word.size();  // code points, as Python's list(token)
    if (n > max_input_chars_per_word_) {
      output_tokens.push_back(unk_token_);
      continue;
    }
    // Byte offset of every code point, so substrings are cut on character boundaries.
    const std::string bytes = unicode::encode_utf8(word);
    std::vector<size_t> offset(n + 1, 0);
    {
      std::string tmp;
      for (size_t i = 0; i < n; ++i) {
        offset[i] = tmp.size();
        unicode::append_utf8(tmp, word[i]);
      }
      offset[n] = tmp.size();
    }
    bool is_bad = false;
    size_t start = 0;
    std::vector<std::string> sub_tokens;
    while (start < n) {
      size_t end = n;
      std::string cur_substr;
      bool found = false;
      while (start < end) {
        std::string substr = bytes.substr(offset[start], offset[end] - offset[start]);
        if (start > 0) substr = "##" + substr;
        if (vocab_->count(substr) != 0) {
          cur_substr = std::move(substr);
          found = true;
          break;
        }
        --end;
      }
      if (!found) {
        is_bad = true;
        break;
      }
      sub_tokens.push_back(std::move(cur_substr));
      start = end;
    }
    if (is_bad) {
      output_tokens.push_back(unk_token_);
    } else {
      output_tokens.insert(output_tokens.end(), sub_tokens.begin(), sub_tokens.end());
    }
  }
  return output_tokens;
}

// ---------------------------------------------------------------------------------------------------------
BertTokenizer::BertTokenizer(const std::filesystem::path& vocab_file, bool do_lower_case)
    : do_lower_case_(do_lower_case) {
  const std::string bytes = read_file(vocab_file);  // InputError naming the file when missing
  sha256_ = sha256_hex(bytes);
  // HF load_vocab: readlines() + rstrip("\n"); a final line without newline still counts.
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t nl = bytes.find('\n', pos);
    if (nl == std::string::npos) nl = bytes.size();
    lines.push_back(bytes.substr(pos, nl - pos));
    pos = nl + 1;
  }
  init(lines, vocab_file.string());
}

BertTokenizer::BertTokenizer(const std::vector<std::string>& vocab, bool do_lower_case, const std::string& source)
    : do_lower_case_(do_lower_case) {
  std::string all;
  for (const auto& t : vocab) all += t + "\n";
  sha256_ = sha256_hex(all);
  init(vocab, source);
}

void BertTokenizer::init(const std::vector<std::string>& lines, const std::string& source) {
  for (size_t i = 0; i < lines.size(); ++i) vocab_[lines[i]] = static_cast<int64_t>(i);  // later duplicate wins
  for (const auto& [tok, id] : vocab_) ids_to_tokens_[id] = tok;
  const auto need = [&](const std::string& tok) {
    auto it = vocab_.find(tok);
    if (it == vocab_.end()) fail_input(where(source) + "missing special token '" + tok + "'");
    return it->second;
  };
  unk_id_ = need("[UNK]");
  sep_id_ = need("[SEP]");
  pad_id_ = need("[PAD]");
  cls_id_ = need("[CLS]");
  mask_id_ = need("[MASK]");
  special_tokens_ = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};
}

int64_t BertTokenizer::token_to_id(const std::string& token) const {
  auto it = vocab_.find(token);
  return it == vocab_.end() ? unk_id_ : it->second;
}

std::string BertTokenizer::id_to_token(int64_t id) const {
  auto it = ids_to_tokens_.find(id);
  return it == ids_to_tokens_.end() ? "[UNK]" : it->second;
}

std::vector<std::string> BertTokenizer::tokenize(const std::string& text) const {
  const std::set<std::string> never_split(special_tokens_.begin(), special_tokens_.end());
  const BasicTokenizer basic(do_lower_case_, never_split);
  const WordpieceTokenizer wordpiece(&vocab_, "[UNK]");
  std::vector<std::string> out;
  for (const auto& chunk : split_on_special_tokens(text, special_tokens_)) {
    if (chunk.special) {
      out.push_back(chunk.text);
      continue;
    }
    // tokenize()'s lower-casing pre-pass (special tokens are kept as written).
    const std::string chunk_text =
        do_lower_case_ ? unicode::encode_utf8(lower_chars(unicode::decode_utf8(chunk.text))) : chunk.text;
    for (const auto& word : basic.tokenize(chunk_text)) {
      if (never_split.count(word) != 0) {
        out.push_back(word);
      } else {
        for (auto& piece : wordpiece.tokenize(word)) out.push_back(std::move(piece));
      }
    }
  }
  return out;
}

BertEncoding BertTokenizer::encode_pair(const std::string& text, const std::optional<std::string>& text_pair,
                                        std::optional<size_t> max_length) const {
  std::vector<int64_t> ids;
  for (const auto& t : tokenize(text)) ids.push_back(token_to_id(t));
  std::optional<std::vector<int64_t>> pair_ids;
  if (text_pair) {
    pair_ids.emplace();
    for (const auto& t : tokenize(*text_pair)) pair_ids->push_back(token_to_id(t));
  }
  const size_t num_special = pair_ids ? 3 : 2;
  const size_t total_len = ids.size() + (pair_ids ? pair_ids->size() : 0) + num_special;
  if (max_length && total_len > *max_length) {
    const size_t num_tokens_to_remove = total_len - *max_length;
    if (!pair_ids) {
      // HF only_first path: a sequence shorter than the cut is left whole (HF logs an error).
      if (ids.size() > num_tokens_to_remove) ids.resize(ids.size() - num_tokens_to_remove);
    } else {
      // longest_first: one token at a time from the longer side; ties cut the second sequence.
      for (size_t k = 0; k < num_tokens_to_remove; ++k) {
        if (ids.size() > pair_ids->size()) {
          ids.pop_back();
        } else if (!pair_ids->empty()) {
          pair_ids->pop_back();
        }
      }
    }
  }
  BertEncoding enc;
  enc.input_ids.push_back(cls_id_);
  enc.input_ids.insert(enc.input_ids.end(), ids.begin(), ids.end());
  enc.input_ids.push_back(sep_id_);
  enc.token_type_ids.assign(enc.input_ids.size(), 0);
  if (pair_ids) {
    enc.input_ids.insert(enc.input_ids.end(), pair_ids->begin(), pair_ids->end());
    enc.input_ids.push_back(sep_id_);
    enc.token_type_ids.resize(enc.input_ids.size(), 1);
  }
  return enc;
}

std::vector<int64_t> BertTokenizer::encode(const std::string& text) const { return encode_pair(text).input_ids; }

std::string BertTokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  // convert_ids_to_tokens + " ".join(tokens).replace(" ##", "").strip() + clean_up_tokenization.
  std::string joined;
  bool first = true;
  for (int64_t id : ids) {
    if (skip_special_tokens &&
        (id == unk_id_ || id == sep_id_ || id == pad_id_ || id == cls_id_ || id == mask_id_))
      continue;
    if (!first) joined += " ";
    joined += id_to_token(id);
    first = false;
  }
  std::string out;
  for (size_t i = 0; i < joined.size();) {
    if (joined.compare(i, 3, " ##") == 0) {
      i += 3;
    } else {
      out.push_back(joined[i++]);
    }
  }
  return clean_up_tokenization(unicode::encode_utf8(unicode::strip(unicode::decode_utf8(out))));
}

}  // namespace peft
