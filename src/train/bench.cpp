#include "train/bench.h"

#include <dlfcn.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "adapters/inject.h"
#include "common/allocator.h"
#include "common/error.h"
#include "common/threads.h"
#include "common/files.h"
#include "io/checkpoint.h"
#include "models/bert/model.h"
#include "models/t5/load.h"
#include "models/t5/model.h"
#include "routing/poly.h"
#include "train/adamw.h"

namespace peft::train {

namespace {

using Clock = std::chrono::steady_clock;

// Adapter hyper-parameters of the benchmark (the issue's settings).
constexpr int64_t kLoraRank = 16;
constexpr int64_t kPolySkills = 8;
constexpr int64_t kMhrHeads = 8;
constexpr int64_t kAdapterReduction = 16;  // Pfeiffer, m = d_model / 16
constexpr int64_t kPrefixTokens = 30;      // PrefixOptions defaults
constexpr int64_t kPrefixHidden = 512;
const char* const kAttentionRegex = R"(.*(SelfAttention|EncDecAttention)\.(q|k|v|o))";
const char* const kBertAttentionRegex = R"(.*attention\.(self\.(query|key|value)|output\.dense))";

bool is_eval_only(const std::string& m) { return m == "merged-lora" || m == "base"; }

void sync(const torch::Device& device) {
  // Kernel launches are asynchronous on CUDA: wait before reading the clock.
  if (device.is_cuda()) torch::cuda::synchronize();
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Stats {
  double median = 0, min = 0, max = 0;
  std::vector<double> values;
};

Stats stats_of(std::vector<double> v) {
  Stats s;
  s.values = v;
  if (v.empty()) return s;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  s.median = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  s.min = v.front();
  s.max = v.back();
  return s;
}

nlohmann::json to_json(const Stats& s) {
  return {{"median", s.median}, {"min", s.min}, {"max", s.max}, {"values", s.values}};
}

std::vector<double> read_loadavg() {
  std::ifstream f("/proc/loadavg");
  std::vector<double> v(3, 0.0);
  f >> v[0] >> v[1] >> v[2];
  return v;
}

std::string blas_name() {
  if (dlsym(RTLD_DEFAULT, "openblas_get_config")) {
    using Fn = char* (*)();
    auto fn = reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, "openblas_get_config"));
    return std::string("OpenBLAS ") + fn();
  }
  return "unknown";
}

// ---- model shapes -----------------------------------------------------------------------------------------

// What is timed: a T5 (encoder-decoder, LM loss, generation) or a BERT (encoder + sequence classifier).
struct BenchShape {
  std::string family = "t5";  // "t5" | "bert"
  T5Config t5;
  bert::BertConfig bert;
};

bert::BertConfig bert_base_config() {
  bert::BertConfig c;  // bert-base-uncased
  c.vocab_size = 30522;
  c.hidden_size = 768;
  c.num_hidden_layers = 12;
  c.num_attention_heads = 12;
  c.intermediate_size = 3072;
  c.num_labels = 2;
  return c;
}

BenchShape shape_config(const std::string& name) {
  BenchShape shape;  // T5Config's defaults are t5-small's
  if (name == "t5-small-shape") return shape;
  if (name == "t5-base-shape") {
    shape.t5.d_model = 768;
    shape.t5.d_ff = 3072;
    shape.t5.num_layers = shape.t5.num_decoder_layers = 12;
    shape.t5.num_heads = 12;
    return shape;
  }
  if (name == "bert-base-shape") {
    shape.family = "bert";
    shape.bert = bert_base_config();
    return shape;
  }
  fail_input("bench --model: unknown shape '" + name +
             "' (t5-small-shape, t5-base-shape, bert-base-shape, or a T5 / BERT checkpoint directory)");
}

// The walker below counts T5 layers; a BERT encoder layer has the same matmuls (q, k, v, o, two FFN linears).
T5Config walker_shape(const bert::BertConfig& b) {
  T5Config c;
  c.d_model = b.hidden_size;
  c.d_kv = b.head_dim();
  c.d_ff = b.intermediate_size;
  c.num_heads = b.num_attention_heads;
  c.num_layers = b.num_hidden_layers;
  c.num_decoder_layers = 0;
  c.vocab_size = b.vocab_size;
  c.is_gated_act = false;
  return c;
}

// ---- FLOP counting ----------------------------------------------------------------------------------------

// Walks the T5 forward matmul by matmul. `rg` = "this tensor requires grad": a backward matmul is counted
// only for operands that need a gradient (input grads where upstream is trainable, weight grads of
// trainable weights), as autograd computes them.
struct FlopWalker {
  const T5Config& c;
  std::string method;
  double B, S, T;
  double fwd = 0, bwd = 0;
  int64_t classifier_labels = 0;  // > 0: encoder + pooler + classifier (BERT) instead of the decoder and LM head

  bool full() const { return method == "full"; }
  bool low_rank() const { return method == "lora" || method == "merged-lora-unmerged" || poly(); }
  bool poly() const { return method == "poly" || method == "mhr"; }
  bool ia3() const { return method == "ia3"; }
  bool adapter() const { return method == "adapter"; }
  bool prefix() const { return method == "prefix"; }

