// SuperNI metric tests. Expected values are computed by hand in the comments; the last tests compare
// with values produced by the Python reference (rouge_score's tokenizer + _score_lcs with NLTK 3.8's
// stemmer, SuperNI's normalize_answer; tests/eval/data/gen_reference.py) on real SuperNI text.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>
#include <vector>

#include "eval/metrics.h"

using namespace peft::eval;
using Tokens = std::vector<std::string>;

TEST(RougeTokenize, LowercasesSplitsAndStems) {
  // "the cats are running " -> the, cats (stem: s removed) -> cat, are (3 chars: not stemmed),
  // running -> ing removed, "runn" double n -> "run".
  EXPECT_EQ(rouge_tokenize("The cats are running!"), (Tokens{"the", "cat", "are", "run"}));
  // digits are kept; "answer": step 4 'er' needs m("answ") > 1 but m = 1 -> unchanged.
  EXPECT_EQ(rouge_tokenize("Answer: 42."), (Tokens{"answer", "42"}));
  // '_' is not in [a-z0-9] -> separator.
  EXPECT_EQ(rouge_tokenize("hello_world"), (Tokens{"hello", "world"}));
  // Tokens of <= 3 chars are not stemmed: "cats" -> "cat" but "has" stays (stem would give "ha").
  EXPECT_EQ(rouge_tokenize("has cats"), (Tokens{"has", "cat"}));
}

TEST(RougeTokenize, EmptyAndPunctuationOnly) {
  EXPECT_TRUE(rouge_tokenize("").empty());
  EXPECT_TRUE(rouge_tokenize("  !!! --- ...\n\t").empty());
}

TEST(RougeTokenize, NonAsciiActsAsSeparator) {
  // "café": é (2 UTF-8 bytes) is not in [a-z0-9] -> "caf " -> ["caf"] (3 chars, not stemmed).
  EXPECT_EQ(rouge_tokenize("café"), (Tokens{"caf"}));
  // "naïve résumé" -> "na ve r sum " ; "sum" has 3 chars.
  EXPECT_EQ(rouge_tokenize("naïve résumé"), (Tokens{"na", "ve", "r", "sum"}));
  // Greek only: every letter is a separator -> no tokens.
  EXPECT_TRUE(rouge_tokenize("ΣΟΦΟΣ σοφία").empty());
  // Python's lower() maps U+0130 to "i" + U+0307 (a separator), and KELVIN SIGN U+212A to "k".
  EXPECT_EQ(rouge_tokenize("\xC4\xB0stanbul"), (Tokens{"i", "stanbul"}));
  EXPECT_EQ(rouge_tokenize("\xE2\x84\xAA" "elvin"), (Tokens{"kelvin"}));
  // A malformed byte is a separator too.
  EXPECT_EQ(rouge_tokenize("ab\xFF" "cd"), (Tokens{"ab", "cd"}));
}

TEST(RougeL, IdenticalAndPartial) {
  EXPECT_DOUBLE_EQ(rouge_l("the cat sat", "the cat sat"), 1.0);
  // pred [the, cat], ref [the, cat, sat, on, the, mat]: LCS 2, P = 2/2, R = 2/6,
  // F = 2 * 1 * (1/3) / (4/3) = 0.5.
  EXPECT_DOUBLE_EQ(rouge_l("the cat", "the cat sat on the mat"), 0.5);
  // pred [a, b, c, d], ref [a, c]: LCS 2, P = 1/2, R = 1, F = 1 / 1.5 = 2/3.
  EXPECT_DOUBLE_EQ(rouge_l("a b c d", "a c"), 2.0 / 3.0);
  // Order matters: [cat, the] vs [the, cat]: LCS 1, P = R = 1/2 -> F = 1/2.
  EXPECT_DOUBLE_EQ(rouge_l("cat the", "the cat"), 0.5);
  // No common token -> LCS 0 -> P = R = 0 -> F = 0.
  EXPECT_DOUBLE_EQ(rouge_l("dog", "the cat"), 0.0);
}

