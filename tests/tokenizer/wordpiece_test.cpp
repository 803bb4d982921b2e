// WordPiece / BasicTokenizer edge cases on a tiny vocabulary written here (no external files), mirroring
// the HF BertTokenizer unit tests plus the cases that decide exact ids (length limit, truncation ties).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/error.h"
#include "tokenizer/bert_tokenizer.h"
#include "tokenizer/t5_tokenizer.h"
#include "tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using peft::BasicTokenizer;
using peft::BertTokenizer;
using Strings = std::vector<std::string>;

namespace {
// HF tests/models/bert/test_tokenization_bert.py vocabulary, then the specials this implementation requires.
const Strings kVocab = {"[UNK]", "[CLS]", "[SEP]", "want", "##want", "##ed", "wa", "un", "runn", "##ing", ",",
                        "low", "lowest", "[PAD]", "[MASK]", "a", "##a", "b", "!"};
}  // namespace

TEST(WordPiece, FullTokenizerLowerCasesStripsAccentsAndSplitsPunctuation) {
  const BertTokenizer tok(kVocab);
  EXPECT_EQ(tok.tokenize("UNwant\u00E9d,running"), (Strings{"un", "##want", "##ed", ",", "runn", "##ing"}));
  EXPECT_EQ(tok.encode("UNwant\u00E9d,running"), (std::vector<int64_t>{1, 7, 4, 5, 10, 8, 9, 2}));
}

TEST(WordPiece, GreedyLongestMatchAndUnknownWords) {
  const BertTokenizer tok(kVocab);
  EXPECT_EQ(tok.tokenize(""), Strings{});
  EXPECT_EQ(tok.tokenize("unwanted running"), (Strings{"un", "##want", "##ed", "runn", "##ing"}));
  // One unmatched piece makes the whole word [UNK], not just the tail.
  EXPECT_EQ(tok.tokenize("unwantedX running"), (Strings{"[UNK]", "runn", "##ing"}));
  EXPECT_EQ(tok.tokenize("lowest"), (Strings{"lowest"}));  // longest match, not "low" + ...
}

TEST(WordPiece, WordsLongerThan100CharactersAreUnknown) {
  const BertTokenizer tok(kVocab);
  const auto t100 = tok.tokenize(std::string(100, 'a'));
  ASSERT_EQ(t100.size(), 100u);
  EXPECT_EQ(t100.front(), "a");
  EXPECT_EQ(t100.back(), "##a");
  EXPECT_EQ(tok.tokenize(std::string(101, 'a')), Strings{"[UNK]"});
  // The limit counts code points, not bytes: 60 two-byte characters are one word of 60.
  std::string accented;
  for (int i = 0; i < 60; ++i) accented += "\u00E1";  // á -> a after accent stripping
  EXPECT_EQ(tok.tokenize(accented).size(), 60u);
}

TEST(WordPiece, BasicTokenizerCleaningCjkAndPunctuation) {
  const BasicTokenizer basic(true);
  EXPECT_EQ(basic.tokenize(" \tHeLLo!how  \n Are yoU?  "), (Strings{"hello", "!", "how", "are", "you", "?"}));
  EXPECT_EQ(basic.tokenize("H\u00E9llo"), Strings{"hello"});
  EXPECT_EQ(basic.tokenize("ah\u535A\u63A8zz"), (Strings{"ah", "\u535A", "\u63A8", "zz"}));
  // NUL, U+FFFD, control (\x01) and format (U+200B zero width space) characters vanish without splitting.
  EXPECT_EQ(basic.tokenize(std::string("a\0b", 3) + "\uFFFDc\x01" "d\u200Be"), Strings{"abcde"});
  // U+00A0 is Zs (a space); U+2028 is not Zs but Python's split() still breaks on it.
  EXPECT_EQ(basic.tokenize("a\u00A0b\u2028c"), (Strings{"a", "b", "c"}));
  // ASCII symbols count as punctuation (HF), as do Unicode P* characters; Unicode symbols (S*) do not.
  EXPECT_EQ(basic.tokenize("x^y$z`w\u00BFv\u00A9u"), (Strings{"x", "^", "y", "$", "z", "`", "w", "\u00BF", "v\u00A9u"}));
  // Hangul is not split per syllable; NFD turns it into jamo (letters, kept).
  EXPECT_EQ(basic.tokenize("\uD55C"), Strings{"\u1112\u1161\u11AB"});
  const BasicTokenizer cased(false);
  EXPECT_EQ(cased.tokenize("H\u00E4LLo!"), (Strings{"H\u00E4LLo", "!"}));
}

