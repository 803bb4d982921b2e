#include "train/backbone.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <iostream>
#include <numeric>
#include <sstream>

#include "common/error.h"
#include "common/threads.h"
#include "common/files.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/t5/model.h"
#include "tokenizer/spm.h"
#include "tokenizer/t5_tokenizer.h"
#include "train/loop.h"

namespace peft::train {

namespace fs = std::filesystem;

T5Config tiny_t5_config(int64_t tokenizer_vocab_size) {
  T5Config c;
  // Rounded up so every tokenizer id (pieces and sentinels) is a row, and the matrix is SIMD-friendly.
  c.vocab_size = (tokenizer_vocab_size + 7) / 8 * 8;
  c.d_model = 128;
  c.d_kv = 32;
  c.num_heads = 4;
  c.d_ff = 384;
  c.num_layers = 3;
  c.num_decoder_layers = 3;
  c.relative_attention_num_buckets = 32;
  c.relative_attention_max_distance = 128;
  c.dropout_rate = 0.1;  // HF's v1.1 default, for fine-tuning; pre-training here runs without dropout
  c.layer_norm_epsilon = 1e-6;
  c.initializer_factor = 1.0;
  c.feed_forward_proj = "gated-gelu";
  c.dense_act_fn = "gelu_new";
  c.is_gated_act = true;
  c.tie_word_embeddings = false;
  c.pad_token_id = 0;
  c.eos_token_id = 1;
  c.decoder_start_token_id = 0;
  return c;
}

std::string spm_train_args(const fs::path& corpus, int vocab_size) {
  // T5's conventions (pad 0, eos 1, unk 2, no bos); one thread and no sampling, so the result is reproducible.
  std::ostringstream a;
  a << "--input=" << corpus.string() << " --model_type=unigram --vocab_size=" << vocab_size
    << " --character_coverage=1.0 --pad_id=0 --eos_id=1 --unk_id=2 --bos_id=-1"
    << " --pad_piece=<pad> --eos_piece=</s> --unk_piece=<unk> --num_threads=1"
    << " --max_sentence_length=8192 --shuffle_input_sentence=false";
  return a.str();
}

// Splits `num_items` into `num_segments` random positive lengths (t5's _random_segmentation).
static std::vector<int64_t> random_segmentation(int64_t num_items, int64_t num_segments, std::mt19937_64& rng) {
  std::vector<int64_t> first_in_segment(static_cast<size_t>(num_items - 1), 0);
  std::fill(first_in_segment.begin(), first_in_segment.begin() + (num_segments - 1), 1);
  std::shuffle(first_in_segment.begin(), first_in_segment.end(), rng);
  std::vector<int64_t> lengths(static_cast<size_t>(num_segments), 0);
  int64_t segment = 0;
  lengths[0] = 1;
  for (int64_t v : first_in_segment) {
    segment += v;
    lengths[static_cast<size_t>(segment)] += 1;
  }
  return lengths;
}

std::vector<bool> random_spans_noise_mask(int64_t length, double noise_density, double mean_noise_span_length,
                                          std::mt19937_64& rng) {
  if (length < 2) return std::vector<bool>(static_cast<size_t>(std::max<int64_t>(length, 0)), false);
  int64_t num_noise_tokens = static_cast<int64_t>(std::llround(static_cast<double>(length) * noise_density));
  num_noise_tokens = std::min(std::max<int64_t>(num_noise_tokens, 1), length - 1);
  int64_t num_noise_spans =
      static_cast<int64_t>(std::llround(static_cast<double>(num_noise_tokens) / mean_noise_span_length));
  num_noise_spans = std::max<int64_t>(num_noise_spans, 1);
  const int64_t num_nonnoise_tokens = length - num_noise_tokens;
  num_noise_spans = std::min(num_noise_spans, num_nonnoise_tokens);  // each noise span follows a non-noise one
  const auto noise_lengths = random_segmentation(num_noise_tokens, num_noise_spans, rng);
  const auto nonnoise_lengths = random_segmentation(num_nonnoise_tokens, num_noise_spans, rng);
  std::vector<bool> mask;
  mask.reserve(static_cast<size_t>(length));
  for (int64_t s = 0; s < num_noise_spans; ++s) {
    mask.insert(mask.end(), static_cast<size_t>(nonnoise_lengths[static_cast<size_t>(s)]), false);
    mask.insert(mask.end(), static_cast<size_t>(noise_lengths[static_cast<size_t>(s)]), true);
  }
  return mask;
}

SpanCorruption span_corruption(const std::vector<int64_t>& tokens, const std::vector<bool>& mask,
                               int64_t tokenizer_vocab_size, int64_t eos_id) {
  if (tokens.size() != mask.size()) throw std::invalid_argument("span_corruption: tokens and mask differ in length");
  SpanCorruption out;
  int64_t span = 0;
  for (size_t i = 0; i < tokens.size(); ++i) {
    const bool starts_noise = mask[i] && (i == 0 || !mask[i - 1]);
    if (starts_noise) {
      const int64_t sentinel = tokenizer_vocab_size - 1 - span++;
      out.inputs.push_back(sentinel);
      out.targets.push_back(sentinel);
    }
    (mask[i] ? out.targets : out.inputs).push_back(tokens[i]);
  }
  out.inputs.push_back(eos_id);
  out.targets.push_back(eos_id);
  return out;
}

namespace {

// The corpus as one token stream (a paragraph's ids then </s>), cut into fixed-length pieces.
std::vector<std::vector<int64_t>> chunk_corpus(const fs::path& file, const T5Tokenizer& tok, int64_t length,
                                               int64_t* total_tokens) {
  std::ifstream in(file);
  if (!in) fail_input(file.string() + ": cannot read the corpus");
  std::vector<int64_t> stream;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const auto ids = tok.encode_no_eos(line);
    stream.insert(stream.end(), ids.begin(), ids.end());
    stream.push_back(tok.eos_id());
  }
  if (total_tokens) *total_tokens = static_cast<int64_t>(stream.size());
  std::vector<std::vector<int64_t>> chunks;
  for (size_t i = 0; i + static_cast<size_t>(length) <= stream.size(); i += static_cast<size_t>(length))
    chunks.emplace_back(stream.begin() + static_cast<std::ptrdiff_t>(i),
                        stream.begin() + static_cast<std::ptrdiff_t>(i) + length);
  if (chunks.empty()) fail_input(file.string() + ": corpus shorter than one example of " + std::to_string(length) + " tokens");
  return chunks;
}

struct Batch {
  torch::Tensor input_ids, attention_mask, labels;
  int64_t tokens = 0;
};

Batch make_batch(const std::vector<SpanCorruption>& examples) {
  int64_t n = 0, m = 0;
  for (const auto& e : examples) {
    n = std::max<int64_t>(n, static_cast<int64_t>(e.inputs.size()));
    m = std::max<int64_t>(m, static_cast<int64_t>(e.targets.size()));
  }
  const auto B = static_cast<int64_t>(examples.size());
  Batch b;
  b.input_ids = torch::zeros({B, n}, torch::kLong);  // pad = 0
  b.attention_mask = torch::zeros({B, n}, torch::kLong);
  b.labels = torch::full({B, m}, -100, torch::kLong);
  auto ii = b.input_ids.accessor<int64_t, 2>();
  auto am = b.attention_mask.accessor<int64_t, 2>();
  auto ll = b.labels.accessor<int64_t, 2>();
  for (int64_t r = 0; r < B; ++r) {
    const auto& e = examples[static_cast<size_t>(r)];
    for (size_t j = 0; j < e.inputs.size(); ++j) {
      ii[r][static_cast<int64_t>(j)] = e.inputs[j];
      am[r][static_cast<int64_t>(j)] = 1;
    }
    for (size_t j = 0; j < e.targets.size(); ++j) ll[r][static_cast<int64_t>(j)] = e.targets[j];
    b.tokens += static_cast<int64_t>(e.targets.size());
  }
  return b;
}

std::string rng_to_string(const std::mt19937_64& rng) {
  std::ostringstream s;
  s << rng;
  return s.str();
}

void write_checkpoint(const fs::path& out, T5ForConditionalGeneration& model, const T5Config& config,
                      const std::string& spiece, int extra_ids, const std::string& dtype) {
  fs::create_directories(out);
  const torch::Dtype dt = dtype == "bfloat16" ? torch::kBFloat16 : dtype == "float16" ? torch::kFloat16 : torch::kFloat32;
  io::TensorMap tensors;
  // HF stores the shared embedding once (the stacks' embed_tokens are tied to it); so does this model.
  for (const auto& p : model->named_parameters()) tensors[p.key()] = p.value().detach().to(dt).contiguous();
  io::write_safetensors(out / "model.safetensors", tensors);

  nlohmann::json cj = config.to_json();
  // Keys transformers 4.33 writes for a T5ForConditionalGeneration v1.1 config.
  cj["architectures"] = {"T5ForConditionalGeneration"};
  cj["torch_dtype"] = dtype;
  cj["transformers_version"] = "4.33.0";
  cj["use_cache"] = true;
  cj["is_encoder_decoder"] = true;
  write_file_atomic(out / "config.json", cj.dump(2) + "\n");

  write_file_atomic(out / "spiece.model", spiece);
  nlohmann::json extra = nlohmann::json::array();
  for (int i = 0; i < extra_ids; ++i) extra.push_back("<extra_id_" + std::to_string(i) + ">");
  const nlohmann::json tc = {{"additional_special_tokens", extra},
                             {"clean_up_tokenization_spaces", true},
                             {"eos_token", "</s>"},
                             {"extra_ids", extra_ids},
                             {"legacy", true},
                             {"model_max_length", 512},
                             {"pad_token", "<pad>"},
                             {"sp_model_kwargs", nlohmann::json::object()},
                             {"tokenizer_class", "T5Tokenizer"},
                             {"unk_token", "<unk>"}};
  write_file_atomic(out / "tokenizer_config.json", tc.dump(2) + "\n");
  const nlohmann::json sm = {{"additional_special_tokens", extra},
                             {"eos_token", "</s>"},
                             {"pad_token", "<pad>"},
                             {"unk_token", "<unk>"}};
  write_file_atomic(out / "special_tokens_map.json", sm.dump(2) + "\n");
}

}  // namespace