  void mm(double M, double K, double N, bool a_grad, bool b_grad) {
    const double f = 2.0 * M * K * N;
    fwd += f;
    if (a_grad) bwd += f;
    if (b_grad) bwd += f;
  }

  // y = x W^T (+ low-rank update on attention projections). Returns whether y requires grad.
  bool linear(double M, double K, double N, bool in_rg, bool attention_site) {
    mm(M, K, N, in_rg, full());
    bool out_rg = in_rg || full();
    if (attention_site && low_rank()) {
      const double r = kLoraRank;
      if (poly()) {  // mixing the inventory per distinct task: einsum over skills for A and B
        const double U = 4, s = kPolySkills;
        mm(U, s, K * r, false, true);
        mm(U, s, r * N, false, true);
        fwd += 0;  // (w itself needs grad too: same size again)
        bwd += 2.0 * U * s * (K * r + r * N);
      }
      mm(M, K, r, in_rg, true);
      mm(M, r, N, true, true);
      out_rg = true;
    }
    return out_rg;
  }

  // One attention module: q rows Mq = B*q, keys from kv_rows = B*k. Returns whether its output requires grad.
  bool attention(double batch, double q_len, double k_len, bool q_rg, bool kv_rg) {
    const double d = c.d_model, inner = c.num_heads * c.d_kv, h = c.num_heads, dkv = c.d_kv;
    const bool qr = linear(batch * q_len, d, inner, q_rg, true);
    const bool kr = linear(batch * k_len, d, inner, kv_rg, true) || ia3();
    const bool vr = linear(batch * k_len, d, inner, kv_rg, true) || ia3();
    mm(batch * h * q_len, dkv, k_len, qr, kr);  // scores = Q K^T
    bool pr = false;
    double keys = k_len;
    if (prefix()) {
      mm(batch * h * q_len, dkv, kPrefixTokens, qr, true);  // Q P_k^T
      pr = true;
      keys += kPrefixTokens;
    }
    const bool ar = qr || kr || pr;
    mm(batch * h * q_len, keys, dkv, ar, vr || pr);  // weights x [P_v; V]
    return linear(batch * q_len, inner, d, ar || vr || pr, true);
  }

  bool feed_forward(double M, bool rg) {
    const double d = c.d_model, f = c.d_ff;
    bool h = false;
    if (c.is_gated_act) {
      h = linear(M, d, f, rg, false);
      h = linear(M, d, f, rg, false) || h;
    } else {
      h = linear(M, d, f, rg, false);
    }
    bool out = linear(M, f, d, h || ia3(), false);  // (IA)^3 scales wo's input
    if (adapter()) {  // Pfeiffer: bottleneck after the FFN sub-layer
      const double m = std::max<int64_t>(1, c.d_model / kAdapterReduction);
      mm(M, d, m, out, true);
      mm(M, m, d, true, true);
      out = true;
    }
    return out;
  }

  void prefix_generator(double layers) {
    const double d = c.d_model, m = kPrefixHidden, l = kPrefixTokens;
    mm(l, d, m, true, true);  // the embedding is trainable: its rows need grads too
    mm(l, m, layers * 2 * c.num_heads * c.d_kv, true, true);
  }

  void run() {
    bool enc = full();  // trainable embedding: every activation requires grad
    for (int64_t i = 0; i < c.num_layers; ++i) {
      enc = attention(B, S, S, enc, enc) || enc;
      enc = feed_forward(B * S, enc) || enc;
    }
    if (classifier_labels > 0) {
      mm(B, c.d_model, c.d_model, enc, full());  // pooler (frozen unless full)
      mm(B, c.d_model, static_cast<double>(classifier_labels), enc, true);  // classifier: trained by every method
      return;
    }
    bool dec = full();
    for (int64_t i = 0; i < c.num_decoder_layers; ++i) {
      dec = attention(B, T, T, dec, dec) || dec;
      dec = attention(B, T, S, dec, enc) || dec;
      dec = feed_forward(B * T, dec) || dec;
    }
    mm(B * T, c.d_model, c.vocab_size, dec, full());  // lm_head (tied: the shared embedding)
    if (prefix()) {
      prefix_generator(static_cast<double>(c.num_layers));
      prefix_generator(static_cast<double>(c.num_decoder_layers));
      prefix_generator(static_cast<double>(c.num_decoder_layers));
    }
  }
};

// ---- one method's model -----------------------------------------------------------------------------------

struct Batch {
  torch::Tensor input_ids, attention_mask, labels, task_ids;
};

// One method's model: a T5 or a BERT classifier (exactly one is set), its adapters and what it trains.
struct MethodModel {
  T5ForConditionalGeneration t5{nullptr};
  bert::BertForSequenceClassification bert{nullptr};
  adapters::AdapterSet set;
  std::vector<torch::Tensor> trainable;

