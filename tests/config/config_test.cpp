#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"
#include "common/files.h"
#include "config/config.h"
#include "config/schema.h"
#include "config/validate.h"

namespace fs = std::filesystem;
using peft::Config;
using peft::InputError;

namespace {

// The one-line message of the InputError thrown by `f`, or "<no error>".
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "<no error>";
}

std::string load_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return error_of([&] { peft::load_config_string(yaml, "configs/x.yaml", overrides); });
}

Config load(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return peft::load_config_string(yaml, "configs/x.yaml", overrides);
}

}  // namespace

TEST(ConfigSchema, DefaultsComeFromTheTable) {
  const Config c = peft::default_config();
  EXPECT_EQ(c.model.dtype, "float32");
  EXPECT_EQ(c.data.max_source_length, 256);
  EXPECT_EQ(c.data.max_target_length, 64);
  EXPECT_EQ(c.data.template_, "tk-instruct");
  EXPECT_TRUE(c.data.add_task_definition);
  EXPECT_EQ(c.data.eval_examples_per_task, 20);
  EXPECT_EQ(c.adapter.kind, "lora");
  EXPECT_EQ(c.adapter.r, 8);
  EXPECT_DOUBLE_EQ(c.adapter.alpha, 8.0);
  EXPECT_EQ(c.routing.n_skills, 8);
  EXPECT_DOUBLE_EQ(c.routing.learning_rate, 0.1);
  EXPECT_EQ(c.train.steps, 1000);
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 1e-3);
  EXPECT_DOUBLE_EQ(c.train.warmup_ratio, 0.06);
  EXPECT_EQ(c.adapt.variants, (std::vector<std::string>{"mhr", "mhr-z", "mhr-mu", "lora"}));
  EXPECT_EQ(c.adapt.seeds, (std::vector<int>{13, 42, 58}));
  EXPECT_EQ(c.run.out, "runs/default");
  EXPECT_EQ(c.run.seed, 42);
  EXPECT_EQ(c.run.log_level, "info");
  // The defaults are a valid config.
  EXPECT_TRUE(peft::validate_config(c).empty());
}

TEST(ConfigSchema, EveryKeyIsUniqueDottedAndDocumented) {
  std::set<std::string> keys;
  for (const auto& o : peft::config::options()) {
    EXPECT_TRUE(keys.insert(o.key).second) << o.key;
    EXPECT_EQ(std::count(o.key.begin(), o.key.end(), '.'), 1) << o.key;
    EXPECT_FALSE(o.help.empty()) << o.key;
    EXPECT_EQ(o.help.find('\n'), std::string::npos) << o.key;
    // The default satisfies the key's own enum.
    if (auto* s = std::get_if<std::string>(&o.default_value); s && !o.constraint.choices.empty()) {
      EXPECT_NE(std::find(o.constraint.choices.begin(), o.constraint.choices.end(), *s), o.constraint.choices.end())
          << o.key;
    }
  }
  EXPECT_GE(keys.size(), 70u);
}

TEST(ConfigSchema, EveryKeyFillsItsOwnMember) {
  // Setting one key must change exactly that key: catches two table rows pointing at the same member.
  for (const auto& o : peft::config::options()) {
    Config c = peft::default_config();
    peft::config::Value v = o.default_value;
    std::visit(
        [](auto& x) {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, bool>) x = !x;
          else if constexpr (std::is_same_v<T, int>) x += 7;
          else if constexpr (std::is_same_v<T, double>) x += 0.25;
          else if constexpr (std::is_same_v<T, std::string>) x += "_changed";
          else x.push_back({});
        },
        v);
    peft::config::set(c, o, v);
    for (const auto& other : peft::config::options())
      EXPECT_EQ(peft::config::get(c, other) == other.default_value, other.key != o.key) << o.key << " vs " << other.key;
  }
}

TEST(ConfigSchema, SuggestsCloseNames) {
  EXPECT_EQ(peft::config::levenshtein("lerning_rate", "learning_rate"), 1u);
  EXPECT_EQ(peft::config::levenshtein("", "abc"), 3u);
  EXPECT_EQ(peft::config::levenshtein("kitten", "sitting"), 3u);
  EXPECT_EQ(peft::config::suggest("lerning_rate", {"steps", "learning_rate", "warmup_ratio"}), "learning_rate");
  EXPECT_EQ(peft::config::suggest("zzzzzz", {"steps", "learning_rate"}), "");
}

