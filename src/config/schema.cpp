// THE option table. Adding a key: add the member to config.h and one line here; loading, `--set`, to_yaml,
// configs/reference.yaml (regenerate with `peft config --reference > configs/reference.yaml`) follow.
#include "config/schema.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>

namespace peft::config {
namespace {

template <class T>
struct Id {
  using type = T;
};

// The field's type fixes the key's type; the default converts to it (so `1` is fine for a float key).
template <class T>
Option make(const char* key, T* (*field)(Config&), typename Id<T>::type def, Constraint constraint,
            const char* help) {
  Option o;
  o.key = key;
  o.default_value = Value(std::move(def));
  o.field = [field](Config& c) -> FieldRef { return field(c); };
  o.constraint = std::move(constraint);
  o.help = help;
  return o;
}

Constraint none() { return {}; }
Constraint gt(double v) {
  Constraint c;
  c.min = v;
  c.min_exclusive = true;
  return c;
}
Constraint ge(double v) {
  Constraint c;
  c.min = v;
  return c;
}
Constraint closed(double a, double b) {
  Constraint c;
  c.min = a;
  c.max = b;
  return c;
}
Constraint closed_open(double a, double b) {
  Constraint c = closed(a, b);
  c.max_exclusive = true;
  return c;
}
Constraint one_of(std::vector<std::string> values) {
  Constraint c;
  c.choices = std::move(values);
  return c;
}

using Strings = std::vector<std::string>;
using Ints = std::vector<int>;

#define F(member) +[](Config& c) { return &c.member; }

std::vector<Option> build_table() {
  const Strings adapter_kinds = {"lora",   "ia3",    "houlsby",   "pfeiffer", "parallel",    "scaled_parallel",
                                 "prefix", "prompt", "compacter", "compacterpp", "mam",      "none"};
  // Names as users type them (methods.md §2); the order is the order of the results table.
  const Strings variants = {"mhr", "mhr-z", "mhr-mu", "poly", "poly-z", "poly-mu", "lora", "ia3", "adapter",
                            "compacter", "prefix", "mam", "adamix", "adamix-adapter", "shared-lora", "full",
                            "zero-shot"};
  return {
      // model
      make("model.path", F(model.path), "",
           none(), "Hugging Face checkpoint directory (config.json + model.safetensors); \"\" = the embedded default tiny model."),
      make("model.dtype", F(model.dtype), "float32", one_of({"float32", "bfloat16", "float16"}),
           "Data type the frozen backbone weights are held in."),
      // tokenizer
      make("tokenizer.path", F(tokenizer.path), "", none(),
           "Tokenizer directory or file (spiece.model / vocab.txt); \"\" = model.path."),
      // data
      make("data.format", F(data.format), "superni", one_of({"jsonl", "superni", "bbh"}),
           "Layout of the task data: one jsonl per task, Super-NaturalInstructions task files, or BIG-Bench Hard."),
      make("data.train_dir", F(data.train_dir), "", none(), "Directory of the training tasks."),
      make("data.test_dir", F(data.test_dir), "", none(), "Directory of the held-out (test) tasks."),
      make("data.train_tasks", F(data.train_tasks), Strings{}, none(),
           "Training task names; empty = every task in data.train_dir."),
      make("data.test_tasks", F(data.test_tasks), Strings{}, none(),
           "Held-out task names; empty = every task in data.test_dir."),
      make("data.max_source_length", F(data.max_source_length), 256, ge(1),
           "Maximum number of input tokens (longer inputs are truncated)."),
      make("data.max_target_length", F(data.max_target_length), 64, ge(1),
           "Maximum number of target tokens (longer targets are truncated)."),
      make("data.num_positive_examples", F(data.num_positive_examples), 0, ge(0),
           "Number of positive demonstrations put into each prompt (Tk-Instruct's pos_k)."),
      make("data.template", F(data.template_), "tk-instruct", none(),
           "Prompt template that turns a task definition, demonstrations and an input into the source text."),
      make("data.add_task_definition", F(data.add_task_definition), true, none(),
           "Put the task definition at the start of each prompt."),
      make("data.sampling", F(data.sampling), "proportional", one_of({"proportional", "uniform", "temperature"}),
           "How training batches pick tasks: by size, uniformly, or by size^(1/temperature)."),
      make("data.temperature", F(data.temperature), 2.0, gt(0),
           "Temperature T of data.sampling=temperature (task weight proportional to size^(1/T))."),
      make("data.max_train_examples_per_task", F(data.max_train_examples_per_task), 0, ge(0),
           "Cap on training examples per task; 0 = all."),
      make("data.eval_examples_per_task", F(data.eval_examples_per_task), 20, ge(0),
           "Held-out examples of each training task kept aside for evaluation during training."),
      make("data.cache_dir", F(data.cache_dir), ".cache/peft", none(),
           "Directory for tokenized data caches (keyed by content hash)."),
      // adapter
      make("adapter.kind", F(adapter.kind), "lora", one_of(adapter_kinds),
           "Parameter-efficient method attached to the frozen backbone."),
      make("adapter.target_modules", F(adapter.target_modules), "", none(),
           "Regex matched against full module names to choose adapted layers; \"\" = the method's default."),
      make("adapter.modules_to_save", F(adapter.modules_to_save), Strings{}, none(),
           "Backbone modules (regex over names) that are also trained and saved in full."),
      make("adapter.r", F(adapter.r), 8, ge(1), "LoRA rank r (also the rank of every Poly/MHR skill)."),
      make("adapter.alpha", F(adapter.alpha), 8.0, gt(0), "LoRA alpha: the update is scaled by alpha / r."),
      make("adapter.dropout", F(adapter.dropout), 0.0, closed_open(0, 1),
           "Dropout on the adapter's input (LoRA) or inside bottleneck adapters."),
      make("adapter.reduction_factor", F(adapter.reduction_factor), 16, ge(1),
           "Bottleneck adapters: hidden size m = d_model / reduction_factor."),
      make("adapter.non_linearity", F(adapter.non_linearity), "relu", one_of({"relu", "swish", "gelu", "tanh"}),
           "Activation between the down and up projection of bottleneck adapters."),
      make("adapter.scaling", F(adapter.scaling), 1.0, gt(0),
           "Output scale s of a parallel adapter (kind parallel; scaled_parallel and mam use s = 4)."),
      make("adapter.init", F(adapter.init), "lora", one_of({"lora", "bert"}),
           "Bottleneck init: lora = kaiming down, zero up (exact no-op at start); bert = N(0, 0.02)."),
      make("adapter.prefix_length", F(adapter.prefix_length), 30, ge(1),
           "Prefix tuning: number of prefix keys/values l per attention module."),
      make("adapter.prefix_hidden", F(adapter.prefix_hidden), 512, ge(1),
           "Prefix tuning: hidden size m of the reparameterisation MLP."),
      make("adapter.num_virtual_tokens", F(adapter.num_virtual_tokens), 20, ge(1),
           "Prompt tuning: number of soft tokens prepended to the encoder input."),
      make("adapter.phm_dim", F(adapter.phm_dim), 4, ge(1),
           "Compacter: number n of Kronecker products in each PHM layer."),
      // routing
      make("routing.method", F(routing.method), "none", one_of({"none", "poly", "mhr"}),
           "Route each task over an inventory of LoRA skills: poly (one head) or mhr (multi-head routing)."),
      make("routing.n_skills", F(routing.n_skills), 8, ge(1), "Number of skills S in the inventory."),
      make("routing.n_heads", F(routing.n_heads), 1, ge(1),
           "Number of routing heads h (MHR splits); must divide each adapted layer's d_in and d_out."),
      make("routing.train_sampling", F(routing.train_sampling), "relaxed_bernoulli",
           one_of({"relaxed_bernoulli", "sigmoid", "straight_through"}),
           "How routing weights are drawn in training (evaluation always uses the sigmoid)."),
      make("routing.temperature", F(routing.temperature), 1.0, gt(0), "Temperature tau of the relaxed Bernoulli."),
      make("routing.init", F(routing.init), "mhr", one_of({"mhr", "kaiming_per_head"}),
           "Init of the A inventory: mhr = U(+-1/sqrt(3 d_in)); kaiming_per_head = HF PEFT Poly's."),
      make("routing.learning_rate", F(routing.learning_rate), 0.1, gt(0),
           "Learning rate of the routing logits Z (their own optimizer group)."),
      // adamix
      make("adamix.enabled", F(adamix.enabled), false, none(),
           "pretrain with routing.method none: train the shared adapter (adapter.kind lora or pfeiffer) as an AdaMix "
           "mixture, saved merged. The adapt variants adamix / adamix-adapter use the adamix keys whatever this says."),
      make("adamix.num_experts", F(adamix.num_experts), 4, ge(1), "Number of copies E of each projection."),
      make("adamix.share", F(adamix.share), "up", one_of({"up", "down", "none"}),
           "Projection kept as one shared copy: up (adapter Up / LoRA B), down (adapter Down / LoRA A), or none."),
      make("adamix.consistency_weight", F(adamix.consistency_weight), 1.0, ge(0),
           "Weight lambda of the symmetric-KL consistency loss between two routed passes; 0 = off."),
      // train
      make("train.steps", F(train.steps), 1000, ge(1), "Number of optimizer steps."),
      make("train.batch_size", F(train.batch_size), 8, ge(1), "Examples per forward pass."),
      make("train.grad_accumulation", F(train.grad_accumulation), 1, ge(1),
           "Forward passes whose gradients are summed into one optimizer step."),
      make("train.learning_rate", F(train.learning_rate), 1e-3, gt(0), "Peak learning rate of AdamW."),
      make("train.weight_decay", F(train.weight_decay), 0.01, ge(0), "AdamW weight decay."),
      make("train.warmup_ratio", F(train.warmup_ratio), 0.06, closed(0, 1),
           "Fraction of steps with linear warmup, followed by linear decay to 0."),
      make("train.max_grad_norm", F(train.max_grad_norm), 0.1, ge(0), "Gradient clipping norm; 0 = no clipping."),
      make("train.eval_every", F(train.eval_every), 200, ge(0), "Evaluate every N steps; 0 = only at the end."),
      make("train.save_every", F(train.save_every), 500, ge(0), "Save a checkpoint every N steps; 0 = only at the end."),
      make("train.log_every", F(train.log_every), 10, ge(1), "Log loss and learning rate every N steps."),
      make("train.bf16", F(train.bf16), false, none(), "Run forward and backward in bfloat16 autocast."),
      make("train.group_by_task", F(train.group_by_task), false, none(),
           "Fill each batch with examples of a single task."),
      // adapt
      make("adapt.variants", F(adapt.variants), Strings{"mhr", "mhr-z", "mhr-mu", "lora"}, one_of(variants),
           "Few-shot adaptation variants to run on each held-out task."),
      make("adapt.pretrained", F(adapt.pretrained), "", none(),
           "Run folder of the multi-task pre-training whose adapter inventory is adapted."),
      make("adapt.more_pretrained", F(adapt.more_pretrained), Strings{}, none(),
           "Further pre-training run folders: each variant adapts the first of adapt.pretrained and these that it "
           "can run on (poly-* a Poly run, mhr-* an MHR run, shared-lora a shared-adapter run), so one sweep covers "
           "every variant; zero-shot and the from-scratch baselines use adapt.pretrained."),
      make("adapt.shots", F(adapt.shots), 100, ge(1), "Training examples per held-out task."),
      make("adapt.steps", F(adapt.steps), 1000, ge(1), "Optimizer steps per task and seed."),
      make("adapt.batch_size", F(adapt.batch_size), 8, ge(1), "Examples per step in adaptation."),
      make("adapt.learning_rate", F(adapt.learning_rate), 1e-3, gt(0), "Learning rate of the adapted weights."),
      make("adapt.z_learning_rate", F(adapt.z_learning_rate), 0.1, gt(0),
           "Learning rate of the new routing row Z (the -z variants and mhr/poly)."),
      make("adapt.seeds", F(adapt.seeds), Ints{13, 42, 58}, ge(0), "Seeds; every variant and task runs once per seed."),
      make("adapt.tasks", F(adapt.tasks), Strings{}, none(), "Held-out tasks to adapt to; empty = all held-out tasks."),
      // eval
      make("eval.max_new_tokens", F(eval.max_new_tokens), 64, ge(1), "Maximum generated tokens per example."),
      make("eval.batch_size", F(eval.batch_size), 32, ge(1), "Examples per evaluation batch."),
      make("eval.rank_classification", F(eval.rank_classification), true, none(),
           "For tasks with answer options, pick the option of highest likelihood instead of generating."),
      make("eval.metrics", F(eval.metrics), Strings{"rouge_l", "exact_match"},
           one_of({"rouge_l", "exact_match", "accuracy"}), "Metrics computed on every evaluation."),
      make("eval.checkpoint", F(eval.checkpoint), "", none(),
           "Pretrain run folder to evaluate (manifest.json or adapter/); \"\" = run.out."),
      // run
      make("run.out", F(run.out), "runs/default", none(),
           "Run folder: config.resolved.yaml, log.txt, metrics, checkpoints and results go here."),
      make("run.device", F(run.device), "cpu", one_of({"cpu", "cuda"}), "Device to compute on."),
      make("run.seed", F(run.seed), 42, ge(0), "Seed of every random generator."),
      make("run.threads", F(run.threads), 0, ge(0), "CPU threads for LibTorch; 0 = all cores."),
      make("run.log_level", F(run.log_level), "info", one_of({"trace", "debug", "info", "warn", "error"}),
           "Lowest level of messages written to the console and log.txt."),
  };
}

#undef F

std::string format_number(double v) {
  // Shortest text that reads back to the same double, always with a '.' or an exponent (so it stays a float).
  char buf[64];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  std::string s = buf;
  if (s.find_first_of(".en") == std::string::npos) s += ".0";  // 'n': nan/inf never reach here (validated)
  return s;
}

bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  static const char* reserved[] = {"true", "false", "yes", "no", "on", "off", "null", "y", "n", "~"};
  std::string lower = s;
  std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* r : reserved)
    if (lower == r) return true;
  // Anything that parses as a number would come back as one.
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  if (end && *end == '\0') return true;
  const std::string safe_first = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_./";
  if (safe_first.find(s[0]) == std::string::npos) return true;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && std::string("_./-+").find(c) == std::string::npos)
      return true;
  return false;
}