  torch::nn::Module& module() {
    if (t5) return *t5;
    return *bert;
  }
  torch::Tensor loss(const Batch& b, const ForwardContext& ctx) {
    if (t5) return t5->forward(b.input_ids, b.attention_mask, {}, {}, b.labels, ctx).loss;
    bert::BertInputs in;
    in.input_ids = b.input_ids;
    in.attention_mask = b.attention_mask;
    return bert->forward(in, ctx, b.labels).loss;
  }
};

MethodModel build_method(const std::string& method, const BenchShape& shape, const io::HfCheckpoint* checkpoint,
                         const torch::Device& device, uint64_t seed, int n_tasks) {
  torch::manual_seed(seed);  // the same backbone weights for every method
  MethodModel mm;
  adapters::ModelInfo info;
  const bool is_bert = shape.family == "bert";
  if (is_bert) {
    mm.bert = checkpoint ? std::dynamic_pointer_cast<bert::BertForSequenceClassificationImpl>(
                               bert::load_bert(*checkpoint, bert::BertHead::kSequenceClassification))
                         : bert::BertForSequenceClassification(shape.bert);
    info = {"bert", shape.bert.hidden_size, shape.bert.num_attention_heads, shape.bert.head_dim()};
  } else {
    mm.t5 = checkpoint ? load_t5(*checkpoint) : T5ForConditionalGeneration(shape.t5);
    info = {"t5", shape.t5.d_model, shape.t5.num_heads, shape.t5.d_kv};
  }
  auto& model = mm.module();
  model.to(device);
  const char* attention_regex = is_bert ? kBertAttentionRegex : kAttentionRegex;
  auto inject = [&](adapters::AdapterSpec spec) {
    if (is_bert) spec.modules_to_save = {"classifier"};  // HF PEFT's SEQ_CLS: the new head trains too
    mm.set = adapters::inject(model, spec, info);
    mm.trainable = mm.set.trainable_parameters(model);
  };
  if (method == "full") {
    for (auto& p : model.parameters()) p.set_requires_grad(true);
    std::set<const void*> seen;  // tied tensors once
    for (auto& p : model.parameters())
      if (seen.insert(p.unsafeGetTensorImpl()).second) mm.trainable.push_back(p);
  } else if (method == "lora" || method == "merged-lora") {
    adapters::AdapterSpec spec;
    spec.kind = "lora";
    spec.lora.r = kLoraRank;
    spec.lora.lora_alpha = static_cast<double>(kLoraRank);
    if (is_bert) spec.target_modules = adapters::TargetModules::pattern(kBertAttentionRegex);  // q, k, v, o
    inject(spec);
    if (method == "merged-lora") {
      // A trained adapter has B != 0; the merged weights cost the same either way, but make it real.
      torch::NoGradGuard no_grad;
      for (auto& a : mm.set.adapters)
        if (auto* lora = dynamic_cast<adapters::LoraAdapter*>(a.get())) lora->lora_B->weight.normal_(0.0, 1e-3);
      mm.set.merge();
    }
  } else if (method == "poly" || method == "mhr") {
    for (auto& p : model.parameters()) p.set_requires_grad(false);
    if (is_bert)
      for (auto& p : mm.bert->classifier->parameters()) {
        p.set_requires_grad(true);
        mm.trainable.push_back(p);
      }
    routing::PolyOptions o;
    o.n_tasks = n_tasks;
    o.n_skills = kPolySkills;
    o.n_heads = method == "mhr" ? kMhrHeads : 1;
    o.rank = kLoraRank;
    for (auto& [name, poly] : routing::attach_poly(model, attention_regex, o)) {
      poly->to(device);
      for (auto& p : poly->parameters()) mm.trainable.push_back(p);
    }
  } else if (method == "ia3") {
    adapters::AdapterSpec spec;
    spec.kind = "ia3";
    inject(spec);
  } else if (method == "adapter") {
    adapters::AdapterSpec spec;
    spec.kind = "bottleneck";
    spec.bottleneck.config = "pfeiffer";
    spec.bottleneck.reduction_factor = kAdapterReduction;
    inject(spec);
  } else if (method == "prefix") {
    adapters::AdapterSpec spec;
    spec.kind = "prefix";
    spec.prefix.num_virtual_tokens = kPrefixTokens;
    spec.prefix.encoder_hidden_size = kPrefixHidden;
    inject(spec);
  } else if (method == "base") {
    for (auto& p : model.parameters()) p.set_requires_grad(false);
  }
  return mm;
}

// Random tokens in [2, vocab): no pad (0) and no eos (1), so every position is real. BERT: one class label
// per example.
Batch random_batch(const BenchShape& shape, int batch, int src_len, int tgt_len, int n_tasks,
                   const torch::Device& device) {
  auto lopts = torch::TensorOptions().dtype(torch::kLong);
  const int64_t vocab = shape.family == "bert" ? shape.bert.vocab_size : shape.t5.vocab_size;
  Batch b;
  b.input_ids = torch::randint(2, vocab, {batch, src_len}, lopts).to(device);
  b.attention_mask = torch::ones({batch, src_len}, lopts).to(device);
  b.labels = shape.family == "bert" ? torch::randint(0, shape.bert.num_labels, {batch}, lopts).to(device)
                                    : torch::randint(2, vocab, {batch, tgt_len}, lopts).to(device);
  b.task_ids = (torch::arange(batch, lopts) % n_tasks).to(device);
  return b;
}

std::string fmt(double v, int precision) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(precision) << v;
  return s.str();
}

}  // namespace

