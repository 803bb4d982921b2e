// Smoke run of the benchmark on a tiny T5 shape: every JSON field present, every figure positive and finite.
// No timing assertions (shared machine). The FLOP counter is checked against hand-computed sums.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/error.h"
#include "train/bench.h"

using namespace peft;
using namespace peft::train;
namespace fs = std::filesystem;

namespace {

T5Config tiny_config() {
  T5Config c;
  c.vocab_size = 64;
  c.d_model = 16;
  c.d_kv = 4;
  c.d_ff = 32;
  c.num_layers = c.num_decoder_layers = 2;
  c.num_heads = 4;
  c.relative_attention_num_buckets = 8;
  c.relative_attention_max_distance = 16;
  return c;
}

void expect_positive(const nlohmann::json& j, const std::string& key, const std::string& where) {
  ASSERT_TRUE(j.contains(key)) << where << ": missing '" << key << "'";
  ASSERT_TRUE(j[key].is_number()) << where << "." << key;
  const double v = j[key].get<double>();
  EXPECT_TRUE(std::isfinite(v) && v > 0) << where << "." << key << " = " << v;
}

void expect_stats(const nlohmann::json& j, const std::string& key, const std::string& where, size_t n) {
  ASSERT_TRUE(j.contains(key)) << where << ": missing '" << key << "'";
  for (const char* f : {"median", "min", "max"}) expect_positive(j[key], f, where + "." + key);
  EXPECT_EQ(j[key]["values"].size(), n) << where << "." << key;
  EXPECT_LE(j[key]["min"].get<double>(), j[key]["median"].get<double>());
  EXPECT_LE(j[key]["median"].get<double>(), j[key]["max"].get<double>());
}

}  // namespace

TEST(Bench, TinySmokeRunHasEveryField) {
  const fs::path json_path = fs::temp_directory_path() / ("peft_bench_test_" + std::to_string(::getpid()) + ".json");
  BenchSettings s;
  s.t5_config = tiny_config();
  s.batch = 4;
  s.src_len = 8;
  s.tgt_len = 4;
  s.steps = 2;
  s.warmup = 1;
  s.gen_tokens = 3;
  s.gen_scaling = {2, 4};
  s.gen_rounds = 1;
  s.n_tasks = 3;
  s.threads = 1;
  s.json = json_path.string();
  std::ostringstream table;
  const nlohmann::json r = run_bench(s, table);

  // The file holds the same JSON.
  std::ifstream f(json_path);
  ASSERT_TRUE(f.good());
  EXPECT_EQ(nlohmann::json::parse(f), r);
  fs::remove(json_path);

  expect_positive(r["gemm"], "gflops", "gemm");
  expect_positive(r["gemm"], "gflops_start", "gemm");
  expect_positive(r["gemm"], "gflops_end", "gemm");
  EXPECT_EQ(r["machine"]["threads"], 1);
  EXPECT_EQ(r["shape"]["tokens_per_step"], 4 * (8 + 4));
  EXPECT_EQ(r["shape"]["tasks"], s.n_tasks);
  EXPECT_EQ(r["model"]["d_model"], 16);

  ASSERT_EQ(r["methods"].size(), bench_methods().size());
  for (const auto& m : bench_methods()) {
    SCOPED_TRACE(m);
    const auto& j = r["methods"][m];
    const bool eval_only = m == "merged-lora" || m == "base";
    EXPECT_EQ(j["kind"], eval_only ? "eval" : "train");
    expect_positive(j, "parameters", m);
    expect_positive(j, "forward_gflop", m);
    expect_positive(j, "peak_rss_mb", m);
    expect_positive(j, "eval_tokens_per_s", m);
    expect_stats(j, "eval_forward_s", m, 2);
    expect_positive(j["generation"], "new_tokens_per_s", m);
    // Random tokens exclude eos as input, but the model may still emit it: between 1 and gen_tokens per row.
    EXPECT_GE(j["generation"]["new_tokens"].get<int64_t>(), 4);
    EXPECT_LE(j["generation"]["new_tokens"].get<int64_t>(), 4 * 3);
    if (m == "base") {
      EXPECT_EQ(j["trainable_parameters"], 0);
    } else {
      expect_positive(j, "trainable_parameters", m);
    }
    if (eval_only) {
      EXPECT_FALSE(j.contains("step_s"));
      continue;
    }
    expect_stats(j, "step_s", m, 2);
    expect_positive(j, "tokens_per_s", m);
    expect_positive(j, "step_gflop", m);
    expect_positive(j, "step_gflops", m);
    expect_positive(j, "gemm_fraction", m);
    for (const char* phase : {"data", "forward", "backward", "optimizer"}) expect_positive(j["phases_s"], phase, m);
    EXPECT_GT(j["step_gflop"].get<double>(), j["forward_gflop"].get<double>());
  }
  // Full fine-tuning trains everything; the PEFT methods much less.
  EXPECT_EQ(r["methods"]["full"]["trainable_parameters"], r["methods"]["full"]["parameters"]);
  // LoRA r=16 on q,k,v,o: 2 encoder blocks x 4 + 2 decoder blocks x 8 linears of 16 x 16.
  EXPECT_EQ(r["methods"]["lora"]["trainable_parameters"], 24 * 16 * (16 + 16));

  expect_positive(r["generation_scaling"], "encode_s", "generation_scaling");
  for (const char* n : {"2", "4"}) {
    expect_positive(r["generation_scaling"][n], "per_token_s", n);
    expect_positive(r["generation_scaling"][n], "seconds", n);
  }
  // One check per target; each has a verdict and a finite ratio.
  ASSERT_EQ(r["targets"].size(), 10u);
  for (const auto& t : r["targets"]) {
    EXPECT_TRUE(t["pass"].is_boolean());
    EXPECT_TRUE(std::isfinite(t["ratio"].get<double>())) << t["name"];
  }
  const std::string text = table.str();
  for (const auto& m : bench_methods()) EXPECT_NE(text.find("\n" + m + " "), std::string::npos) << m;
  EXPECT_NE(text.find("targets ("), std::string::npos);
  // Ratios between methods pair the steps of one round: poly / lora = mean of the two rounds' ratios here.
  const auto& poly = r["methods"]["poly"]["step_s"]["values"];
  const auto& lora = r["methods"]["lora"]["step_s"]["values"];
  const double paired = 0.5 * (poly[0].get<double>() / lora[0].get<double>() + poly[1].get<double>() / lora[1].get<double>());
  bool found = false;
  for (const auto& t : r["targets"])
    if (t["name"] == "poly step <= 1.10 x lora step") {
      EXPECT_NEAR(t["measured"].get<double>(), paired, 1e-12);
      found = true;
    }
  EXPECT_TRUE(found);
}