TEST(ConfigLoad, EmptyFileGivesDefaults) { EXPECT_EQ(load(""), peft::default_config()); }

TEST(ConfigLoad, ReadsEveryType) {
  const Config c = load(
      "model:\n  path: /m/t5\n  dtype: bfloat16\n"
      "data:\n  train_tasks: [task1, task2]\n  add_task_definition: false\n  temperature: 3\n"
      "train:\n  steps: 20\n  learning_rate: 5e-4\n  bf16: true\n"
      "adapt:\n  seeds:\n    - 1\n    - 2\n  variants: [lora]\n");
  EXPECT_EQ(c.model.path, "/m/t5");
  EXPECT_EQ(c.model.dtype, "bfloat16");
  EXPECT_EQ(c.data.train_tasks, (std::vector<std::string>{"task1", "task2"}));
  EXPECT_FALSE(c.data.add_task_definition);
  EXPECT_DOUBLE_EQ(c.data.temperature, 3.0);  // an integer is a fine float
  EXPECT_EQ(c.train.steps, 20);
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 5e-4);
  EXPECT_TRUE(c.train.bf16);
  EXPECT_EQ(c.adapt.seeds, (std::vector<int>{1, 2}));
  EXPECT_EQ(c.adapt.variants, (std::vector<std::string>{"lora"}));
  EXPECT_EQ(c.train.batch_size, 8);  // untouched keys keep their default
}

TEST(ConfigLoad, NullValuesMeanEmptyForStringsAndLists) {
  const Config c = load("model:\n  path:\ndata:\n  train_tasks:\ntrain:\n");
  EXPECT_EQ(c.model.path, "");
  EXPECT_TRUE(c.data.train_tasks.empty());
}

TEST(ConfigRoundTrip, DefaultsAndChangedValues) {
  Config c = peft::default_config();
  EXPECT_EQ(load(peft::to_yaml(c)), c);
  c.model.path = "weird: path # with 'quotes' and \"dq\"";
  c.data.template_ = "true";  // would read back as a bool if unquoted; we read strings as strings anyway
  c.data.train_tasks = {"task001_a", "1234", "", "x,y"};
  c.data.temperature = 0.1 + 0.2;  // not exactly representable in short decimal
  c.train.learning_rate = 3e-5;
  c.train.weight_decay = 1.0 / 3.0;
  c.adapter.alpha = 16;
  c.adapt.seeds = {0, 7};
  c.adapt.tasks = {"task1"};
  c.run.seed = 0;
  c.train.group_by_task = true;
  const std::string yaml = peft::to_yaml(c);
  const Config back = load(yaml);
  EXPECT_EQ(back, c) << yaml;
  EXPECT_EQ(back.data.train_tasks, c.data.train_tasks);
  EXPECT_EQ(back.train.weight_decay, 1.0 / 3.0);
  EXPECT_EQ(peft::to_yaml(back), yaml);
}

TEST(ConfigRoundTrip, ToYamlListsEveryKeyOnce) {
  const std::string yaml = peft::to_yaml(peft::default_config());
  for (const auto& o : peft::config::options())
    EXPECT_NE(yaml.find("  " + o.name() + ": "), std::string::npos) << o.key;
  EXPECT_NE(yaml.find("train:\n  steps: 1000\n"), std::string::npos);
  EXPECT_NE(yaml.find("  learning_rate: 0.001\n"), std::string::npos);
  EXPECT_NE(yaml.find("  alpha: 8.0\n"), std::string::npos);
  EXPECT_NE(yaml.find("  seeds: [13, 42, 58]\n"), std::string::npos);
  EXPECT_NE(yaml.find("  path: \"\"\n"), std::string::npos);
  EXPECT_NE(yaml.find("  template: tk-instruct\n"), std::string::npos);
  EXPECT_EQ(peft::to_yaml_section(peft::default_config(), "run"),
            "run:\n  out: runs/default\n  device: cpu\n  seed: 42\n  threads: 0\n  log_level: info\n");
}

