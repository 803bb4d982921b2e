// Minimal Unicode services the tokenizers need (UTF-8 <-> code points, general category, NFC/NFD, simple
// lower-casing, Python's notion of whitespace). Backed by ICU's C API (libicu-dev, libicuuc).
#pragma once
#include <string>
#include <vector>

namespace peft::unicode {

// Invalid UTF-8 bytes decode to U+FFFD (Python would refuse them; BERT's cleaning then drops them).
std::u32string decode_utf8(const std::string& s);
std::string encode_utf8(const std::u32string& s);
void append_utf8(std::string& out, char32_t c);

enum class Category { kLetter, kMark, kMarkNonSpacing, kNumber, kPunctuation, kSymbol, kSpaceSeparator,
                      kOtherSeparator, kOther };
// Coarse class plus the two exact categories HF tests for (Mn, Zs).
Category category(char32_t c);
bool is_other(char32_t c);  // general category C* (Cc, Cf, Cn, Co, Cs)
bool is_punctuation_category(char32_t c);  // general category P*

// Python str.isspace(): what str.split()/str.strip() treat as whitespace.
bool is_python_space(char32_t c);
// Python str.lower() of a single character (the full mapping: U+0130 -> "i\u0307").
std::u32string lower(char32_t c);

std::u32string nfc(const std::u32string& s);
std::u32string nfd(const std::u32string& s);

// Python's str.strip()/lstrip()/rstrip() with no argument.
std::u32string strip(const std::u32string& s);
std::u32string lstrip(const std::u32string& s);
std::u32string rstrip(const std::u32string& s);
// Python's str.split() with no argument.
std::vector<std::u32string> split_whitespace(const std::u32string& s);

}  // namespace peft::unicode