bert::BertConfig tiny_bert_config() {
  bert::BertConfig c;
  c.vocab_size = 100;
  c.hidden_size = 16;
  c.num_hidden_layers = 2;
  c.num_attention_heads = 4;
  c.intermediate_size = 32;
  c.max_position_embeddings = 32;
  c.num_labels = 2;
  return c;
}

TEST(Bench, TinyBertClassifierRunTrainsAndEvaluatesWithoutGeneration) {
  BenchSettings s;
  s.bert_config = tiny_bert_config();
  s.batch = 4;
  s.src_len = 8;
  s.steps = 2;
  s.warmup = 1;
  s.threads = 1;
  std::ostringstream table;
  const nlohmann::json r = run_bench(s, table);
  EXPECT_EQ(r["model"]["family"], "bert");
  EXPECT_EQ(r["shape"]["tokens_per_step"], 4 * 8);  // no target side
  // Every method but prefix tuning (T5 only).
  ASSERT_EQ(r["methods"].size(), bench_methods().size() - 1);
  EXPECT_FALSE(r["methods"].contains("prefix"));
  for (const auto& [m, j] : r["methods"].items()) {
    SCOPED_TRACE(m);
    expect_stats(j, "eval_forward_s", m, 2);
    EXPECT_FALSE(j.contains("generation"));
    if (j["kind"] == "train") expect_stats(j, "step_s", m, 2);
  }
  // LoRA r=16 on query, key, value, attention.output.dense (2 layers x 4 linears of 16 x 16) + the classifier.
  EXPECT_EQ(r["methods"]["lora"]["trainable_parameters"], 8 * 16 * (16 + 16) + (16 * 2 + 2));
  EXPECT_TRUE(r["generation_scaling"].empty());
  // Only the ratio targets (the absolute ones are the T5 figures).
  EXPECT_EQ(r["targets"].size(), 4u);

  s.methods = {"prefix"};
  EXPECT_THROW(run_bench(s, table), InputError);
}