BackboneSummary pretrain_backbone(const BackboneOptions& o) {
  if (o.corpus.empty() || o.out.empty()) fail_input("backbone: --corpus and --out are required");
  if (o.dtype != "float32" && o.dtype != "bfloat16" && o.dtype != "float16")
    fail_input("backbone: --dtype must be float32, bfloat16 or float16, not '" + o.dtype + "'");
  set_cpu_threads(std::max(1, o.threads));
  torch::manual_seed(o.seed);
  const fs::path work = o.work_dir.empty() ? fs::path(o.out.string() + ".work") : o.work_dir;
  fs::create_directories(work);

  // 1. Vocabulary.
  std::string spiece;
  if (!o.spiece.empty()) {
    spiece = read_file(o.spiece);
  } else {
    spdlog::info("training a {}-piece unigram vocabulary on {}", o.sp_vocab_size, o.corpus.string());
    spiece = SpmModel::train(spm_train_args(o.corpus, o.sp_vocab_size));
  }
  const fs::path spiece_path = work / "spiece.model";
  write_file_atomic(spiece_path, spiece);
  const T5Tokenizer tok(spiece_path);
  const int64_t tok_vocab = tok.vocab_size();
  const T5Config config = tiny_t5_config(tok_vocab);

  // 2. Data: fixed-length chunks, a fresh noise mask per draw.
  BackboneSummary summary;
  const auto chunks = chunk_corpus(o.corpus, tok, o.input_length, &summary.corpus_tokens);
  spdlog::info("corpus: {} tokens, {} examples of {} tokens", summary.corpus_tokens, chunks.size(), o.input_length);

  int64_t most_frequent = 0;
  {
    std::vector<int64_t> counts(static_cast<size_t>(tok_vocab), 0);
    for (const auto& c : chunks)
      for (int64_t t : c) counts[static_cast<size_t>(t)] += t != tok.eos_id();
    most_frequent = std::max_element(counts.begin(), counts.end()) - counts.begin();
  }

  // A fixed held-out evaluation set: corpus.valid.txt beside the corpus when present.
  std::vector<SpanCorruption> eval_examples;
  {
    fs::path valid = o.corpus;
    valid.replace_extension(".valid.txt");
    if (fs::exists(valid)) {
      std::mt19937_64 erng(o.seed + 1);
      const auto vchunks = chunk_corpus(valid, tok, o.input_length, nullptr);
      for (size_t i = 0; i < vchunks.size() && i < 128; ++i)
        eval_examples.push_back(span_corruption(
            vchunks[i], random_spans_noise_mask(o.input_length, o.noise_density, o.mean_noise_span_length, erng),
            tok_vocab, tok.eos_id()));
    }
  }

  // 3. Model, all weights trainable from random init.
  T5ForConditionalGeneration model(config);
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const auto& p : model->named_parameters()) {
    named.emplace_back(p.key(), p.value());
    summary.parameters += p.value().numel();
  }
  spdlog::info("tiny T5: {} parameters, vocab_size {} (tokenizer {})", summary.parameters, config.vocab_size, tok_vocab);

  ParamGroup group{"backbone", named, o.learning_rate, o.weight_decay};
  LoopOptions lo;
  lo.steps = o.steps;
  lo.warmup_ratio = o.warmup_ratio;
  lo.max_grad_norm = o.max_grad_norm;
  lo.log_every = o.log_every;
  lo.eval_every = std::max<int64_t>(1, o.steps / 4);
  lo.save_every = std::max<int64_t>(1, o.steps / 4);
  lo.out_dir = work;
  lo.resume = o.resume;
  lo.label = "backbone";
  TrainLoop loop(lo, {group});

  std::mt19937_64 rng(o.seed);
  std::uniform_int_distribution<size_t> pick(0, chunks.size() - 1);
  bool first = true;
  ForwardContext ctx;  // training = false: pre-training without dropout, as T5 v1.1
  auto step_fn = [&](int64_t, int64_t) {
    std::vector<SpanCorruption> examples;
    for (int64_t i = 0; i < o.batch_size; ++i)
      examples.push_back(span_corruption(
          chunks[pick(rng)], random_spans_noise_mask(o.input_length, o.noise_density, o.mean_noise_span_length, rng),
          tok_vocab, tok.eos_id()));
    const Batch b = make_batch(examples);
    auto out = model->forward(b.input_ids, b.attention_mask, {}, {}, b.labels, ctx);
    if (first) {
      summary.first_loss = out.loss.item<double>();
      first = false;
    }
    return MicroStep{out.loss, b.tokens};
  };
  auto eval_fn = [&](int64_t) -> nlohmann::json {
    if (eval_examples.empty()) return nlohmann::json::object();
    torch::NoGradGuard ng;
    const Batch b = make_batch(eval_examples);
    auto out = model->forward(b.input_ids, b.attention_mask, {}, {}, b.labels, ctx);
    const auto valid = b.labels.ne(-100);
    const auto hit = out.logits.argmax(-1).eq(b.labels);
    const double acc = hit.logical_and(valid).sum().item<double>() / valid.sum().item<double>();
    // Content tokens only (not sentinels, not </s>, whose places follow from the input), against the
    // baseline of always guessing the corpus's most frequent token.
    const auto content = valid.logical_and(b.labels.lt(tok_vocab - 100)).logical_and(b.labels.ne(tok.eos_id()));
    const double n_content = content.sum().item<double>();
    const double content_acc = hit.logical_and(content).sum().item<double>() / n_content;
    const double baseline = b.labels.eq(most_frequent).logical_and(content).sum().item<double>() / n_content;
    spdlog::info("held-out span filling: loss {:.4f}, token accuracy {:.4f}, content-token accuracy {:.4f} "
                 "(most-frequent-token baseline {:.4f})",
                 out.loss.item<double>(), acc, content_acc, baseline);
    return {{"eval_loss", out.loss.item<double>()},
            {"eval_token_accuracy", acc},
            {"eval_content_token_accuracy", content_acc},
            {"eval_content_baseline_accuracy", baseline}};
  };
  ResumableState state;
  state.save = [&] { return nlohmann::json{{"rng", rng_to_string(rng)}}; };
  state.load = [&](const nlohmann::json& j) {
    std::istringstream s(j.at("rng").get<std::string>());
    s >> rng;
    first = false;
  };
  const LoopResult r = loop.run(step_fn, eval_fn, state);
  summary.final_loss = r.final_train_loss;
  summary.seconds = r.seconds;

  write_checkpoint(o.out, model, config, spiece, 100, o.dtype);
  spdlog::info("wrote {} (loss {:.4f} -> {:.4f}, {:.0f} s)", o.out.string(), summary.first_loss, summary.final_loss,
               summary.seconds);
  return summary;
}