// ---- public helpers ---------------------------------------------------------------------------------------

const std::vector<std::string>& bench_methods() {
  static const std::vector<std::string> m = {"full", "lora",   "poly",        "mhr", "ia3",
                                             "adapter", "prefix", "merged-lora", "base"};
  return m;
}

StepFlops count_step_flops(const T5Config& config, const std::string& method, int64_t batch, int64_t src_len,
                           int64_t tgt_len) {
  // Merged LoRA and the bare backbone run the same matmuls.
  FlopWalker w{config, method == "merged-lora" ? std::string("base") : method, static_cast<double>(batch),
               static_cast<double>(src_len), static_cast<double>(tgt_len)};
  w.run();
  if (is_eval_only(method)) w.bwd = 0;
  return {w.fwd, w.bwd};
}

StepFlops count_classifier_step_flops(const bert::BertConfig& config, const std::string& method, int64_t batch,
                                      int64_t seq_len) {
  const T5Config shape = walker_shape(config);
  FlopWalker w{shape, method == "merged-lora" ? std::string("base") : method, static_cast<double>(batch),
               static_cast<double>(seq_len), 0.0};
  w.classifier_labels = config.num_labels;
  w.run();
  if (is_eval_only(method)) w.bwd = 0;
  return {w.fwd, w.bwd};
}

double measure_gemm_flops(int64_t n, int reps, const std::string& device_name) {
  const torch::Device device(device_name);
  torch::NoGradGuard no_grad;
  auto a = torch::randn({n, n}, torch::TensorOptions().device(device));
  auto b = torch::randn({n, n}, torch::TensorOptions().device(device));
  auto c = torch::mm(a, b);  // warm-up (thread pool start, page faults)
  sync(device);
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto t0 = Clock::now();
    torch::mm_out(c, a, b);
    sync(device);
    t.push_back(seconds_since(t0));
  }
  return 2.0 * static_cast<double>(n) * n * n / stats_of(t).median;
}

int64_t peak_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;  // "VmHWM:  1234 kB"
  }
  return 0;
}

int64_t current_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// ---- the benchmark ----------------------------------------------------------------------------------------