TEST(Bench, BertFlopCountMatchesHandCount) {
  const bert::BertConfig c = tiny_bert_config();
  const double B = 4, S = 8, d = 16, f = 32, h = 4, dk = 4, L = 2, labels = 2;
  const double M = B * S;
  const double layer = 4 * 2 * M * d * d + 2 * 2 * M * d * f + 2 * (2 * B * h * S * S * dk);
  const double forward = L * layer + 2 * B * d * d + 2 * B * d * labels;  // + pooler + classifier
  const StepFlops base = count_classifier_step_flops(c, "base", 4, 8);
  EXPECT_DOUBLE_EQ(base.forward, forward);
  EXPECT_DOUBLE_EQ(base.backward, 0);
  // Full fine-tuning: every matmul's input and weight gradient, except the embedding's input (token ids).
  const StepFlops full = count_classifier_step_flops(c, "full", 4, 8);
  EXPECT_DOUBLE_EQ(full.forward, forward);
  EXPECT_DOUBLE_EQ(full.backward, 2 * forward);
}

TEST(Bench, UnknownMethodAndShapeAreInputErrors) {
  BenchSettings s;
  s.methods = {"lora", "qlora"};
  std::ostringstream out;
  try {
    run_bench(s, out);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown method 'qlora'"), std::string::npos) << e.what();
  }
  s.methods = {"lora"};
  s.model = "t5-huge-shape";
  try {
    run_bench(s, out);
    FAIL() << "no error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown shape 't5-huge-shape'"), std::string::npos) << e.what();
  }
}

// Hand-counted FLOPs for a 1-layer model (d 4, 1 head of d_kv 4, d_ff 8, vocab 10), B 1, S 2, T 1.
TEST(Bench, FlopCountMatchesHandCount) {
  T5Config c;
  c.vocab_size = 10;
  c.d_model = 4;
  c.d_kv = 4;
  c.d_ff = 8;
  c.num_layers = c.num_decoder_layers = 1;
  c.num_heads = 1;
  const double B = 1, S = 2, T = 1, d = 4, f = 8, V = 10;
  // Encoder: q,k,v,o on S rows; scores S x S; AV; FFN.
  const double enc = 2 * (4 * S * d * d) + 2 * (S * d * S) * 2 + 2 * (S * d * f) * 2;
  // Decoder self (T rows), cross: q,o on T rows, k,v on S rows, scores T x S; FFN on T rows; lm head.
  const double dec_self = 2 * (4 * T * d * d) + 2 * (T * d * T) * 2;
  const double dec_cross = 2 * (2 * T * d * d) + 2 * (2 * S * d * d) + 2 * (T * d * S) * 2;
  const double dec_ff = 2 * (T * d * f) * 2;
  const double head = 2 * T * d * V;
  const double forward = enc + dec_self + dec_cross + dec_ff + head;
  const StepFlops base = count_step_flops(c, "base", B, S, T);
  EXPECT_DOUBLE_EQ(base.forward, forward);
  EXPECT_DOUBLE_EQ(base.backward, 0.0);
  // Full fine-tuning: every matmul computes both operand gradients.
  const StepFlops full = count_step_flops(c, "full", B, S, T);
  EXPECT_DOUBLE_EQ(full.forward, forward);
  EXPECT_DOUBLE_EQ(full.backward, 2 * forward);
  // LoRA: frozen weights get no weight grads; the encoder's first q/k/v have no input grads either.
  // LoRA on t5-small: frozen weights get no weight grads and the encoder's first q/k/v no input grads, so the
  // backward is below 2x forward, though above forward (input grads everywhere else plus the adapters).
  const T5Config small;
  const StepFlops lora = count_step_flops(small, "lora", 8, 128, 32);
  const StepFlops small_full = count_step_flops(small, "full", 8, 128, 32);
  EXPECT_GT(lora.forward, count_step_flops(small, "base", 8, 128, 32).forward);
  EXPECT_GT(lora.backward, 0.8 * lora.forward);
  EXPECT_LT(lora.backward, 1.2 * lora.forward);
  EXPECT_DOUBLE_EQ(small_full.backward, 2 * small_full.forward);
}
