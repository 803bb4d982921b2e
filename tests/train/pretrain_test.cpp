// End to end: `peft pretrain` on a tiny random T5 with the real T5 vocabulary and two built-in tasks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/files.h"
#include "config/config.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/t5/model.h"
#include "train/inventory.h"
#include "train/evaluate_run.h"
#include "train/pretrain.h"

namespace fs = std::filesystem;
using namespace peft;

namespace {

const fs::path kShared = fs::path(PEFT_SOURCE_DIR) / ".." / "shared";

// A 2-layer T5 with d_model 16 over the real 32k vocabulary, written as a Hugging Face checkpoint.
fs::path make_tiny_t5(const fs::path& dir) {
  fs::create_directories(dir);
  nlohmann::json cfg = {{"model_type", "t5"},   {"vocab_size", 32128}, {"d_model", 16},  {"d_kv", 8},
                        {"d_ff", 32},           {"num_layers", 1},     {"num_heads", 2}, {"feed_forward_proj", "gated-gelu"},
                        {"tie_word_embeddings", false}, {"decoder_start_token_id", 0}, {"eos_token_id", 1}, {"pad_token_id", 0}};
  write_file_atomic(dir / "config.json", cfg.dump(2));
  torch::manual_seed(0);
  T5ForConditionalGeneration model(T5Config::from_json(cfg, "tiny"));
  io::TensorMap tensors;
  for (const auto& kv : model->named_parameters()) tensors[kv.key()] = kv.value().detach();
  io::write_safetensors(dir / "model.safetensors", tensors);
  fs::copy_file(kShared / "models" / "t5-tokenizer" / "spiece.model", dir / "spiece.model");
  return dir;
}

Config tiny_config(const fs::path& model, const fs::path& out) {
  return load_config_string("", "test",
                            {"model.path=" + model.string(), "data.format=jsonl", "data.train_dir=data/builtin",
                             "data.test_dir=data/builtin", "data.train_tasks=[uppercase,reverse_word,add]",
                             "data.test_tasks=[reverse_uppercase]", "data.max_train_examples_per_task=40",
                             "data.eval_examples_per_task=4", "data.num_positive_examples=0",
                             "data.cache_dir=" + (out / "cache").string(), "adapter.kind=lora", "adapter.r=2",
                             "routing.method=mhr", "routing.n_skills=3", "routing.n_heads=2", "train.steps=6",
                             "train.batch_size=4", "train.eval_every=3", "train.save_every=3", "train.log_every=2",
                             "eval.max_new_tokens=4", "eval.batch_size=8", "run.out=" + (out / "run").string(),
                             "run.threads=1"});
}

}  // namespace

TEST(Pretrain, WritesInventoryManifestHeatmapSummaryAndResumesExactly) {
  if (!fs::exists(kShared / "models" / "t5-tokenizer" / "spiece.model"))
    GTEST_SKIP() << "needs ../shared/models/t5-tokenizer (the real T5 vocabulary); not present";
  const fs::path base = fs::temp_directory_path() / "peft_pretrain_test";
  fs::remove_all(base);
  const auto model = make_tiny_t5(base / "model");

  const auto config = tiny_config(model, base / "full");
  const auto summary = train::run_pretrain(config, false);
  const fs::path run = base / "full" / "run";
  for (const char* f : {"inventory.safetensors", "manifest.json", "routing.png", "summary.md", "metrics.jsonl",
                        "checkpoint/state.json"})
    EXPECT_TRUE(fs::exists(run / f)) << f;
  EXPECT_TRUE(std::isfinite(summary.final_train_loss));
  EXPECT_TRUE(summary.final_eval.contains("rouge_l"));
  const auto manifest = io::read_json(run / "manifest.json");
  EXPECT_EQ(manifest["tasks"], nlohmann::json({"uppercase", "reverse_word", "add"}));
  EXPECT_EQ(manifest["n_heads"], 2);
  // q,k,v,o of encoder self-attention, decoder self- and cross-attention: 12 adapted linears.
  EXPECT_EQ(manifest["sites"].size(), 12u);
  const auto inventory = io::read_safetensors(run / "inventory.safetensors");
  EXPECT_EQ(inventory.size(), 36u);
  EXPECT_EQ(inventory.at("encoder.block.0.layer.0.SelfAttention.q.poly_lora.router.module_logits").sizes(),
            (std::vector<int64_t>{3, 6}));

  // `peft eval` on the finished run: one row per training task, each with its own routing row.
  auto eval_config = config;
  eval_config.run.out = (base / "eval").string();
  eval_config.eval.checkpoint = run.string();
  const auto scores = train::run_eval(eval_config);
  EXPECT_EQ(scores["tasks"].size(), 3u);
  EXPECT_TRUE(fs::exists(base / "eval" / "eval.json"));

  // Interrupted after the step-3 checkpoint, then resumed: the same inventory, bit for bit.
  const auto cut = tiny_config(model, base / "cut");
  train::run_pretrain(cut, false, /*stop_after=*/3);
  EXPECT_FALSE(fs::exists(base / "cut" / "run" / "inventory.safetensors"));
  train::run_pretrain(cut, true);
  const auto resumed = io::read_safetensors(base / "cut" / "run" / "inventory.safetensors");
  ASSERT_EQ(resumed.size(), inventory.size());
  for (const auto& [name, t] : inventory) EXPECT_TRUE(torch::equal(t, resumed.at(name))) << name;
  fs::remove_all(base);
}

TEST(Pretrain, SharedAdamixAdapterIsSavedMergedAsAPlainLora) {
  if (!fs::exists(kShared / "models" / "t5-tokenizer" / "spiece.model"))
    GTEST_SKIP() << "needs ../shared/models/t5-tokenizer (the real T5 vocabulary); not present";
  const fs::path base = fs::temp_directory_path() / "peft_pretrain_adamix_test";
  fs::remove_all(base);
  const auto model = make_tiny_t5(base / "model");
  Config config = tiny_config(model, base / "adamix");
  config.routing.method = "none";
  config.adamix.enabled = true;
  config.adamix.num_experts = 3;
  config.train.steps = 3;
  const auto summary = train::run_pretrain(config, false);
  EXPECT_TRUE(std::isfinite(summary.final_train_loss));
  const fs::path adapter = base / "adamix" / "run" / "adapter";
  const auto saved_config = io::read_json(adapter / "adapter_config.json");
  EXPECT_EQ(saved_config.at("peft_type"), "LORA");
  EXPECT_EQ(saved_config.at("r"), 2);
  // One A and one B per adapted linear (q, k, v, o of 3 attention blocks), no copies.
  const auto tensors = io::read_safetensors(adapter / "adapter_model.safetensors");
  EXPECT_EQ(tensors.size(), 24u);
  EXPECT_EQ(tensors.at("base_model.model.encoder.block.0.layer.0.SelfAttention.q.lora_A.weight").sizes(),
            (std::vector<int64_t>{2, 16}));
  // The training checkpoint holds every copy (for --resume): 3 A copies + 1 shared B per linear.
  const auto trainable = io::read_safetensors(base / "adamix" / "run" / "checkpoint" / "trainable.safetensors");
  EXPECT_EQ(trainable.size(), 12u * 4u);
  fs::remove_all(base);
}