nlohmann::json run_bench(const BenchSettings& s, std::ostream& out) {
  if (s.batch < 1 || s.src_len < 1 || s.tgt_len < 1 || s.steps < 1 || s.warmup < 0 || s.gen_tokens < 1)
    fail_input("bench: batch, src-len, tgt-len, steps and gen-tokens must be positive, warmup >= 0");
  std::vector<std::string> methods = s.methods.empty() ? bench_methods() : s.methods;
  for (const auto& m : methods)
    if (std::find(bench_methods().begin(), bench_methods().end(), m) == bench_methods().end())
      fail_input("bench --methods: unknown method '" + m +
                 "' (full, lora, poly, mhr, ia3, adapter, prefix, merged-lora, base)");
  if (s.device != "cpu" && s.device.rfind("cuda", 0) != 0) fail_input("bench --device: '" + s.device + "' (cpu | cuda)");
  const torch::Device device(s.device);
  if (device.is_cuda() && !torch::cuda::is_available()) fail_input("bench --device: cuda requested but not available");

  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const int threads = s.threads > 0 ? s.threads : cores;
  set_cpu_threads(threads);

  // The model: a named shape with random weights, or a checkpoint directory (T5 or BERT by config.json's
  // model_type).
  BenchShape shape;
  std::unique_ptr<io::HfCheckpoint> checkpoint;
  std::string model_name = s.model;
  if (s.t5_config || s.bert_config) {
    if (s.bert_config) {
      shape.family = "bert";
      shape.bert = *s.bert_config;
    } else {
      shape.t5 = *s.t5_config;
    }
    model_name = "custom-shape";
  } else if (std::filesystem::is_directory(s.model)) {
    checkpoint = std::make_unique<io::HfCheckpoint>(io::read_hf_checkpoint(s.model));
    const std::string config_file = (std::filesystem::path(s.model) / "config.json").string();
    if (checkpoint->config.value("model_type", std::string()) == "bert") {
      shape.family = "bert";
      shape.bert = bert::BertConfig::from_json(checkpoint->config, config_file);
    } else {
      shape.t5 = T5Config::from_json(checkpoint->config, config_file);
    }
  } else {
    shape = shape_config(s.model);
  }
  const bool is_bert = shape.family == "bert";
  if (is_bert) {
    if (s.methods.empty()) methods.erase(std::find(methods.begin(), methods.end(), "prefix"));
    if (std::find(methods.begin(), methods.end(), "prefix") != methods.end())
      fail_input("bench --methods: prefix tuning is implemented for T5 only, not for the BERT model '" + model_name + "'");
  }
  const T5Config config = is_bert ? walker_shape(shape.bert) : shape.t5;  // layer sizes, for the table
  const int gen_rounds = s.gen_rounds > 0 ? s.gen_rounds : std::min(s.steps, 5);
  // BERT reads src_len tokens per example and has no target side.
  const int64_t tokens_per_step = static_cast<int64_t>(s.batch) * (s.src_len + (is_bert ? 0 : s.tgt_len));

  nlohmann::json result;
  result["machine"] = {{"cores", cores},
                       {"threads", threads},
                       {"device", s.device},
                       {"blas", blas_name()},
                       {"loadavg_start", read_loadavg()}};
  result["shape"] = {{"batch", s.batch},
                     {"src_len", s.src_len},
                     {"tgt_len", s.tgt_len},
                     {"tasks", s.n_tasks},
                     {"tokens_per_step", tokens_per_step},
                     {"steps", s.steps},
                     {"warmup", s.warmup},
                     {"gen_tokens", s.gen_tokens},
                     {"gen_rounds", gen_rounds}};

  const double gemm_start = measure_gemm_flops(1024, 10, s.device);
  out << "GEMM fp32 1024^3: " << fmt(gemm_start / 1e9, 1) << " GFLOP/s (" << threads << " threads)\n";

  nlohmann::json jm = nlohmann::json::object();
  auto run_ctx = [](const Batch& b, bool training) {
    ForwardContext ctx;
    ctx.task_ids = b.task_ids;
    ctx.training = training;
    return ctx;
  };

  // Every method's model is built and warmed up first, one after the other (its peak memory is read then);
  // the timed steps then go round the methods, one step of each in turn, so slow spells of a shared machine
  // (on the 2-core VM the same LoRA step takes 1.04 s or 1.46 s from one minute to the next) fall on all
  // methods alike and the ratios between them stay meaningful.
  struct MethodRun {
    std::string name;
    MethodModel mm;
    std::unique_ptr<FusedAdamW> optimizer;
    std::vector<double> step, data, fwd, bwd, opt, eval, gen;
    int64_t new_tokens = 0;
    double peak_rss_mb = 0;
    bool rss_reset = false;
  };
  auto d = [](Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); };
  auto train_step = [&](MethodRun& run, bool timed) {
    run.mm.module().train();
    auto t0 = Clock::now();
    Batch b = random_batch(shape, s.batch, s.src_len, s.tgt_len, s.n_tasks, device);
    sync(device);
    auto t1 = Clock::now();
    ForwardContext ctx = run_ctx(b, true);
    torch::Tensor loss = run.mm.loss(b, ctx);
    sync(device);
    auto t2 = Clock::now();
    loss.backward();
    sync(device);
    auto t3 = Clock::now();
    run.optimizer->step();
    for (auto& p : run.mm.trainable) p.mutable_grad() = torch::Tensor();  // set_to_none: no memset per step
    sync(device);
    auto t4 = Clock::now();
    if (!std::isfinite(loss.item<double>())) throw std::runtime_error("bench: non-finite loss for " + run.name);
    if (!timed) return;
    run.step.push_back(d(t0, t4));
    run.data.push_back(d(t0, t1));
    run.fwd.push_back(d(t1, t2));
    run.bwd.push_back(d(t2, t3));
    run.opt.push_back(d(t3, t4));
  };
  // Evaluation forward (teacher-forced, with the loss) and greedy generation, without autograd.
  auto eval_step = [&](MethodRun& run, bool timed) {
    run.mm.module().eval();
    torch::NoGradGuard no_grad;
    Batch b = random_batch(shape, s.batch, s.src_len, s.tgt_len, s.n_tasks, device);
    ForwardContext ctx = run_ctx(b, false);
    sync(device);
    auto t0 = Clock::now();
    torch::Tensor loss = run.mm.loss(b, ctx);
    sync(device);
    if (timed) run.eval.push_back(seconds_since(t0));
  };
  auto generate_once = [&](MethodRun& run, bool timed) {
    if (!run.mm.t5) return;  // an encoder-only classifier does not generate
    run.mm.t5->eval();
    torch::NoGradGuard no_grad;
    Batch b = random_batch(shape, s.batch, s.src_len, s.tgt_len, s.n_tasks, device);
    ForwardContext ctx = run_ctx(b, false);
    sync(device);
    auto t0 = Clock::now();
    torch::Tensor ids = run.mm.t5->generate(b.input_ids, b.attention_mask, ctx, s.gen_tokens);
    sync(device);
    if (!timed) return;
    run.gen.push_back(seconds_since(t0));
    run.new_tokens = (ids.size(1) - 1) * s.batch;  // rows that finished early still produce pad tokens
  };

  return_free_memory();  // the process keeps freed memory mapped (common/allocator.h): not part of any method
  const double rss_start_mb = static_cast<double>(current_rss_bytes()) / (1024.0 * 1024.0);
  std::vector<MethodRun> runs;
  runs.reserve(methods.size());
  for (const auto& method : methods) {
    MethodRun run;
    run.name = method;
    return_free_memory();  // what earlier methods freed would otherwise be reused without showing as growth
    run.rss_reset = reset_peak_rss();
    const double before_mb = static_cast<double>(current_rss_bytes()) / (1024.0 * 1024.0);
    run.mm = build_method(method, shape, checkpoint.get(), device, s.seed, s.n_tasks);
    torch::manual_seed(s.seed + 1);
    if (!is_eval_only(method)) {
      run.optimizer = std::make_unique<FusedAdamW>(run.mm.trainable, torch::optim::AdamWOptions(1e-4));
      for (int i = 0; i < s.warmup; ++i) train_step(run, false);
    }
    for (int i = 0; i < s.warmup; ++i) eval_step(run, false);
    generate_once(run, false);
    // What this method alone would need: its own growth on top of the process before any model was built.
    run.peak_rss_mb = rss_start_mb + static_cast<double>(peak_rss_bytes()) / (1024.0 * 1024.0) - before_mb;
    runs.push_back(std::move(run));
    out << "  built and warmed up " << method << "\n" << std::flush;
  }
  for (int i = 0; i < s.steps; ++i)
    for (auto& run : runs)
      if (run.optimizer) train_step(run, true);
  for (int i = 0; i < s.steps; ++i)
    for (auto& run : runs) eval_step(run, true);
  for (int i = 0; i < gen_rounds; ++i)
    for (auto& run : runs) generate_once(run, true);

  for (auto& run : runs) {
    const std::string& method = run.name;
    nlohmann::json r;
    r["kind"] = is_eval_only(method) ? "eval" : "train";
    const auto count = adapters::count_parameters(run.mm.module());
    r["parameters"] = count.total;
    int64_t trainable = 0;
    for (auto& p : run.mm.trainable) trainable += p.numel();
    r["trainable_parameters"] = trainable;
    const StepFlops flops = is_bert ? count_classifier_step_flops(shape.bert, method, s.batch, s.src_len)
                                    : count_step_flops(config, method, s.batch, s.src_len, s.tgt_len);
    r["forward_gflop"] = flops.forward / 1e9;
    if (run.optimizer) {
      r["step_gflop"] = flops.total() / 1e9;
      const Stats st = stats_of(run.step);
      r["step_s"] = to_json(st);
      r["tokens_per_s"] = static_cast<double>(tokens_per_step) / st.median;
      r["phases_s"] = {{"data", stats_of(run.data).median},
                       {"forward", stats_of(run.fwd).median},
                       {"backward", stats_of(run.bwd).median},
                       {"optimizer", stats_of(run.opt).median}};
      r["step_gflops"] = flops.total() / st.median / 1e9;
    }
    const Stats st_eval = stats_of(run.eval);
    r["eval_forward_s"] = to_json(st_eval);
    r["eval_tokens_per_s"] = static_cast<double>(tokens_per_step) / st_eval.median;
    if (!run.gen.empty()) {
      const Stats st_gen = stats_of(run.gen);
      r["generation"] = {{"new_tokens", run.new_tokens},
                         {"seconds", to_json(st_gen)},
                         {"new_tokens_per_s", static_cast<double>(run.new_tokens) / st_gen.median}};
    }
    r["peak_rss_mb"] = run.peak_rss_mb;
    r["peak_rss_reset"] = run.rss_reset;
    jm[method] = r;
    out << "  " << method << ": ";
    if (r.contains("step_s"))
      out << "step " << fmt(r["step_s"]["median"].get<double>(), 3) << " s (fwd " << fmt(r["phases_s"]["forward"].get<double>(), 3)
          << ", bwd " << fmt(r["phases_s"]["backward"].get<double>(), 3) << ", opt "
          << fmt(r["phases_s"]["optimizer"].get<double>(), 3) << "), ";
    out << "eval " << fmt(r["eval_forward_s"]["median"].get<double>(), 3) << " s";
    if (r.contains("generation"))
      out << ", generation " << fmt(r["generation"]["new_tokens_per_s"].get<double>(), 1) << " new tok/s";
    out << "\n";
  }
  out << "load average after the timed rounds " << fmt(read_loadavg()[0], 2) << "\n" << std::flush;
  runs.clear();  // free the models before the generation-scaling model

  // Generation cost per new token at several lengths (bare backbone): (generate(n) - encode) / n. Each round
  // times the encoder and then every length, and subtracts its own encode: the per-token figures and their ratio
  // are medians over rounds of within-round values, so a slow spell of a shared machine does not land on one
  // length only.
  nlohmann::json scaling = nlohmann::json::object();
  if (!s.gen_scaling.empty() && !is_bert) {
    MethodModel mm = build_method("base", shape, checkpoint.get(), device, s.seed, s.n_tasks);
    mm.t5->eval();
    torch::NoGradGuard no_grad;
    Batch b = random_batch(shape, s.batch, s.src_len, s.tgt_len, s.n_tasks, device);
    ForwardContext ctx = run_ctx(b, false);
    auto timed = [&](const std::function<int64_t()>& fn) {  // seconds, and what fn returns
      sync(device);
      auto t0 = Clock::now();
      const int64_t produced = fn();
      sync(device);
      return std::pair{seconds_since(t0), produced};
    };
    const int lo = *std::min_element(s.gen_scaling.begin(), s.gen_scaling.end());
    const int hi = *std::max_element(s.gen_scaling.begin(), s.gen_scaling.end());
    std::vector<double> enc, ratio;
    std::map<int, std::vector<double>> seconds, per_token;
    std::map<int, int64_t> produced;
    for (int i = 0; i < 1 + gen_rounds; ++i) {
      const double encode_s = timed([&] {
                                mm.t5->encode(b.input_ids, b.attention_mask, ctx);
                                return int64_t{0};
                              }).first;
      for (int n : s.gen_scaling) {
        const auto [t, made] =
            timed([&] { return mm.t5->generate(b.input_ids, b.attention_mask, ctx, n).size(1) - 1; });
        produced[n] = made;
        if (i == 0) continue;  // warm-up round
        seconds[n].push_back(t);
        per_token[n].push_back(std::max(t - encode_s, 1e-9) / static_cast<double>(std::max<int64_t>(made, 1)));
      }
      if (i == 0) continue;
      enc.push_back(encode_s);
      ratio.push_back(per_token[hi].back() / per_token[lo].back());
    }
    scaling["encode_s"] = stats_of(enc).median;
    scaling["per_token_ratio"] = {{"long", hi}, {"short", lo}, {"median", stats_of(ratio).median}};
    for (int n : s.gen_scaling)
      scaling[std::to_string(n)] = {{"new_tokens", produced[n]},
                                    {"seconds", stats_of(seconds[n]).median},
                                    {"per_token_s", stats_of(per_token[n]).median}};
  }
  result["generation_scaling"] = scaling;

  const double gemm_end = measure_gemm_flops(1024, 10, s.device);
  const double gemm = std::max(gemm_start, gemm_end);  // the machine's capability: the less disturbed figure
  result["gemm"] = {{"n", 1024}, {"gflops", gemm / 1e9}, {"gflops_start", gemm_start / 1e9}, {"gflops_end", gemm_end / 1e9}};
  for (auto& [name, r] : jm.items())
    if (r.contains("step_gflops")) r["gemm_fraction"] = r["step_gflops"].get<double>() * 1e9 / gemm;
  result["methods"] = jm;
  result["machine"]["loadavg_end"] = read_loadavg();
  result["model"] = config.to_json();
  result["model"]["family"] = shape.family;
  result["model"]["name"] = model_name;

  // ---- targets (issue: Python reference on the same machine; thresholds from the issue) ----
  nlohmann::json targets = nlohmann::json::array();
  auto target = [&](const std::string& name, double measured, double threshold, bool higher_is_better,
                    const std::string& unit) {
    const bool pass = higher_is_better ? measured >= threshold : measured <= threshold;
    targets.push_back({{"name", name},
                       {"measured", measured},
                       {"threshold", threshold},
                       {"ratio", measured / threshold},
                       {"unit", unit},
                       {"pass", pass}});
  };
  auto has = [&](const std::string& m) { return jm.contains(m); };
  // Ratios between methods: the median over rounds of the ratio within each round (the methods of one round
  // ran seconds apart, under the same conditions), so a slow spell of the machine cancels out.
  auto paired_ratio = [&](const std::string& a, const std::string& b, const std::string& key) {
    const auto& va = jm[a][key]["values"];
    const auto& vb = jm[b][key]["values"];
    std::vector<double> r;
    for (size_t i = 0; i < std::min(va.size(), vb.size()); ++i) r.push_back(va[i].get<double>() / vb[i].get<double>());
    return stats_of(r).median;
  };
  // The absolute thresholds are the issue's, for T5 (the T5-small shape); BERT gets the ratios only.
  if (has("lora") && !is_bert)
    target("lora step tokens/s >= 720", jm["lora"]["tokens_per_s"].get<double>(), 720, true, "tok/s");
  if (has("mhr") && !is_bert) target("mhr step tokens/s >= 720", jm["mhr"]["tokens_per_s"].get<double>(), 720, true, "tok/s");
  auto generates = [&](const std::string& m) { return has(m) && jm[m].contains("generation"); };
  if (generates("base"))
    target("generation new tokens/s >= 200 (base)", jm["base"]["generation"]["new_tokens_per_s"].get<double>(), 200,
           true, "tok/s");
  if (generates("lora"))
    target("generation new tokens/s >= 200 (lora, unmerged)",
           jm["lora"]["generation"]["new_tokens_per_s"].get<double>(), 200, true, "tok/s");
  if (has("poly") && has("lora")) target("poly step <= 1.10 x lora step", paired_ratio("poly", "lora", "step_s"), 1.10, false, "x");
  if (has("mhr") && has("lora")) target("mhr step <= 1.10 x lora step", paired_ratio("mhr", "lora", "step_s"), 1.10, false, "x");
  if (has("lora") && has("full")) target("lora step <= 0.65 x full step", paired_ratio("lora", "full", "step_s"), 0.65, false, "x");
  if (has("merged-lora") && has("base"))
    target("merged-lora eval <= 1.03 x base eval", paired_ratio("merged-lora", "base", "eval_forward_s"), 1.03, false, "x");
  if (s.gen_scaling.size() >= 2 && !scaling.empty()) {
    const nlohmann::json& r = scaling["per_token_ratio"];
    target("generation per-token cost at " + std::to_string(r["long"].get<int>()) + " <= 1.3 x at " +
               std::to_string(r["short"].get<int>()),
           r["median"].get<double>(), 1.3, false, "x");
  }
  if (has("lora") && !is_bert) target("lora step >= 50% of GEMM throughput", jm["lora"]["gemm_fraction"].get<double>(), 0.5, true, "");
  result["targets"] = targets;

  // ---- table ----
  out << "\npeft bench: " << model_name << " (d_model " << config.d_model << ", " << config.num_layers << "+"
      << config.num_decoder_layers << " layers), batch " << s.batch << ", src " << s.src_len << ", tgt " << s.tgt_len
      << " (" << tokens_per_step << " tokens/step, " << s.n_tasks << " tasks), " << s.steps << " timed steps after " << s.warmup
      << " warm-up, " << threads << " threads, " << s.device << "\n";
  out << "GEMM fp32 1024^3: " << fmt(gemm / 1e9, 1) << " GFLOP/s (start " << fmt(gemm_start / 1e9, 1) << ", end "
      << fmt(gemm_end / 1e9, 1) << ")\n\n";
  out << std::left << std::setw(12) << "method" << std::right << std::setw(11) << "trainable" << std::setw(23)
      << "step s [min-max]" << std::setw(8) << "tok/s" << std::setw(22) << "fwd/bwd/opt/data s" << std::setw(8)
      << "GFLOP" << std::setw(7) << "%GEMM" << std::setw(9) << "eval s" << std::setw(9) << "gen t/s" << std::setw(9)
      << "RSS MB" << "\n";
  for (const auto& method : methods) {
    const auto& r = jm[method];
    out << std::left << std::setw(12) << method << std::right << std::setw(11)
        << r["trainable_parameters"].get<int64_t>();
    if (r.contains("step_s")) {
      const auto& st = r["step_s"];
      const auto& ph = r["phases_s"];
      out << std::setw(23)
          << (fmt(st["median"].get<double>(), 3) + " [" + fmt(st["min"].get<double>(), 2) + "-" +
              fmt(st["max"].get<double>(), 2) + "]")
          << std::setw(8) << fmt(r["tokens_per_s"].get<double>(), 0) << std::setw(22)
          << (fmt(ph["forward"].get<double>(), 2) + "/" + fmt(ph["backward"].get<double>(), 2) + "/" +
              fmt(ph["optimizer"].get<double>(), 3) + "/" + fmt(ph["data"].get<double>(), 3))
          << std::setw(8) << fmt(r["step_gflop"].get<double>(), 1) << std::setw(7)
          << fmt(100.0 * r["gemm_fraction"].get<double>(), 1);
    } else {
      out << std::setw(23) << "-" << std::setw(8) << "-" << std::setw(22) << "-" << std::setw(8)
          << fmt(r["forward_gflop"].get<double>(), 1) << std::setw(7) << "-";
    }
    out << std::setw(9) << fmt(r["eval_forward_s"]["median"].get<double>(), 3) << std::setw(9)
        << (r.contains("generation") ? fmt(r["generation"]["new_tokens_per_s"].get<double>(), 1) : std::string("-"))
        << std::setw(9)
        << fmt(r["peak_rss_mb"].get<double>(), 0) << "\n";
  }
  if (!scaling.empty()) {
    out << "\ngeneration (base): encode " << fmt(scaling["encode_s"].get<double>(), 3) << " s";
    for (int n : s.gen_scaling)
      out << "; " << n << " new: " << fmt(scaling[std::to_string(n)]["seconds"].get<double>(), 3) << " s, "
          << fmt(1e3 * scaling[std::to_string(n)]["per_token_s"].get<double>(), 2) << " ms/token";
    out << "\n";
  }
  out << "\ntargets (ratios between methods: median over the rounds of the ratio within a round):\n";
  for (const auto& t : targets)
    out << "  " << (t["pass"].get<bool>() ? "PASS " : "FAIL ") << std::left << std::setw(50)
        << t["name"].get<std::string>() << std::right << " measured " << fmt(t["measured"].get<double>(), 3) << " "
        << t["unit"].get<std::string>() << " (ratio to threshold " << fmt(t["ratio"].get<double>(), 2) << ")\n";
  const auto la = result["machine"]["loadavg_start"], lb = result["machine"]["loadavg_end"];
  out << "load average at start " << fmt(la[0].get<double>(), 2) << ", at end " << fmt(lb[0].get<double>(), 2) << "\n";

  if (!s.json.empty()) write_file_atomic(s.json, result.dump(2) + "\n");
  return result;
}

}  // namespace peft::train
