// Port of nltk/stem/porter.py. Rule tables and their order follow NLTK exactly: in NLTK's
// _apply_rule_list the FIRST rule whose suffix matches decides, even when its condition fails
// (then the word is returned unchanged), so order is part of the algorithm.
#include "eval/porter_stemmer.h"

#include <unordered_map>
#include <vector>

namespace peft::eval {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

bool is_vowel_char(char c) { return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u'; }

// Conditions used by the rule tables. kLogi is NLTK's 'logi' rule, whose condition looks at
// word[:-3] (the 'l' stays with the stem) instead of the stem.
enum class Cond { kNone, kMeasureGt0, kMeasureGt1, kIon, kLogi };

struct Rule {
  const char* suffix;
  const char* replacement;
  Cond cond;
};

// NLTK's irregular-form table (NLTK_EXTENSIONS only): form -> paradigm; stemming is bypassed.
const std::unordered_map<std::string, std::string>& irregular_pool() {
  static const std::unordered_map<std::string, std::string> pool = {
      {"sky", "sky"},         {"skies", "sky"},         {"dying", "die"},       {"lying", "lie"},
      {"tying", "tie"},       {"news", "news"},         {"innings", "inning"},  {"inning", "inning"},
      {"outings", "outing"},  {"outing", "outing"},     {"cannings", "canning"}, {"canning", "canning"},
      {"howe", "howe"},       {"proceed", "proceed"},   {"exceed", "exceed"},   {"succeed", "succeed"},
  };
  return pool;
}

}  // namespace

bool PorterStemmer::is_consonant(const std::string& word, size_t i) const {
  const char c = word[i];
  if (is_vowel_char(c)) return false;
  if (c != 'y') return true;
  // 'y' is a consonant iff it starts the word or follows a vowel; NLTK recurses through runs of
  // 'y', which alternate. Walk back over the run instead of recursing (no deep stacks on "yyyy…").
  size_t run = 0;  // number of 'y' ending at i
  size_t j = i + 1;
  while (j > 0 && word[j - 1] == 'y') {
    --j;
    ++run;
  }
  // j = index of first 'y' in the run; the 'y' at j is a consonant iff j == 0 or word[j-1] is a vowel.
  const bool first_is_consonant = (j == 0) || is_vowel_char(word[j - 1]);
  return ((run - 1) % 2 == 0) ? first_is_consonant : !first_is_consonant;
}

int PorterStemmer::measure(const std::string& stem) const {
  // NLTK: number of "vc" pairs in the consonant/vowel pattern string.
  int m = 0;
  bool prev_vowel = false;
  for (size_t i = 0; i < stem.size(); ++i) {
    const bool cons = is_consonant(stem, i);
    if (cons && prev_vowel) ++m;
    prev_vowel = !cons;
  }
  return m;
}

bool PorterStemmer::contains_vowel(const std::string& stem) const {
  for (size_t i = 0; i < stem.size(); ++i)
    if (!is_consonant(stem, i)) return true;
  return false;
}

bool PorterStemmer::ends_double_consonant(const std::string& word) const {
  const size_t n = word.size();
  return n >= 2 && word[n - 1] == word[n - 2] && is_consonant(word, n - 1);
}

bool PorterStemmer::ends_cvc(const std::string& word) const {
  const size_t n = word.size();
  if (n >= 3 && is_consonant(word, n - 3) && !is_consonant(word, n - 2) && is_consonant(word, n - 1) &&
      word[n - 1] != 'w' && word[n - 1] != 'x' && word[n - 1] != 'y')
    return true;
  // NLTK extension: a 2-letter vowel-consonant word also counts (so "are", "eve", "ice" keep -e).
  return mode_ == Mode::NLTK_EXTENSIONS && n == 2 && !is_consonant(word, 0) && is_consonant(word, 1);
}

namespace {

template <typename Self>
std::string apply_rules(const Self& self, const std::string& word, const std::vector<Rule>& rules,
                        int (Self::*measure)(const std::string&) const) {
  for (const Rule& rule : rules) {
    const std::string suffix = rule.suffix;
    if (!ends_with(word, suffix)) continue;
    const std::string stem = word.substr(0, word.size() - suffix.size());
    bool ok = true;
    switch (rule.cond) {
      case Cond::kNone: break;
      case Cond::kMeasureGt0: ok = (self.*measure)(stem) > 0; break;
      case Cond::kMeasureGt1: ok = (self.*measure)(stem) > 1; break;
      case Cond::kIon: ok = (self.*measure)(stem) > 1 && !stem.empty() && (stem.back() == 's' || stem.back() == 't'); break;
      case Cond::kLogi: ok = (self.*measure)(word.substr(0, word.size() - 3)) > 0; break;
    }
    return ok ? stem + rule.replacement : word;  // first matching suffix decides
  }
  return word;
}

}  // namespace

std::string PorterStemmer::step1a(const std::string& word) const {
  // NLTK extension: 'ties' -> 'tie' (4-letter -ies words keep 'ie'), 'flies' -> 'fli'.
  if (mode_ == Mode::NLTK_EXTENSIONS && word.size() == 4 && ends_with(word, "ies")) return word.substr(0, 1) + "ie";
  static const std::vector<Rule> rules = {
      {"sses", "ss", Cond::kNone}, {"ies", "i", Cond::kNone}, {"ss", "ss", Cond::kNone}, {"s", "", Cond::kNone}};
  return apply_rules(*this, word, rules, &PorterStemmer::measure);
}

std::string PorterStemmer::step1b(const std::string& word) const {
  // NLTK extension: 'died' -> 'die', 'spied' -> 'spi'.
  if (mode_ == Mode::NLTK_EXTENSIONS && ends_with(word, "ied")) {
    return word.size() == 4 ? word.substr(0, 1) + "ie" : word.substr(0, word.size() - 3) + "i";
  }
  if (ends_with(word, "eed")) {
    const std::string stem = word.substr(0, word.size() - 3);
    return measure(stem) > 0 ? stem + "ee" : word;  // "feed" stays: the -ed rule is not tried
  }
  std::string stem;
  bool trimmed = false;
  for (const char* suffix : {"ed", "ing"}) {
    if (ends_with(word, suffix)) {
      stem = word.substr(0, word.size() - std::string(suffix).size());
      if (contains_vowel(stem)) {
        trimmed = true;
        break;
      }
    }
  }
  if (!trimmed) return word;
  // Tidy-up rules, in NLTK's order: at->ate, bl->ble, iz->ize, *d (not l/s/z) -> single letter,
  // (m=1 and *o) -> +e. The *d rule, when the stem ends in a double consonant, decides alone.
  if (ends_with(stem, "at")) return stem + "e";
  if (ends_with(stem, "bl")) return stem + "e";
  if (ends_with(stem, "iz")) return stem + "e";
  if (ends_double_consonant(stem)) {
    const char last = stem.back();
    return (last != 'l' && last != 's' && last != 'z') ? stem.substr(0, stem.size() - 1) : stem;
  }
  if (measure(stem) == 1 && ends_cvc(stem)) return stem + "e";
  return stem;
}

std::string PorterStemmer::step1c(const std::string& word) const {
  if (!ends_with(word, "y")) return word;
  const std::string stem = word.substr(0, word.size() - 1);
  bool ok;
  if (mode_ == Mode::NLTK_EXTENSIONS) {
    // y -> i only after a consonant that is not the whole stem: happy->happi, enjoy->enjoy, fly->fli.
    ok = stem.size() > 1 && is_consonant(stem, stem.size() - 1);
  } else {
    ok = contains_vowel(stem);
  }
  return ok ? stem + "i" : word;
}

std::string PorterStemmer::step2(const std::string& word) const {
  if (mode_ == Mode::NLTK_EXTENSIONS && ends_with(word, "alli") &&
      measure(word.substr(0, word.size() - 4)) > 0) {
    // NLTK applies alli->al first and re-runs step 2 on the result.
    return step2(word.substr(0, word.size() - 4) + "al");
  }
  auto build = [](Mode mode) {
    std::vector<Rule> rules = {
        {"ational", "ate", Cond::kMeasureGt0},
        {"tional", "tion", Cond::kMeasureGt0},
        {"enci", "ence", Cond::kMeasureGt0},
        {"anci", "ance", Cond::kMeasureGt0},
        {"izer", "ize", Cond::kMeasureGt0},
        mode == Mode::ORIGINAL_ALGORITHM ? Rule{"abli", "able", Cond::kMeasureGt0}
                                         : Rule{"bli", "ble", Cond::kMeasureGt0},
        {"alli", "al", Cond::kMeasureGt0},
        {"entli", "ent", Cond::kMeasureGt0},
        {"eli", "e", Cond::kMeasureGt0},
        {"ousli", "ous", Cond::kMeasureGt0},
        {"ization", "ize", Cond::kMeasureGt0},
        {"ation", "ate", Cond::kMeasureGt0},
        {"ator", "ate", Cond::kMeasureGt0},
        {"alism", "al", Cond::kMeasureGt0},
        {"iveness", "ive", Cond::kMeasureGt0},
        {"fulness", "ful", Cond::kMeasureGt0},
        {"ousness", "ous", Cond::kMeasureGt0},
        {"aliti", "al", Cond::kMeasureGt0},
        {"iviti", "ive", Cond::kMeasureGt0},
        {"biliti", "ble", Cond::kMeasureGt0},
    };
    if (mode == Mode::NLTK_EXTENSIONS) {
      rules.push_back({"fulli", "ful", Cond::kMeasureGt0});
      rules.push_back({"logi", "log", Cond::kLogi});
    } else if (mode == Mode::MARTIN_EXTENSIONS) {
      rules.push_back({"logi", "log", Cond::kMeasureGt0});
    }
    return rules;
  };
  static const std::vector<Rule> nltk_rules = build(Mode::NLTK_EXTENSIONS);
  static const std::vector<Rule> martin_rules = build(Mode::MARTIN_EXTENSIONS);
  static const std::vector<Rule> original_rules = build(Mode::ORIGINAL_ALGORITHM);
  const std::vector<Rule>& rules = mode_ == Mode::NLTK_EXTENSIONS     ? nltk_rules
                                   : mode_ == Mode::MARTIN_EXTENSIONS ? martin_rules
                                                                      : original_rules;
  return apply_rules(*this, word, rules, &PorterStemmer::measure);
}

std::string PorterStemmer::step3(const std::string& word) const {
  static const std::vector<Rule> rules = {
      {"icate", "ic", Cond::kMeasureGt0}, {"ative", "", Cond::kMeasureGt0}, {"alize", "al", Cond::kMeasureGt0},
      {"iciti", "ic", Cond::kMeasureGt0}, {"ical", "ic", Cond::kMeasureGt0}, {"ful", "", Cond::kMeasureGt0},
      {"ness", "", Cond::kMeasureGt0},
  };
  return apply_rules(*this, word, rules, &PorterStemmer::measure);
}

std::string PorterStemmer::step4(const std::string& word) const {
  static const std::vector<Rule> rules = {
      {"al", "", Cond::kMeasureGt1},   {"ance", "", Cond::kMeasureGt1}, {"ence", "", Cond::kMeasureGt1},
      {"er", "", Cond::kMeasureGt1},   {"ic", "", Cond::kMeasureGt1},   {"able", "", Cond::kMeasureGt1},
      {"ible", "", Cond::kMeasureGt1}, {"ant", "", Cond::kMeasureGt1},  {"ement", "", Cond::kMeasureGt1},
      {"ment", "", Cond::kMeasureGt1}, {"ent", "", Cond::kMeasureGt1},  {"ion", "", Cond::kIon},
      {"ou", "", Cond::kMeasureGt1},   {"ism", "", Cond::kMeasureGt1},  {"ate", "", Cond::kMeasureGt1},
      {"iti", "", Cond::kMeasureGt1},  {"ous", "", Cond::kMeasureGt1},  {"ive", "", Cond::kMeasureGt1},
      {"ize", "", Cond::kMeasureGt1},
  };
  return apply_rules(*this, word, rules, &PorterStemmer::measure);
}

std::string PorterStemmer::step5a(const std::string& word) const {
  // Both E rules are tried (unlike _apply_rule_list): (m>1) E -> ; (m=1 and not *o) E -> .
  if (!ends_with(word, "e")) return word;
  const std::string stem = word.substr(0, word.size() - 1);
  const int m = measure(stem);
  if (m > 1) return stem;
  if (m == 1 && !ends_cvc(stem)) return stem;
  return word;
}

std::string PorterStemmer::step5b(const std::string& word) const {
  // (m > 1 and *d and *L) -> single letter; NLTK measures word[:-1].
  if (ends_with(word, "ll") && measure(word.substr(0, word.size() - 1)) > 1) return word.substr(0, word.size() - 1);
  return word;
}

std::string PorterStemmer::stem(const std::string& word) const {
  std::string s = word;
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (mode_ == Mode::NLTK_EXTENSIONS) {
    // NLTK looks up the (un-lowered) word but returns pool[lowered]; identical for lower-case input.
    const auto& pool = irregular_pool();
    auto it = pool.find(word);
    if (it != pool.end()) return it->second;
  }
  if (mode_ != Mode::ORIGINAL_ALGORITHM && word.size() <= 2) return s;
  s = step1a(s);
  s = step1b(s);
  s = step1c(s);
  s = step2(s);
  s = step3(s);
  s = step4(s);
  s = step5a(s);
  s = step5b(s);
  return s;
}

const PorterStemmer& rouge_stemmer() {
  static const PorterStemmer stemmer(PorterStemmer::Mode::NLTK_EXTENSIONS);
  return stemmer;
}

}  // namespace peft::eval
