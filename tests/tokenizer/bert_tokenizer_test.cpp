#include "tokenizer/bert_tokenizer.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "fixture_paths.h"

namespace fs = std::filesystem;
using peft::BertTokenizer;

namespace {

fs::path bert_vocab() { return peft_test::shared_models_dir() / "bert-uncased-vocab" / "vocab.txt"; }

#define REQUIRE_BERT()                                                                                     \
  if (!fs::exists(bert_vocab()))                                                                           \
  GTEST_SKIP() << "real BERT vocabulary not found at " << bert_vocab() << " (../shared/models is absent)"

const BertTokenizer& bert() {
  static const BertTokenizer tok(bert_vocab());
  return tok;
}

}  // namespace

// Every case of bert.jsonl: single texts and longest_first-truncated pairs, ids and token types, as HF 4.33.
TEST(BertTokenizer, MatchesEveryHuggingFaceFixture) {
  REQUIRE_BERT();
  const auto rows = peft_test::read_jsonl(peft_test::tokenizer_fixture("bert.jsonl"));
  ASSERT_EQ(rows.size(), 113u) << "fixture file missing or changed: " << peft_test::tokenizer_fixture("bert.jsonl");
  int ok = 0, pairs = 0;
  for (const auto& row : rows) {
    SCOPED_TRACE("bert.jsonl case " + peft_test::case_id(row));
    std::optional<std::string> text_pair;
    std::optional<size_t> max_length;
    if (row.contains("text_pair")) {
      text_pair = row.at("text_pair").get<std::string>();
      ++pairs;
    }
    if (row.contains("max_length")) {
      ASSERT_EQ(row.at("truncation").get<std::string>(), "longest_first");
      max_length = row.at("max_length").get<size_t>();
    }
    const auto enc = bert().encode_pair(row.at("text").get<std::string>(), text_pair, max_length);
    const auto ids = row.at("input_ids").get<std::vector<int64_t>>();
    const auto types = row.at("token_type_ids").get<std::vector<int64_t>>();
    EXPECT_EQ(enc.input_ids, ids) << "text: " << row.at("text").get<std::string>();
    EXPECT_EQ(enc.token_type_ids, types);
    ok += enc.input_ids == ids && enc.token_type_ids == types;
  }
  EXPECT_GT(pairs, 20);
  std::cout << "[bert.jsonl] " << ok << "/" << rows.size() << " cases (" << pairs << " pairs)\n";
}

TEST(BertTokenizer, KnownIdsAndLayout) {
  REQUIRE_BERT();
  EXPECT_EQ(bert().vocab_size(), 30522);
  EXPECT_EQ(bert().pad_id(), 0);
  EXPECT_EQ(bert().unk_id(), 100);
  EXPECT_EQ(bert().cls_id(), 101);
  EXPECT_EQ(bert().sep_id(), 102);
  EXPECT_EQ(bert().mask_id(), 103);
  EXPECT_EQ(bert().encode("Hello, how are you?"), (std::vector<int64_t>{101, 7592, 1010, 2129, 2024, 2017, 1029, 102}));
  EXPECT_EQ(bert().tokenize("Unaffable"), (std::vector<std::string>{"una", "##ffa", "##ble"}));
  EXPECT_EQ(bert().fingerprint(), "bert-wordpiece:07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3");
}

TEST(BertTokenizer, DecodeJoinsWordPiecesAndCleansSpaces) {
  REQUIRE_BERT();
  const auto ids = bert().encode("Hello, how are you? Unaffable!");
  EXPECT_EQ(bert().decode(ids, true), "hello, how are you? unaffable!");
  EXPECT_EQ(bert().decode(ids, false), "[CLS] hello, how are you? unaffable! [SEP]");
}