std::string quote(const std::string& s) {
  if (!needs_quotes(s)) return s;
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\x%02x", c);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string format_bound(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  return format_number(v);
}

}  // namespace

const char* type_name(Type type) {
  switch (type) {
    case Type::Bool: return "true or false";
    case Type::Int: return "an integer";
    case Type::Float: return "a number";
    case Type::String: return "a string";
    case Type::StringList: return "a list of strings";
    case Type::IntList: return "a list of integers";
  }
  return "?";
}

std::string Constraint::describe() const {
  if (!choices.empty()) {
    std::string s = "one of: ";
    for (size_t i = 0; i < choices.size(); ++i) s += (i ? ", " : "") + choices[i];
    return s;
  }
  if (min && max)
    return std::string("in ") + (min_exclusive ? "(" : "[") + format_bound(*min) + ", " + format_bound(*max) +
           (max_exclusive ? ")" : "]");
  if (min) return std::string(min_exclusive ? "> " : ">= ") + format_bound(*min);
  if (max) return std::string(max_exclusive ? "< " : "<= ") + format_bound(*max);
  return "";
}

const std::vector<Option>& options() {
  static const std::vector<Option> table = build_table();
  return table;
}

const Option* find_option(const std::string& key) {
  for (const Option& o : options())
    if (o.key == key) return &o;
  return nullptr;
}

