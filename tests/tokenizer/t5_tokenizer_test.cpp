#include "tokenizer/t5_tokenizer.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "common/error.h"
#include "fixture_paths.h"

namespace fs = std::filesystem;
using peft::T5Tokenizer;

namespace {

fs::path t5_dir() { return peft_test::shared_models_dir() / "t5-tokenizer"; }

#define REQUIRE_T5()                                                                                       \
  if (!fs::exists(t5_dir() / "spiece.model"))                                                              \
  GTEST_SKIP() << "real T5 vocabulary not found at " << t5_dir() << " (../shared/models is absent)"

const T5Tokenizer& t5() {
  static const T5Tokenizer tok(t5_dir() / "spiece.model");
  return tok;
}

}  // namespace

// Every case of t5.jsonl: ids (EOS appended) and decode(skip_special_tokens=True) exactly as HF 4.33.
TEST(T5Tokenizer, MatchesEveryHuggingFaceFixture) {
  REQUIRE_T5();
  const auto rows = peft_test::read_jsonl(peft_test::tokenizer_fixture("t5.jsonl"));
  ASSERT_EQ(rows.size(), 85u) << "fixture file missing or changed: " << peft_test::tokenizer_fixture("t5.jsonl");
  int ids_ok = 0, decode_ok = 0;
  for (const auto& row : rows) {
    SCOPED_TRACE("t5.jsonl case " + peft_test::case_id(row));
    const auto text = row.at("text").get<std::string>();
    const auto expected = row.at("input_ids").get<std::vector<int64_t>>();
    const auto ids = t5().encode(text);
    EXPECT_EQ(ids, expected) << "text: " << text;
    ids_ok += ids == expected;
    const auto decoded = t5().decode(expected, /*skip_special_tokens=*/true);
    EXPECT_EQ(decoded, row.at("decoded").get<std::string>());
    decode_ok += decoded == row.at("decoded").get<std::string>();
  }
  std::cout << "[t5.jsonl] ids " << ids_ok << "/" << rows.size() << ", decoded " << decode_ok << "/" << rows.size()
            << "\n";
}

TEST(T5Tokenizer, VocabularyLayoutAndSentinels) {
  REQUIRE_T5();
  EXPECT_EQ(t5().vocab_size(), 32100);
  EXPECT_EQ(t5().pad_id(), 0);
  EXPECT_EQ(t5().eos_id(), 1);
  EXPECT_EQ(t5().unk_id(), 2);
  EXPECT_EQ(t5().sentinel_id(0), 32099);
  EXPECT_EQ(t5().sentinel_id(99), 32000);
  EXPECT_EQ(t5().token_to_id("<extra_id_0>"), 32099);
  EXPECT_EQ(t5().token_to_id("<extra_id_99>"), 32000);
  EXPECT_EQ(t5().id_to_token(32000), "<extra_id_99>");
  EXPECT_EQ(t5().id_to_token(37), "\xE2\x96\x81The");  // "▁The"
  EXPECT_EQ(t5().fingerprint(), "t5-sentencepiece:7ff27135fa5540876abf818e57cd984a84eeb715b80631725cbbedc71f8c543b");
}

TEST(T5Tokenizer, SpecialTokensSplitLongestMatchAndStripNeighbours) {
  REQUIRE_T5();
  // <extra_id_10> must not be read as <extra_id_1> followed by "0>".
  EXPECT_EQ(t5().encode("<extra_id_10>"), (std::vector<int64_t>{32089, 1}));
  EXPECT_EQ(t5().encode("a<extra_id_1>b"), t5().encode("a <extra_id_1> b"));
  // "x </s> y" = sentencepiece("x") + </s> + sentencepiece("y") + </s>: the special token is cut out first.
  auto expected = t5().encode_no_eos("x");
  expected.push_back(1);
  for (auto id : t5().encode("y")) expected.push_back(id);
  EXPECT_EQ(t5().encode("x </s> y"), expected);
  EXPECT_EQ(t5().encode("x</s>y"), expected);
}

TEST(T5Tokenizer, NoSecondEosWhenTextEndsWithEos) {
  REQUIRE_T5();
  auto expected = t5().encode_no_eos("hello");
  expected.push_back(1);
  EXPECT_EQ(t5().encode("hello </s>"), expected);
  EXPECT_EQ(t5().encode("hello"), expected);
}

TEST(T5Tokenizer, DecodeKeepingSpecialTokens) {
  REQUIRE_T5();
  // HF 4.33 convert_tokens_to_string: a space before a special token run, none after it.
  EXPECT_EQ(t5().decode({37, 32099, 10681, 16, 32098, 2447, 1}, false), "The<extra_id_0> walks in<extra_id_1> park</s>");
  EXPECT_EQ(t5().decode({0, 37, 1, 0}, false), "<pad> The</s><pad>");
  EXPECT_EQ(t5().decode({0, 37, 1, 0}, true), "The");
  EXPECT_THROW(t5().decode({-100}, true), std::out_of_range);
  // Ids of the model's padded output rows (32100..32127) are not special: HF names them "<extra_id_-N>" and
  // SentencePiece copies a piece it does not know verbatim.
  EXPECT_EQ(t5().id_to_token(32100), "<extra_id_-1>");
  EXPECT_EQ(t5().decode({37, 32127}, true), "The<extra_id_-28>");
}

TEST(T5Tokenizer, MissingOrBadModelIsInputErrorNamingTheFile) {
  const fs::path dir = fs::temp_directory_path() / "peft_t5_tok_test";
  fs::create_directories(dir);
  try {
    T5Tokenizer t(dir / "nope.model");
    FAIL() << "expected InputError";
  } catch (const peft::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.model"), std::string::npos) << e.what();
  }
  {
    std::ofstream(dir / "bad.model") << "not a protobuf";
  }
  try {
    T5Tokenizer t(dir / "bad.model");
    FAIL() << "expected InputError";
  } catch (const peft::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.model: not a SentencePiece model"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}