TEST(ConfigErrors, UnknownKeyWithSuggestion) {
  EXPECT_EQ(load_error("# comment\ntrain:\n  steps: 3\n  lerning_rate: 0.1\n"),
            "configs/x.yaml:4: unknown key 'lerning_rate' in 'train' (did you mean 'learning_rate'?)");
  EXPECT_EQ(load_error("trian:\n  steps: 3\n"), "configs/x.yaml:1: unknown key 'trian' (did you mean 'train'?)");
  EXPECT_EQ(load_error("train:\n  qqqqqqqqq: 3\n"), "configs/x.yaml:2: unknown key 'qqqqqqqqq' in 'train'");
}

TEST(ConfigErrors, WrongType) {
  EXPECT_EQ(load_error("\n\ntrain:\n  steps: ten\n"), "configs/x.yaml:4: train.steps: expected an integer, got 'ten'");
  EXPECT_EQ(load_error("train:\n  steps: 1.5\n"), "configs/x.yaml:2: train.steps: expected an integer, got '1.5'");
  EXPECT_EQ(load_error("train:\n  learning_rate: fast\n"),
            "configs/x.yaml:2: train.learning_rate: expected a number, got 'fast'");
  EXPECT_EQ(load_error("train:\n  bf16: maybe\n"), "configs/x.yaml:2: train.bf16: expected true or false, got 'maybe'");
  EXPECT_EQ(load_error("train:\n  steps: [1, 2]\n"), "configs/x.yaml:2: train.steps: expected an integer, got a list");
  EXPECT_EQ(load_error("train:\n  steps:\n"), "configs/x.yaml:2: train.steps: expected an integer, got nothing");
  EXPECT_EQ(load_error("model:\n  path: {a: 1}\n"), "configs/x.yaml:2: model.path: expected a string, got a mapping");
  EXPECT_EQ(load_error("adapt:\n  seeds: 13\n"), "configs/x.yaml:2: adapt.seeds: expected a list of integers, got '13'");
  EXPECT_EQ(load_error("adapt:\n  seeds:\n    - 13\n    - x\n"),
            "configs/x.yaml:4: adapt.seeds[1]: expected an integer, got 'x'");
  EXPECT_EQ(load_error("train: 5\n"), "configs/x.yaml:1: train: expected a mapping of keys, got '5'");
  EXPECT_EQ(load_error("- a\n- b\n"),
            "configs/x.yaml:1: expected a mapping of sections (model:, data:, train:, ...), got a list");
}

TEST(ConfigErrors, OutOfRange) {
  EXPECT_EQ(load_error("train:\n  learning_rate: -1\n"), "configs/x.yaml:2: train.learning_rate: must be > 0, got -1");
  EXPECT_EQ(load_error("train:\n  warmup_ratio: 1.5\n"),
            "configs/x.yaml:2: train.warmup_ratio: must be in [0, 1], got 1.5");
  EXPECT_EQ(load_error("adapter:\n  dropout: 1\n"), "configs/x.yaml:2: adapter.dropout: must be in [0, 1), got 1");
  EXPECT_EQ(load_error("train:\n  steps: 0\n"), "configs/x.yaml:2: train.steps: must be >= 1, got 0");
  EXPECT_EQ(load_error("adapt:\n  seeds: [1, -2]\n"), "configs/x.yaml:2: adapt.seeds[1]: must be >= 0, got -2");
  EXPECT_EQ(load("train:\n  warmup_ratio: 1\nadapter:\n  dropout: 0.999\n").train.warmup_ratio, 1.0);
}

TEST(ConfigErrors, UnknownEnumValue) {
  EXPECT_EQ(load_error("adapter:\n  kind: lorra\n"),
            "configs/x.yaml:2: adapter.kind: unknown value 'lorra' (one of: lora, ia3, houlsby, pfeiffer, parallel, "
            "scaled_parallel, prefix, prompt, compacter, compacterpp, mam, none)");
  EXPECT_EQ(load_error("adapt:\n  variants: [mhr, mhr_z]\n"),
            "configs/x.yaml:2: adapt.variants[1]: unknown value 'mhr_z' (one of: mhr, mhr-z, mhr-mu, poly, poly-z, "
            "poly-mu, lora, ia3, adapter, compacter, prefix, mam, adamix, adamix-adapter, shared-lora, full, zero-shot)");
}