TEST(RougeL, RepeatedTokens) {
  // pred [the, the, the, cat], ref [the, cat, the, cat]: LCS = "the the cat" = 3 (not 4: only two
  // "the" in ref), P = 3/4, R = 3/4 -> F = 0.75.
  EXPECT_DOUBLE_EQ(rouge_l("the the the cat", "the cat the cat"), 0.75);
  // pred [a, a], ref [a]: LCS 1, P = 1/2, R = 1 -> F = 2/3 (repeating the answer is penalised).
  EXPECT_DOUBLE_EQ(rouge_l("a a", "a"), 2.0 / 3.0);
}

TEST(RougeL, StemmingAndCaseMakeMatches) {
  // [run, cat] on both sides -> 1.
  EXPECT_DOUBLE_EQ(rouge_l("running cats", "Run, cat!"), 1.0);
  // Argument order: rouge_l(pred, ref). pred [a, b, c, d] vs ref [a, c] is 2/3 (above); the F-measure
  // is symmetric in P and R, so swapping sides gives the same value.
  EXPECT_DOUBLE_EQ(rouge_l("a c", "a b c d"), 2.0 / 3.0);
}

TEST(RougeL, EmptySidesScoreZero) {
  EXPECT_DOUBLE_EQ(rouge_l("", "the cat"), 0.0);
  EXPECT_DOUBLE_EQ(rouge_l("the cat", ""), 0.0);
  EXPECT_DOUBLE_EQ(rouge_l("", ""), 0.0);  // unlike exact match, which gives 1 here
  EXPECT_DOUBLE_EQ(rouge_l("?!", "?!"), 0.0);
}

TEST(RougeL, AccentsAreSeparators) {
  // "café" -> [caf]; "cafe" -> stem keeps the e (m("caf") = 1 and "caf" ends cvc) -> [cafe]: no match.
  EXPECT_DOUBLE_EQ(rouge_l("café", "cafe"), 0.0);
  // "café au lait" -> [caf, au, lait]; "cafe au lait" -> [cafe, au, lait]: LCS 2, P = R = 2/3 -> 2/3.
  EXPECT_DOUBLE_EQ(rouge_l("café au lait", "cafe au lait"), 2.0 / 3.0);
}

TEST(NormalizeAnswer, LowerPunctuationWhitespace) {
  EXPECT_EQ(normalize_answer("  Hello,   World!  "), "hello world");
  // Punctuation is deleted, not replaced by a space.
  EXPECT_EQ(normalize_answer("a-b (c)"), "ab c");
  // Articles are kept (unlike SQuAD).
  EXPECT_EQ(normalize_answer("The Answer"), "the answer");
  EXPECT_EQ(normalize_answer(""), "");
  EXPECT_EQ(normalize_answer("!!! ..."), "");
  // Python's str.split() also splits on NBSP (U+00A0) and other Unicode spaces.
  EXPECT_EQ(normalize_answer("the\xC2\xA0" "answer\xE3\x80\x80x"), "the answer x");
  // Non-ASCII punctuation is not in string.punctuation: '…' stays.
  EXPECT_EQ(normalize_answer("answer\xE2\x80\xA6"), "answer\xE2\x80\xA6");
}

TEST(NormalizeAnswer, UnicodeLowercase) {
  EXPECT_EQ(normalize_answer("CAFÉ"), "café");               // É U+00C9 -> é U+00E9
  EXPECT_EQ(normalize_answer("ПРИВЕТ"), "привет");           // Cyrillic
  EXPECT_EQ(normalize_answer("ＡＢＣ"), "ａｂｃ");           // fullwidth
  EXPECT_EQ(normalize_answer("ΣΟΦΟΣ"), "σοφος");             // final sigma at the end of the word
  EXPECT_EQ(normalize_answer("Σ"), "σ");                     // alone: not final
  EXPECT_EQ(normalize_answer("\xC4\xB0"), "i\xCC\x87");      // U+0130 -> "i" + U+0307
  EXPECT_EQ(normalize_answer("ŁÓDŹ"), "łódź");               // Latin Extended-A
}

