// Porter stemmer, a faithful port of NLTK's nltk/stem/porter.py (NLTK >= 3.2.2 rewrite).
//
// Why NLTK's: SuperNI scores Rouge-L with Google's rouge_score, whose DefaultTokenizer builds
// `nltk.stem.porter.PorterStemmer()` with no argument, i.e. mode NLTK_EXTENSIONS. That mode departs
// from Porter's 1980 paper in a few places (irregular-form table, 'ies'/'ied' on 4-letter words,
// y->i only after a consonant, 'alli'/'fulli'/'logi' in step 2, 'bli' instead of 'abli', a 2-letter
// cvc case, words of <= 2 letters untouched). All three NLTK modes are implemented so that the
// paper's own examples can be checked in ORIGINAL_ALGORITHM mode too.
//
// Input is expected to be lower-case ASCII (rouge tokens are [a-z0-9]+). Bytes >= 0x80 are treated
// as consonants, as NLTK treats any non-vowel character; NLTK measures length in code points, so
// for non-ASCII input the "<= 2 letters" shortcut may differ (irrelevant for rouge tokens).
#pragma once
#include <string>

namespace peft::eval {

class PorterStemmer {
 public:
  enum class Mode { NLTK_EXTENSIONS, MARTIN_EXTENSIONS, ORIGINAL_ALGORITHM };

  explicit PorterStemmer(Mode mode = Mode::NLTK_EXTENSIONS) : mode_(mode) {}

  // nltk PorterStemmer.stem(word, to_lowercase=True) (ASCII lower-casing).
  std::string stem(const std::string& word) const;

  Mode mode() const { return mode_; }

 private:
  bool is_consonant(const std::string& word, size_t i) const;
  int measure(const std::string& stem) const;
  bool contains_vowel(const std::string& stem) const;
  bool ends_double_consonant(const std::string& word) const;
  bool ends_cvc(const std::string& word) const;

  std::string step1a(const std::string& word) const;
  std::string step1b(const std::string& word) const;
  std::string step1c(const std::string& word) const;
  std::string step2(const std::string& word) const;
  std::string step3(const std::string& word) const;
  std::string step4(const std::string& word) const;
  std::string step5a(const std::string& word) const;
  std::string step5b(const std::string& word) const;

  Mode mode_;
};

// The stemmer rouge_score uses (NLTK_EXTENSIONS), shared and stateless.
const PorterStemmer& rouge_stemmer();

}  // namespace peft::eval