TEST(ConfigErrors, DuplicateKeys) {
  EXPECT_EQ(load_error("train:\n  steps: 1\n  steps: 2\n"), "configs/x.yaml:3: duplicate key 'steps' in 'train'");
  EXPECT_EQ(load_error("train:\n  steps: 1\ntrain:\n  bf16: true\n"), "configs/x.yaml:3: duplicate section 'train'");
}

TEST(ConfigErrors, SyntaxErrorHasLine) {
  const std::string e = load_error("train:\n  steps: 1\n  bad: [1, 2\n");
  EXPECT_EQ(e.rfind("configs/x.yaml:", 0), 0u) << e;
  EXPECT_NE(e.find("YAML syntax error"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);
  const std::string e2 = load_error("train:\n  steps: 1\n   bf16: x: y\n");
  EXPECT_EQ(e2.rfind("configs/x.yaml:3: YAML syntax error: ", 0), 0u) << e2;
}

TEST(ConfigErrors, MissingFile) {
  EXPECT_EQ(error_of([] { peft::load_config("configs/nope.yaml"); }), "configs/nope.yaml: cannot open file");
  EXPECT_EQ(error_of([] { peft::load_config("configs"); }), "configs: is a directory, expected a YAML file");
}

TEST(ConfigErrors, CrossKeyChecksPointAtTheBlamedKey) {
  EXPECT_EQ(load_error("routing:\n  method: poly\n  n_heads: 4\n"),
            "configs/x.yaml:3: routing.n_heads: must be 1 when routing.method is poly (use mhr for several heads), got 4");
  // A key left at its default has no line: the file alone.
  EXPECT_EQ(load_error("routing:\n  n_heads: 1\n", {"routing.method=poly", "routing.n_heads=2"}),
            "--set routing.n_heads=2: must be 1 when routing.method is poly (use mhr for several heads), got 2");
  EXPECT_EQ(load_error("adapter:\n  kind: ia3\nrouting:\n  method: mhr\n  n_heads: 4\n"),
            "configs/x.yaml:4: routing.method: mhr routes over LoRA skills and needs adapter.kind lora, got 'ia3'");
  EXPECT_EQ(load_error("data:\n  train_tasks: [a, b]\n  test_tasks: [c, b]\n"),
            "configs/x.yaml:3: data.test_tasks: task 'b' is also in data.train_tasks");
  EXPECT_EQ(load_error("adapt:\n  seeds: [1, 2, 1]\n"), "configs/x.yaml:2: adapt.seeds: '1' is listed twice");
  EXPECT_EQ(load_error("adapt:\n  seeds: []\n"), "configs/x.yaml:2: adapt.seeds: must list at least one seed");
  EXPECT_EQ(load_error("model:\n  dtype: float16\n"),
            "configs/x.yaml:2: model.dtype: float16 needs run.device cuda (use bfloat16 or float32 on cpu)");
  EXPECT_EQ(load_error("adamix:\n  enabled: true\n", {"adapter.kind=ia3"}),
            "configs/x.yaml:2: adamix.enabled: needs adapter.kind lora or pfeiffer, got 'ia3'");
  const std::string re = load_error("adapter:\n  target_modules: \"q|(k\"\n");
  EXPECT_EQ(re.rfind("configs/x.yaml:2: adapter.target_modules: invalid regular expression 'q|(k' (", 0), 0u) << re;
  // Valid combinations pass.
  const Config mhr = load("routing:\n  method: mhr\n  n_heads: 8\n");
  EXPECT_EQ(mhr.routing.n_heads, 8);
}

TEST(ConfigOverrides, TypedByTheSchema) {
  const Config c = load("train:\n  steps: 5\n", {"train.steps=7", "train.learning_rate=2e-4", "train.bf16=true",
                                                  "model.path= /a b/c", "run.out=runs/x"});
  EXPECT_EQ(c.train.steps, 7);  // --set wins over the file
  EXPECT_DOUBLE_EQ(c.train.learning_rate, 2e-4);
  EXPECT_TRUE(c.train.bf16);
  EXPECT_EQ(c.model.path, " /a b/c");  // strings verbatim
  EXPECT_EQ(c.run.out, "runs/x");
  EXPECT_EQ(load("", {"train.steps=3", "train.steps=4"}).train.steps, 4);  // last one wins
}

TEST(ConfigOverrides, Lists) {
  EXPECT_EQ(load("", {"adapt.seeds=[1,2]"}).adapt.seeds, (std::vector<int>{1, 2}));
  EXPECT_EQ(load("", {"adapt.seeds=1, 2,3"}).adapt.seeds, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(load("", {"adapt.seeds=7"}).adapt.seeds, (std::vector<int>{7}));
  EXPECT_EQ(load("", {"data.train_tasks=[a, b]"}).data.train_tasks, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(load("", {"data.train_tasks=a,b"}).data.train_tasks, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(load("data:\n  train_tasks: [a]\n", {"data.train_tasks=[]"}).data.train_tasks.empty());
  EXPECT_TRUE(load("data:\n  train_tasks: [a]\n", {"data.train_tasks="}).data.train_tasks.empty());
}

TEST(ConfigOverrides, Errors) {
  EXPECT_EQ(load_error("", {"train.steps=abc"}), "--set train.steps=abc: expected an integer");
  EXPECT_EQ(load_error("", {"train.learning_rate=-1"}), "--set train.learning_rate=-1: must be > 0");
  EXPECT_EQ(load_error("", {"adapter.kind=lorra"}),
            "--set adapter.kind=lorra: unknown value 'lorra' (one of: lora, ia3, houlsby, pfeiffer, parallel, "
            "scaled_parallel, prefix, prompt, compacter, compacterpp, mam, none)");
  EXPECT_EQ(load_error("", {"train.lerning_rate=1"}),
            "--set train.lerning_rate=1: unknown key 'lerning_rate' in 'train' (did you mean 'learning_rate'?)");
  EXPECT_EQ(load_error("", {"trian.steps=1"}), "--set trian.steps=1: unknown key 'trian' (did you mean 'train'?)");
  EXPECT_EQ(load_error("", {"train=1"}), "--set train=1: 'train' is a section; set one of its keys, e.g. train.steps");
  EXPECT_EQ(load_error("", {"train.steps"}), "--set train.steps: expected key.path=value");
  EXPECT_EQ(load_error("", {"adapt.seeds=1,x"}), "--set adapt.seeds=1,x: expected an integer");
  EXPECT_EQ(load_error("", {"adapt.seeds=[1,"}), "--set adapt.seeds=[1,: expected a list like [a, b] or a,b");
  EXPECT_EQ(error_of([] { peft::config_from_overrides({"train.steps=x"}); }), "--set train.steps=x: expected an integer");
  EXPECT_EQ(peft::config_from_overrides({"train.steps=9"}).train.steps, 9);
}

TEST(ConfigReference, CommittedFileMatchesTheTable) {
  // configs/reference.yaml is generated (`peft config --reference`); it must never drift from schema.cpp.
  const std::string committed = peft::read_file(fs::path(PEFT_SOURCE_DIR) / "configs/reference.yaml");
  EXPECT_EQ(committed, peft::reference_yaml())
      << "regenerate with: peft config --reference > configs/reference.yaml";
  // It loads back to the defaults, and documents each key.
  EXPECT_EQ(load(peft::reference_yaml()), peft::default_config());
  EXPECT_NE(peft::reference_yaml().find("  # Number of optimizer steps. [>= 1]\n  steps: 1000\n"), std::string::npos);
}

TEST(ConfigFiles, QuickstartLoads) {
  // Shipped configs must always be valid.
  for (const char* f : {"configs/reference.yaml", "configs/quickstart.yaml"})
    EXPECT_NO_THROW(peft::load_config((fs::path(PEFT_SOURCE_DIR) / f).string())) << f;
}