TEST(ExactMatch, Cases) {
  EXPECT_DOUBLE_EQ(exact_match("The Answer.", "the answer"), 1.0);
  EXPECT_DOUBLE_EQ(exact_match("  the   answer ", "the answer"), 1.0);
  EXPECT_DOUBLE_EQ(exact_match("a-b", "ab"), 1.0);   // '-' deleted
  EXPECT_DOUBLE_EQ(exact_match("a-b", "a b"), 0.0);  // ... not turned into a space
  EXPECT_DOUBLE_EQ(exact_match("the answer", "answer"), 0.0);
  EXPECT_DOUBLE_EQ(exact_match("CAFÉ", "café"), 1.0);
  EXPECT_DOUBLE_EQ(exact_match("café", "cafe"), 0.0);
  EXPECT_DOUBLE_EQ(exact_match("", ""), 1.0);
  EXPECT_DOUBLE_EQ(exact_match("!!!", ""), 1.0);  // both normalise to ""
  EXPECT_DOUBLE_EQ(exact_match("", "x"), 0.0);
}

TEST(BestOverRefs, TakesMaximumAndRejectsNoRefs) {
  // vs "B": pred [the, answer, is, b], ref [b]: LCS 1, P = 1/4, R = 1 -> F = 0.5 / 1.25 = 0.4;
  // vs "the answer is b": 1.0 -> max 1.0.
  EXPECT_DOUBLE_EQ(best_over_refs(rouge_l, "The answer is B", {"B"}), 0.4);
  EXPECT_DOUBLE_EQ(best_over_refs(rouge_l, "The answer is B", {"B", "the answer is b"}), 1.0);
  // Tie: both refs give 0.5 -> 0.5.
  EXPECT_DOUBLE_EQ(best_over_refs(rouge_l, "cat the", {"the cat", "the cat"}), 0.5);
  EXPECT_DOUBLE_EQ(best_over_refs(exact_match, "b", {"a", "(B)"}), 1.0);
  EXPECT_THROW(best_over_refs(rouge_l, "x", {}), std::invalid_argument);
}

TEST(ScoreGeneration, MeanTimes100WithMissingPredictions) {
  const std::vector<std::vector<std::string>> refs = {
      {"the cat sat on the mat"},  // pred "the cat": rouge 0.5, em 0
      {"b", "(B)"},                // pred "B": rouge 1 ([b] vs [b]), em 1
      {"something"},               // pred "" : rouge 0, em 0
  };
  // rouge = (0.5 + 1 + 0) / 3 * 100 = 50; em = 1/3 * 100 = 33.33...
  const GenerationScores full = score_generation({"the cat", "B", ""}, refs);
  EXPECT_DOUBLE_EQ(full.rouge_l, 50.0);
  EXPECT_DOUBLE_EQ(full.exact_match, 100.0 / 3.0);
  // The third prediction missing counts as "" -> same scores.
  const GenerationScores missing = score_generation({"the cat", "B"}, refs);
  EXPECT_DOUBLE_EQ(missing.rouge_l, 50.0);
  EXPECT_DOUBLE_EQ(missing.exact_match, 100.0 / 3.0);
  // No predictions at all: every instance scores 0.
  const GenerationScores none = score_generation({}, refs);
  EXPECT_DOUBLE_EQ(none.rouge_l, 0.0);
  EXPECT_DOUBLE_EQ(none.exact_match, 0.0);
}

TEST(ScoreGeneration, MetricsTakeTheirMaximaIndependently) {
  // pred "ab", refs ["a-b", "ab c"]:
  //   exact match: "ab" == normalize("a-b") = "ab" -> 1 (first ref);
  //   rouge: vs [a, b] -> LCS 0 -> 0; vs [ab, c] -> LCS 1, P = 1, R = 1/2 -> 2/3 (second ref).
  const GenerationScores s = score_generation({"ab"}, {{"a-b", "ab c"}});
  EXPECT_DOUBLE_EQ(s.exact_match, 100.0);
  EXPECT_DOUBLE_EQ(s.rouge_l, 200.0 / 3.0);
}

