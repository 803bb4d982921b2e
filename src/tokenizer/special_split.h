// The first step of HF slow `PreTrainedTokenizer.tokenize` (transformers 4.33): cut the text at special /
// added tokens (leftmost-longest match, as HF's Trie), strip whitespace off the text on both sides of each
// special token (plain-string special tokens strip both ways), and drop chunks that became empty.
#pragma once
#include <string>
#include <vector>

namespace peft {

struct TextChunk {
  std::string text;  // UTF-8
  bool special = false;
};

std::vector<TextChunk> split_on_special_tokens(const std::string& text, const std::vector<std::string>& specials);

// HF PreTrainedTokenizerBase.clean_up_tokenization (decode with clean_up_tokenization_spaces=True, the 4.33
// default for T5 and BERT): removes the space before . ? ! , and English contractions.
std::string clean_up_tokenization(std::string text);

}  // namespace peft
