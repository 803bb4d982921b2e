#include "tokenizer/special_split.h"

#include <string_view>

#include "tokenizer/unicode.h"

namespace peft {

std::vector<TextChunk> split_on_special_tokens(const std::string& text, const std::vector<std::string>& specials) {
  // Leftmost-longest scan on bytes: the special tokens are whole UTF-8 strings, so byte matching is exact.
  bool first_byte[256] = {};  // only positions starting with one of these bytes can match
  for (const auto& tok : specials)
    if (!tok.empty()) first_byte[static_cast<unsigned char>(tok[0])] = true;
  std::vector<TextChunk> pieces;
  size_t start = 0;
  size_t i = 0;
  while (i < text.size()) {
    if (!first_byte[static_cast<unsigned char>(text[i])]) { ++i; continue; }
    size_t best = 0;
    const std::string* match = nullptr;
    for (const auto& tok : specials) {
      if (tok.size() > best && !tok.empty() && std::string_view(text).substr(i, tok.size()) == tok) {
        best = tok.size();
        match = &tok;
      }
    }
    if (match == nullptr) { ++i; continue; }
    if (i > start) pieces.push_back({text.substr(start, i - start), false});
    pieces.push_back({*match, true});
    i += best;
    start = i;
  }
  if (start < text.size()) pieces.push_back({text.substr(start), false});

  // HF strips the neighbours of each special token in order, reading the (possibly already stripped) values.
  for (size_t k = 0; k < pieces.size(); ++k) {
    if (!pieces[k].special) continue;
    if (k + 1 < pieces.size() && !pieces[k + 1].text.empty() && !pieces[k + 1].special)
      pieces[k + 1].text = unicode::encode_utf8(unicode::lstrip(unicode::decode_utf8(pieces[k + 1].text)));
    if (k > 0 && !pieces[k - 1].text.empty() && !pieces[k - 1].special)
      pieces[k - 1].text = unicode::encode_utf8(unicode::rstrip(unicode::decode_utf8(pieces[k - 1].text)));
  }
  std::vector<TextChunk> out;
  for (auto& p : pieces)
    if (!p.text.empty()) out.push_back(std::move(p));
  return out;
}

namespace {
std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  size_t pos = 0;
  while ((pos = s.find(from, pos)) != std::string::npos) {
    s.replace(pos, from.size(), to);
    pos += to.size();
  }
  return s;
}
}  // namespace

std::string clean_up_tokenization(std::string s) {
  // Same replacements in the same order as HF (each a full str.replace pass).
  static const char* const kPairs[][2] = {{" .", "."},   {" ?", "?"},     {" !", "!"},     {" ,", ","},
                                          {" ' ", "'"},  {" n't", "n't"}, {" 'm", "'m"},   {" 's", "'s"},
                                          {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& p : kPairs) s = replace_all(std::move(s), p[0], p[1]);
  return s;
}

}  // namespace peft