TEST(ScoreGeneration, RejectsBadShapes) {
  EXPECT_THROW(score_generation({}, {}), std::invalid_argument);
  EXPECT_THROW(score_generation({"a", "b"}, {{"a"}}), std::invalid_argument);
  EXPECT_THROW(score_generation({"a"}, {{}}), std::invalid_argument);
}

TEST(Classification, AccuracyAndMacroF1) {
  // golds [0,1,2,2], preds [0,2,2,2]: accuracy 3/4.
  // class 0: tp 1 -> F1 1; class 1: tp 0, fn 1 -> P = 0 (undefined), R = 0 -> F1 0;
  // class 2: tp 2, fp 1 -> P = 2/3, R = 1 -> F1 = (4/3) / (5/3) = 0.8. Macro = 1.8 / 3 = 0.6.
  EXPECT_DOUBLE_EQ(accuracy({0, 1, 2, 2}, {0, 2, 2, 2}), 0.75);
  EXPECT_NEAR(macro_f1({0, 1, 2, 2}, {0, 2, 2, 2}), 0.6, 1e-15);
  // A label only predicted (5) joins the label set with F1 0:
  // class 0: 1; class 1: tp 1, fn 1 -> P = 1, R = 1/2 -> 2/3; class 5: 0. Macro = (5/3) / 3 = 5/9.
  EXPECT_DOUBLE_EQ(accuracy({0, 0, 1, 1}, {0, 0, 1, 5}), 0.75);
  EXPECT_NEAR(macro_f1({0, 0, 1, 1}, {0, 0, 1, 5}), 5.0 / 9.0, 1e-15);
  // Perfect predictions.
  EXPECT_DOUBLE_EQ(macro_f1({3, 1, 3}, {3, 1, 3}), 1.0);
  EXPECT_DOUBLE_EQ(accuracy({3, 1, 3}, {3, 1, 3}), 1.0);
  // All wrong, two labels: class 0: tp 0 -> 0; class 1: tp 0 -> 0. Macro 0.
  EXPECT_DOUBLE_EQ(macro_f1({0, 0}, {1, 1}), 0.0);
  EXPECT_THROW(accuracy({0, 1}, {0}), std::invalid_argument);
  EXPECT_THROW(macro_f1({}, {}), std::invalid_argument);
}

TEST(ReferenceValues, MatchPythonOnSuperNiText) {
  std::ifstream in(std::string(PEFT_SOURCE_DIR) + "/tests/eval/data/rouge_reference.jsonl");
  ASSERT_TRUE(in.good());
  std::string line;
  std::vector<std::string> preds;
  std::vector<std::vector<std::string>> refs;
  double rouge_sum = 0.0, em_sum = 0.0;
  while (std::getline(in, line)) {
    const auto j = nlohmann::json::parse(line);
    const std::string pred = j.at("pred").get<std::string>();
    const auto instance_refs = j.at("refs").get<std::vector<std::string>>();
    EXPECT_NEAR(best_over_refs(rouge_l, pred, instance_refs), j.at("rouge_l").get<double>(), 1e-12) << line;
    EXPECT_DOUBLE_EQ(best_over_refs(exact_match, pred, instance_refs), j.at("exact_match").get<double>()) << line;
    preds.push_back(pred);
    refs.push_back(instance_refs);
    rouge_sum += j.at("rouge_l").get<double>();
    em_sum += j.at("exact_match").get<double>();
  }
  ASSERT_GT(preds.size(), 100u);
  const GenerationScores s = score_generation(preds, refs);
  EXPECT_NEAR(s.rouge_l, 100.0 * rouge_sum / preds.size(), 1e-9);
  EXPECT_NEAR(s.exact_match, 100.0 * em_sum / preds.size(), 1e-9);
}