std::vector<std::string> sections() {
  std::vector<std::string> out;
  for (const Option& o : options())
    if (std::find(out.begin(), out.end(), o.section()) == out.end()) out.push_back(o.section());
  return out;
}

Value get(const Config& config, const Option& option) {
  // Reading through the same accessor as writing; the config is not modified.
  FieldRef ref = option.field(const_cast<Config&>(config));
  return std::visit([](auto* p) -> Value { return Value(*p); }, ref);
}

void set(Config& config, const Option& option, const Value& value) {
  FieldRef ref = option.field(config);
  std::visit(
      [&](auto* p) {
        using T = std::remove_pointer_t<decltype(p)>;
        const T* v = std::get_if<T>(&value);
        if (!v) throw std::logic_error("config: wrong value type for " + option.key);
        *p = *v;
      },
      ref);
}

std::string format_value(const Value& value) {
  struct Visitor {
    std::string operator()(bool b) const { return b ? "true" : "false"; }
    std::string operator()(int i) const { return std::to_string(i); }
    std::string operator()(double d) const { return format_number(d); }
    std::string operator()(const std::string& s) const { return quote(s); }
    std::string operator()(const std::vector<std::string>& l) const {
      std::string s = "[";
      for (size_t i = 0; i < l.size(); ++i) s += (i ? ", " : "") + quote(l[i]);
      return s + "]";
    }
    std::string operator()(const std::vector<int>& l) const {
      std::string s = "[";
      for (size_t i = 0; i < l.size(); ++i) s += (i ? ", " : "") + std::to_string(l[i]);
      return s + "]";
    }
  };
  return std::visit(Visitor{}, value);
}

size_t levenshtein(const std::string& a, const std::string& b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string suggest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  size_t best_distance = std::string::npos;
  for (const std::string& c : candidates) {
    const size_t d = levenshtein(word, c);
    if (d < best_distance) best_distance = d, best = c;
  }
  // A typo changes a few characters; beyond a third of the word it is a different word.
  const size_t limit = std::max<size_t>(2, word.size() / 3);
  return best_distance <= limit && best_distance < word.size() ? best : "";
}

}  // namespace peft::config