int run_backbone_cli(int argc, char** argv) {
  BackboneOptions o;
  const std::string usage =
      "usage: peft backbone --corpus FILE --out DIR [--steps N] [--batch-size N] [--input-length N] [--lr X] "
      "[--sp-vocab N] [--spiece FILE] [--work-dir DIR] [--seed N] [--threads N] [--dtype float32|bfloat16|float16] "
      "[--log-every N] [--resume]";
  try {
    for (int i = 1; i < argc; ++i) {
      const std::string a = argv[i];
      auto value = [&]() -> std::string {
        if (i + 1 >= argc) fail_input("backbone: " + a + " needs a value");
        return argv[++i];
      };
      auto integer = [&]() -> int64_t {
        const std::string v = value();
        try {
          size_t n = 0;
          const int64_t x = std::stoll(v, &n);
          if (n != v.size()) throw std::invalid_argument(v);
          return x;
        } catch (const std::exception&) {
          fail_input("backbone: " + a + " expects an integer, got '" + v + "'");
        }
      };
      if (a == "--help" || a == "-h") {
        std::cout << usage << "\n";
        return 0;
      } else if (a == "--corpus") o.corpus = value();
      else if (a == "--out") o.out = value();
      else if (a == "--work-dir") o.work_dir = value();
      else if (a == "--spiece") o.spiece = value();
      else if (a == "--steps") o.steps = integer();
      else if (a == "--batch-size") o.batch_size = integer();
      else if (a == "--input-length") o.input_length = integer();
      else if (a == "--sp-vocab") o.sp_vocab_size = static_cast<int>(integer());
      else if (a == "--seed") o.seed = static_cast<uint64_t>(integer());
      else if (a == "--threads") o.threads = static_cast<int>(integer());
      else if (a == "--log-every") o.log_every = integer();
      else if (a == "--dtype") o.dtype = value();
      else if (a == "--resume") o.resume = true;
      else if (a == "--lr") {
        const std::string v = value();
        try {
          o.learning_rate = std::stod(v);
        } catch (const std::exception&) {
          fail_input("backbone: --lr expects a number, got '" + v + "'");
        }
      } else {
        fail_input("backbone: unknown option '" + a + "'\n" + usage);
      }
    }
    if (o.steps < 1 || o.batch_size < 1 || o.input_length < 4)
      fail_input("backbone: --steps and --batch-size must be >= 1 and --input-length >= 4");
    const auto s = pretrain_backbone(o);
    std::cout << nlohmann::json{{"parameters", s.parameters},
                                {"corpus_tokens", s.corpus_tokens},
                                {"first_loss", s.first_loss},
                                {"final_loss", s.final_loss},
                                {"seconds", s.seconds}}
                     .dump()
              << "\n";
    return 0;
  } catch (const InputError& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 2;
  }
}

}  // namespace peft::train
