// The embedded default backbone (models/peft-tiny-t5/): a tiny T5 v1.1-style model pre-trained from random
// initialisation with T5's span-corruption objective on a small synthetic corpus (scripts/make_backbone.sh).
// It is a self-trained toy, not Google's T5; it exists so the quickstart runs without downloaded weights.
#pragma once
#include <cstdint>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "models/t5/config.h"

namespace peft::train {

struct BackboneOptions {
  std::filesystem::path corpus;     // plain text, one paragraph a line
  std::filesystem::path out;        // the Hugging Face checkpoint directory to write
  std::filesystem::path work_dir;   // metrics.jsonl and the loop's checkpoint/ (default: <out>.work)
  std::filesystem::path spiece;     // an existing spiece.model to use; empty: train one on the corpus
  int sp_vocab_size = 1500;         // SentencePiece pieces (the tokenizer adds 100 sentinels)
  int64_t steps = 1000;
  int64_t batch_size = 32;
  int64_t input_length = 64;        // raw tokens per example, before corruption
  double noise_density = 0.15;
  double mean_noise_span_length = 3.0;
  double learning_rate = 2e-3;
  double weight_decay = 0.01;
  double warmup_ratio = 0.05;
  double max_grad_norm = 1.0;
  int64_t log_every = 50;
  uint64_t seed = 1234;
  int threads = 1;  // two OpenMP threads on a shared 2-core machine ran 14x slower
  std::string dtype = "float32";    // of model.safetensors: float32 | bfloat16 | float16
  bool resume = false;
};

struct BackboneSummary {
  int64_t parameters = 0;
  int64_t corpus_tokens = 0;
  double first_loss = 0, final_loss = 0;  // training loss of the first step / mean of the last log window
  double seconds = 0;
};

// T5 v1.1 shape (gated-gelu, untied head) for a tokenizer of `tokenizer_vocab_size` ids (pieces + sentinels):
// d_model 128, d_kv 32, 4 heads, d_ff 384, 3+3 layers; vocab_size rounded up to a multiple of 8.
T5Config tiny_t5_config(int64_t tokenizer_vocab_size);

// sentencepiece flags for the backbone's unigram vocabulary with T5's ids: pad=0, eos=1, unk=2, no bos.
std::string spm_train_args(const std::filesystem::path& corpus, int vocab_size);

// T5's random_spans_noise_mask (t5.data.preprocessors): round(length * noise_density) noise tokens
// (at least 1, at most length - 1) in round(noise / mean_span) spans (at least 1); span lengths are random
// compositions; the sequence starts with a non-noise span. true = noise.
std::vector<bool> random_spans_noise_mask(int64_t length, double noise_density, double mean_noise_span_length,
                                          std::mt19937_64& rng);

struct SpanCorruption {
  std::vector<int64_t> inputs;   // non-noise tokens, each noise span replaced by one sentinel, then eos
  std::vector<int64_t> targets;  // for each noise span: its sentinel, then its tokens; then eos
};
// The k-th noise span gets <extra_id_k> = tokenizer_vocab_size - 1 - k (T5Tokenizer::sentinel_id), as in
// HF's run_t5_mlm_flax.py. `mask` has one entry per token.
SpanCorruption span_corruption(const std::vector<int64_t>& tokens, const std::vector<bool>& mask,
                               int64_t tokenizer_vocab_size, int64_t eos_id);

// Trains the vocabulary (unless options.spiece is set) and the model, and writes options.out: config.json,
// model.safetensors, spiece.model, tokenizer_config.json, special_tokens_map.json.
BackboneSummary pretrain_backbone(const BackboneOptions& options);

// `peft backbone --corpus FILE --out DIR [--steps N] [--batch-size N] [--input-length N] [--lr X]
// [--sp-vocab N] [--spiece FILE] [--seed N] [--threads N] [--dtype D] [--log-every N] [--resume]`.
// argv[0] is the command name. Returns the exit code (2 on a usage or input error).
int run_backbone_cli(int argc, char** argv);

}  // namespace peft::train
