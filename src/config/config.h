// The typed, validated configuration of a run. Filled from the option table in schema.cpp (the ONLY place that
// defines keys, types, defaults, ranges and help): YAML file, then `--set key.path=value` overrides, then the
// cross-key checks of validate.cpp. Code after loading trusts this struct. No YAML or LibTorch types here.
#pragma once
#include <map>
#include <string>
#include <vector>

namespace peft {

// Member names equal the YAML keys (`data.template` is `template_`: a C++ keyword).
struct ModelConfig {
  std::string path;   // Hugging Face checkpoint dir; "" = the embedded default tiny model
  std::string dtype;  // float32 | bfloat16 | float16
};

struct TokenizerConfig {
  std::string path;  // "" = model.path
};

struct DataConfig {
  std::string format;  // jsonl | superni | bbh
  std::string train_dir;
  std::string test_dir;
  std::vector<std::string> train_tasks;  // empty = all
  std::vector<std::string> test_tasks;   // empty = all
  int max_source_length = 0;
  int max_target_length = 0;
  int num_positive_examples = 0;
  std::string template_;  // key `data.template`
  bool add_task_definition = false;
  std::string sampling;  // proportional | uniform | temperature
  double temperature = 0;
  int max_train_examples_per_task = 0;  // 0 = all
  int eval_examples_per_task = 0;
  std::string cache_dir;
};

struct AdapterConfig {
  std::string kind;  // lora | ia3 | houlsby | pfeiffer | parallel | scaled_parallel | prefix | prompt | compacter | compacterpp | mam | none
  std::string target_modules;  // regex over full module names; "" = the method's default
  std::vector<std::string> modules_to_save;
  int r = 0;
  double alpha = 0;
  double dropout = 0;
  int reduction_factor = 0;
  std::string non_linearity;  // relu | swish | gelu | tanh
  double scaling = 0;
  std::string init;  // lora | bert
  int prefix_length = 0;
  int prefix_hidden = 0;
  int num_virtual_tokens = 0;
  int phm_dim = 0;
};

struct RoutingConfig {
  std::string method;  // none | poly | mhr
  int n_skills = 0;
  int n_heads = 0;
  std::string train_sampling;  // relaxed_bernoulli | sigmoid | straight_through
  double temperature = 0;
  std::string init;  // mhr | kaiming_per_head
  double learning_rate = 0;
};

struct AdamixConfig {
  bool enabled = false;
  int num_experts = 0;
  std::string share;  // up | down | none
  double consistency_weight = 0;
};

struct TrainConfig {
  int steps = 0;
  int batch_size = 0;
  int grad_accumulation = 0;
  double learning_rate = 0;
  double weight_decay = 0;
  double warmup_ratio = 0;
  double max_grad_norm = 0;
  int eval_every = 0;  // 0 = never
  int save_every = 0;  // 0 = only at the end
  int log_every = 0;
  bool bf16 = false;
  bool group_by_task = false;
};

struct AdaptConfig {
  std::vector<std::string> variants;
  std::string pretrained;
  std::vector<std::string> more_pretrained;  // further runs, for the variants adapt.pretrained cannot serve
  int shots = 0;
  int steps = 0;
  int batch_size = 0;
  double learning_rate = 0;
  double z_learning_rate = 0;
  std::vector<int> seeds;
  std::vector<std::string> tasks;  // empty = all held-out
};

struct EvalConfig {
  int max_new_tokens = 0;
  int batch_size = 0;
  bool rank_classification = false;
  std::vector<std::string> metrics;  // rouge_l | exact_match | accuracy
  std::string checkpoint;            // pretrain run folder to evaluate; "" = run.out
};

struct RunConfig {
  std::string out;
  std::string device;  // cpu | cuda
  int seed = 0;
  int threads = 0;  // 0 = all cores
  std::string log_level;  // trace | debug | info | warn | error
};

struct Config {
  ModelConfig model;
  TokenizerConfig tokenizer;
  DataConfig data;
  AdapterConfig adapter;
  RoutingConfig routing;
  AdamixConfig adamix;
  TrainConfig train;
  AdaptConfig adapt;
  EvalConfig eval;
  RunConfig run;
};

// Equality over every key of the table.
bool operator==(const Config& a, const Config& b);
inline bool operator!=(const Config& a, const Config& b) { return !(a == b); }

// Every key at its default (not validated: the defaults pass validation, a test checks it).
Config default_config();

// Loads `path` (YAML), applies `overrides` ("key.path=value", in order), validates. Every problem is a one-line
// peft::InputError naming the file, the line and the key (or the `--set` argument).
// `--set` values: strings are taken literally; lists are `[a, b]` (YAML flow) or `a,b`; `[]` or "" = empty list.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});

// Same from YAML text; `name` stands for the file in messages. An empty `yaml` = all defaults.
Config load_config_string(const std::string& yaml, const std::string& name,
                          const std::vector<std::string>& overrides = {});

// Defaults + overrides (for commands that take no config file, e.g. `bench`); messages name only `--set`.
Config config_from_overrides(const std::vector<std::string>& overrides);

// The fully resolved config: every key, defaults included, sections and keys in table order.
// load_config_string(to_yaml(c), ...) == c.
std::string to_yaml(const Config& config);

// One section only (e.g. "data"), same format as to_yaml.
std::string to_yaml_section(const Config& config, const std::string& section);

// configs/reference.yaml: every key at its default with a one-line comment (help, allowed values).
std::string reference_yaml();

}  // namespace peft