TEST(WordPiece, SpecialTokensAreKeptOnlyWhenWrittenExactly) {
  const BertTokenizer tok(kVocab);
  EXPECT_EQ(tok.tokenize("[CLS]want[SEP] [MASK]"), (Strings{"[CLS]", "want", "[SEP]", "[MASK]"}));
  // Lower-case spelling is ordinary text: split as punctuation + word.
  EXPECT_EQ(tok.tokenize("[cls]"), (Strings{"[UNK]", "[UNK]", "[UNK]"}));
}

TEST(WordPiece, PairTruncationLongestFirstCutsSecondOnTies) {
  const BertTokenizer tok(kVocab);
  // 3 + 3 tokens, max_length 7 -> remove 2: tie -> second loses one, then first is longer -> first loses one.
  const auto enc = tok.encode_pair("a a a", std::string("b b b"), size_t{7});
  EXPECT_EQ(enc.input_ids, (std::vector<int64_t>{1, 15, 15, 2, 17, 17, 2}));
  EXPECT_EQ(enc.token_type_ids, (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1}));
  // 5 vs 1 token, max_length 7 -> remove 2, both from the longer first sequence.
  const auto enc2 = tok.encode_pair("a a a a a", std::string("b"), size_t{7});
  EXPECT_EQ(enc2.input_ids, (std::vector<int64_t>{1, 15, 15, 15, 2, 17, 2}));
  // An empty second text is still a pair: [CLS] A [SEP] [SEP].
  const auto enc3 = tok.encode_pair("a", std::string(""), std::nullopt);
  EXPECT_EQ(enc3.input_ids, (std::vector<int64_t>{1, 15, 2, 2}));
  EXPECT_EQ(enc3.token_type_ids, (std::vector<int64_t>{0, 0, 0, 1}));
  // Single sequence: cut to max_length including [CLS]/[SEP].
  EXPECT_EQ(tok.encode_pair("a a a a", std::nullopt, size_t{4}).input_ids, (std::vector<int64_t>{1, 15, 15, 2}));
}

TEST(WordPiece, DecodeAndMissingSpecialToken) {
  const BertTokenizer tok(kVocab);
  EXPECT_EQ(tok.decode(tok.encode("unwanted, running!"), true), "unwanted, running!");
  try {
    BertTokenizer bad(Strings{"[CLS]", "[SEP]", "[PAD]", "[MASK]", "a"}, true, "tiny/vocab.txt");
    FAIL() << "expected InputError";
  } catch (const peft::InputError& e) {
    EXPECT_STREQ(e.what(), "tiny/vocab.txt: missing special token '[UNK]'");
  }
}

TEST(LoadTokenizer, ChoosesByFileAndNamesDirectoryWhenNoneFound) {
  const fs::path dir = fs::temp_directory_path() / "peft_load_tok_test";
  fs::remove_all(dir);
  fs::create_directories(dir);
  try {
    peft::load_tokenizer(dir);
    FAIL() << "expected InputError";
  } catch (const peft::InputError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("spiece.model or vocab.txt"), std::string::npos) << e.what();
  }
  {
    std::ofstream out(dir / "vocab.txt");
    for (const auto& t : kVocab) out << t << "\n";
  }
  const auto tok = peft::load_tokenizer(dir);
  EXPECT_EQ(tok->name(), "bert-wordpiece");
  EXPECT_EQ(tok->vocab_size(), static_cast<int64_t>(kVocab.size()));
  EXPECT_EQ(tok->pad_id(), 13);
  EXPECT_EQ(tok->eos_id(), 2);
  EXPECT_EQ(tok->encode("want"), (std::vector<int64_t>{1, 3, 2}));
  // Same vocabulary, same fingerprint; a different file, a different one.
  EXPECT_EQ(tok->fingerprint(), BertTokenizer(dir / "vocab.txt").fingerprint());
  EXPECT_NE(tok->fingerprint(), BertTokenizer(Strings{"[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"}).fingerprint());
  fs::remove_all(dir);

  const fs::path t5 = fs::path(PEFT_SOURCE_DIR) / ".." / "shared" / "models" / "t5-tokenizer";
  if (fs::exists(t5 / "spiece.model")) {
    const auto t = peft::load_tokenizer(t5);
    EXPECT_EQ(t->name(), "t5-sentencepiece");
    EXPECT_EQ(t->vocab_size(), 32100);
  }
}
