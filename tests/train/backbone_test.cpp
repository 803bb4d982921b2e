// The embedded default backbone (models/peft-tiny-t5/, built by scripts/make_backbone.sh) and the
// span-corruption objective it was trained with.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <random>

#include "io/checkpoint.h"
#include "models/t5/load.h"
#include "tokenizer/t5_tokenizer.h"
#include "train/backbone.h"

using namespace peft;
namespace fs = std::filesystem;

namespace {

const fs::path kModel = fs::path(PEFT_SOURCE_DIR) / "models" / "peft-tiny-t5";

TEST(BackboneNoise, MaskHasT5Counts) {
  // length 64, density 0.15, mean span 3 -> round(9.6) = 10 noise tokens in round(10/3) = 3 spans.
  for (uint64_t seed = 0; seed < 20; ++seed) {
    std::mt19937_64 rng(seed);
    const auto mask = train::random_spans_noise_mask(64, 0.15, 3.0, rng);
    ASSERT_EQ(mask.size(), 64u);
    int noise = 0, spans = 0;
    for (size_t i = 0; i < mask.size(); ++i) {
      noise += mask[i];
      spans += mask[i] && (i == 0 || !mask[i - 1]);
    }
    EXPECT_EQ(noise, 10);
    EXPECT_EQ(spans, 3);
    EXPECT_FALSE(mask[0]);  // T5 starts with a non-noise span
  }
}

TEST(BackboneNoise, ShortSequencesStillGetOneSpan) {
  std::mt19937_64 rng(1);
  const auto mask = train::random_spans_noise_mask(3, 0.15, 3.0, rng);
  ASSERT_EQ(mask.size(), 3u);
  EXPECT_EQ(std::count(mask.begin(), mask.end(), true), 1);  // at least one noise token
  EXPECT_FALSE(mask[0]);
}

TEST(BackboneNoise, SpanCorruptionAlignsSentinels) {
  // tokens 10..19, noise at 2,3 and 7: two spans -> <extra_id_0> = 99, <extra_id_1> = 98 for vocab 100.
  const std::vector<int64_t> tokens = {10, 11, 12, 13, 14, 15, 16, 17, 18, 19};
  const std::vector<bool> mask = {false, false, true, true, false, false, false, true, false, false};
  const auto c = train::span_corruption(tokens, mask, /*tokenizer_vocab_size=*/100, /*eos_id=*/1);
  EXPECT_EQ(c.inputs, (std::vector<int64_t>{10, 11, 99, 14, 15, 16, 98, 18, 19, 1}));
  EXPECT_EQ(c.targets, (std::vector<int64_t>{99, 12, 13, 98, 17, 1}));
  EXPECT_THROW(train::span_corruption(tokens, {true}, 100, 1), std::invalid_argument);
}

TEST(BackboneConfig, EveryTokenizerIdHasARow) {
  const auto c = train::tiny_t5_config(2100);
  EXPECT_EQ(c.vocab_size, 2104);
  EXPECT_TRUE(c.is_gated_act);
  EXPECT_EQ(c.dense_act_fn, "gelu_new");
  EXPECT_FALSE(c.tie_word_embeddings);
  EXPECT_EQ(train::tiny_t5_config(2104).vocab_size, 2104);
}

TEST(EmbeddedBackbone, LoadsTokenizesAndGivesFiniteLoss) {
  ASSERT_TRUE(fs::exists(kModel / "config.json")) << "run scripts/make_backbone.sh";
  const auto ckpt = io::read_hf_checkpoint(kModel);
  EXPECT_EQ(ckpt.config.at("model_type"), "t5");
  EXPECT_EQ(ckpt.config.at("feed_forward_proj"), "gated-gelu");
  EXPECT_EQ(ckpt.config.at("tie_word_embeddings"), false);
  EXPECT_EQ(ckpt.config.at("architectures")[0], "T5ForConditionalGeneration");
  auto model = load_t5(ckpt);

  const T5Tokenizer tok(kModel / "spiece.model");
  EXPECT_EQ(tok.pad_id(), 0);
  EXPECT_EQ(tok.eos_id(), 1);
  EXPECT_EQ(tok.unk_id(), 2);
  EXPECT_LE(tok.vocab_size(), model->config().vocab_size);
  EXPECT_EQ(tok.token_to_id("<extra_id_0>"), tok.vocab_size() - 1);

  const std::string text = "The capital of france is paris. Anna bought 12 red apples.";
  const auto ids = tok.encode(text);
  EXPECT_EQ(ids.back(), 1);
  EXPECT_EQ(tok.decode(ids, /*skip_special_tokens=*/true), text);

  // Span filling on a sentence not in the corpus: the trained model must beat a uniform guess (log V = 7.38
  // nats) clearly, and a randomly initialised model of the same shape by far (4.96 vs ~40 nats when written).
  const auto plain = tok.encode_no_eos(text);
  std::vector<bool> mask(plain.size(), false);
  mask[plain.size() / 2] = mask[plain.size() / 2 + 1] = true;
  const auto c = train::span_corruption(plain, mask, tok.vocab_size(), tok.eos_id());
  auto as_tensor = [](const std::vector<int64_t>& v) { return torch::tensor(v, torch::kLong).unsqueeze(0); };
  const auto input_ids = as_tensor(c.inputs);
  torch::NoGradGuard ng;
  const auto out = model->forward(input_ids, torch::ones_like(input_ids), {}, {}, as_tensor(c.targets), {});
  const double loss = out.loss.item<double>();
  EXPECT_TRUE(std::isfinite(loss));
  EXPECT_LT(loss, 0.75 * std::log(static_cast<double>(tok.vocab_size())));
  torch::manual_seed(0);
  T5ForConditionalGeneration random_model(model->config());
  const auto random_out =
      random_model->forward(input_ids, torch::ones_like(input_ids), {}, {}, as_tensor(c.targets), {});
  EXPECT_LT(loss, 0.5 * random_out.loss.item<double>());
}

}  // namespace
