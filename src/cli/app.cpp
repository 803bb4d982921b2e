// The command line: CLI11 parses, the config is loaded and validated, then one cmd_* function runs.
// No logic of its own beyond turning flags into config overrides.
#include "cli/app.h"
#include "train/backbone.h"

#include <CLI/CLI.hpp>
#include <c10/util/Exception.h>
#include <spdlog/spdlog.h>

#include <iostream>

#include "cli/commands.h"
#include "cli/logging.h"
#include "common/error.h"
#include "config/config.h"
#include "config/schema.h"

namespace peft::cli {
namespace {

// Flags shared by the subcommands that run something; each becomes a config override (see RunOptions).
struct Common {
  std::vector<std::string> sets;
  std::string out, device, log_level;
  int seed = -1, threads = -1;  // -1 = not given
  bool resume = false;
};

std::vector<std::string> choices_of(const std::string& key) { return config::find_option(key)->constraint.choices; }

void add_set(CLI::App* sub, Common& c) {
  sub->add_option("--set", c.sets,
                  "Override one config key, e.g. --set train.steps=100; repeatable, applied in order after the "
                  "file; list values as [a,b] or a,b.")
      ->type_name("KEY=VALUE")
      ->allow_extra_args(false);
}

void add_common(CLI::App* sub, Common& c, bool resume) {
  add_set(sub, c);
  sub->add_option("--out", c.out, "Run folder for logs, checkpoints and results (sets run.out).")->type_name("DIR");
  sub->add_option("--device", c.device, "Device to compute on (sets run.device).")
      ->check(CLI::IsMember(choices_of("run.device")));
  sub->add_option("--seed", c.seed, "Seed of every random generator (sets run.seed).")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--threads", c.threads, "CPU threads for LibTorch, 0 = all cores (sets run.threads).")
      ->check(CLI::NonNegativeNumber);
  sub->add_option("--log-level", c.log_level, "Lowest level of log messages shown and written (sets run.log_level).")
      ->check(CLI::IsMember(choices_of("run.log_level")));
  if (resume)
    sub->add_flag("--resume", c.resume,
                  "Continue from the last checkpoint in the run folder instead of starting over.");
}

std::string join(const std::vector<std::string>& items) {
  std::string s;
  for (size_t i = 0; i < items.size(); ++i) s += (i ? "," : "") + items[i];
  return s;
}

// Flags after --set, so a dedicated flag wins over a --set of the same key.
std::vector<std::string> overrides_of(const Common& c) {
  std::vector<std::string> o = c.sets;
  if (!c.out.empty()) o.push_back("run.out=" + c.out);
  if (!c.device.empty()) o.push_back("run.device=" + c.device);
  if (c.seed >= 0) o.push_back("run.seed=" + std::to_string(c.seed));
  if (c.threads >= 0) o.push_back("run.threads=" + std::to_string(c.threads));
  if (!c.log_level.empty()) o.push_back("run.log_level=" + c.log_level);
  return o;
}

// One line: CLI11 messages may span lines.
std::string one_line(std::string s) {
  for (char& ch : s)
    if (ch == '\n') ch = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

int dispatch(int argc, char** argv) {
  // Maintainer command with its own parser: pre-trains the embedded tiny T5 (scripts/make_backbone.sh).
  if (argc > 1 && std::string(argv[1]) == "backbone") return train::run_backbone_cli(argc - 1, argv + 1);
  CLI::App app{"peft: parameter-efficient multi-task learning (Poly, MHR, AdaMix, LoRA and the adapter family) on "
               "frozen T5/BERT backbones.",
               "peft"};
  app.require_subcommand(1);
  app.footer("Maintainers: `peft backbone --help` pre-trains the embedded tiny T5 (see docs/backbone.md).");
  app.set_version_flag("--version", "peft 0.1.0", "Print the version and exit.");
  Common common;
  RunOptions run_options;
  const char* config_help = "YAML config file; every key is listed in configs/reference.yaml.";

  CLI::App* pretrain = app.add_subcommand("pretrain", "Multi-task training of the adapter (and router) on data.train_tasks.");
  pretrain->add_option("CONFIG", run_options.config_path, config_help)->required();
  add_common(pretrain, common, true);

  CLI::App* adapt = app.add_subcommand("adapt", "Few-shot adaptation of a pre-trained adapter to each held-out task.");
  adapt->add_option("CONFIG", run_options.config_path, config_help)->required();
  std::string variant;
  std::vector<std::string> tasks;
  int shots = -1;
  std::vector<int> seeds;
  adapt->add_option("--variant", variant, "Run only this adaptation variant (sets adapt.variants; default: all listed there).")
      ->check(CLI::IsMember(choices_of("adapt.variants")));
  adapt->add_option("--tasks", tasks, "Held-out tasks to adapt to, comma-separated (sets adapt.tasks).")
      ->delimiter(',')
      ->allow_extra_args(false);
  adapt->add_option("--shots", shots, "Training examples per task (sets adapt.shots).")->check(CLI::PositiveNumber);
  adapt->add_option("--seeds", seeds, "Seeds, comma-separated; each task and variant runs once per seed (sets adapt.seeds).")
      ->delimiter(',')
      ->allow_extra_args(false)
      ->check(CLI::NonNegativeNumber);
  add_common(adapt, common, true);

  CLI::App* eval = app.add_subcommand("eval", "Score a pretrain run's inventory or adapter on the held-out examples of each training task.");
  eval->add_option("CONFIG", run_options.config_path, config_help)->required();
  add_common(eval, common, false);

  CLI::App* bench = app.add_subcommand("bench", "Time training steps of each method on random batches.");
  BenchOptions bench_options;
  std::string bench_model;
  bench->add_option("--config", run_options.config_path, "YAML config to start from (default: every key at its default).")
      ->type_name("FILE");
  bench->add_option("--model", bench_model, "What to time: t5-small-shape, t5-base-shape or bert-base-shape (random weights of that shape; BERT as a 2-label sequence classifier, without generation or prefix tuning) or a Hugging Face T5 or BERT checkpoint directory (sets model.path; default t5-small-shape).")
      ->type_name("DIR");
  bench->add_option("--methods", bench_options.methods, "Methods to time, comma-separated (default: every method).")
      ->delimiter(',')
      ->allow_extra_args(false);
  bench->add_option("--batch", bench_options.batch, "Examples per step.")->check(CLI::PositiveNumber)->capture_default_str();
  bench->add_option("--src-len", bench_options.src_len, "Encoder tokens per example.")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench->add_option("--tgt-len", bench_options.tgt_len, "Decoder tokens per example.")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench->add_option("--tasks", bench_options.tasks,
                    "Distinct tasks in each Poly/MHR batch (examples take tasks 0, 1, ..., tasks - 1 in turn; each "
                    "distinct task mixes its own adapter).")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  bench->add_option("--steps", bench_options.steps, "Timed steps per method.")->check(CLI::PositiveNumber)->capture_default_str();
  bench->add_option("--warmup", bench_options.warmup, "Untimed steps before timing starts.")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  bench->add_option("--gen-rounds", bench_options.gen_rounds,
                    "Timed greedy generations per method (batch of --batch, 32 new tokens each; 0 = the smaller of "
                    "--steps and 5).")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  bench->add_option("--json", bench_options.json, "Also write the results to this JSON file.")->type_name("FILE");
  add_common(bench, common, false);

  CLI::App* inspect = app.add_subcommand(
      "inspect", "Show the configs, tensor names, dtypes, shapes and parameter counts of a checkpoint.");
  std::string inspect_path;
  inspect->add_option("PATH", inspect_path, "A .safetensors file, or a directory with config.json / *.safetensors.")
      ->required();

  CLI::App* config_cmd = app.add_subcommand("config", "Validate a config and print it fully resolved (every key) as YAML.");
  bool reference = false;
  config_cmd->add_option("CONFIG", run_options.config_path, config_help);
  config_cmd->add_flag("--reference", reference,
                       "Print every key at its default with a one-line comment (this is configs/reference.yaml).");
  add_common(config_cmd, common, false);

  CLI::App* data = app.add_subcommand("data", "Inspect the configured task data.");
  data->require_subcommand(1);
  CLI::App* stats = data->add_subcommand("stats", "Per-task example counts and token-length percentiles.");
  stats->add_option("CONFIG", run_options.config_path, config_help)->required();
  add_common(stats, common, false);

  CLI::App* export_cmd = app.add_subcommand("export", "Export a saved adapter, optionally merged into the backbone.");
  ExportOptions export_options;
  export_cmd->add_option("ADAPTER_DIR", export_options.adapter_dir,
                         "Saved adapter directory (adapter_config.json + adapter_model.safetensors).")
      ->required();
  export_cmd->add_flag("--merge", export_options.merge,
                       "Fold the adapter into the backbone weights and write a plain Hugging Face checkpoint.");
  export_cmd->add_option("--out", export_options.out, "Directory to write the export to.")->type_name("DIR")->required();
  export_cmd->add_option("--log-level", common.log_level, "Lowest level of log messages shown.")
      ->check(CLI::IsMember(choices_of("run.log_level")));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::cerr << "peft: error: " << one_line(e.what()) << "\n";
    return kExitInput;
  }

  // Everything below works on a validated config.
  run_options.overrides = overrides_of(common);
  run_options.resume = common.resume;
  if (adapt->parsed()) {
    if (!variant.empty()) run_options.overrides.push_back("adapt.variants=" + variant);
    if (!tasks.empty()) run_options.overrides.push_back("adapt.tasks=" + join(tasks));
    if (shots >= 0) run_options.overrides.push_back("adapt.shots=" + std::to_string(shots));
    if (!seeds.empty()) {
      std::vector<std::string> s;
      for (int x : seeds) s.push_back(std::to_string(x));
      run_options.overrides.push_back("adapt.seeds=" + join(s));
    }
  }
  if (bench->parsed() && !bench_model.empty()) run_options.overrides.push_back("model.path=" + bench_model);

  auto load = [&]() {
    const Config config = run_options.config_path.empty() ? config_from_overrides(run_options.overrides)
                                                          : load_config(run_options.config_path, run_options.overrides);
    setup_logging(config.run.log_level);
    return config;
  };

  if (inspect->parsed()) return cmd_inspect(inspect_path, std::cout);
  if (config_cmd->parsed()) {
    if (reference) return cmd_config_reference(std::cout);
    if (run_options.config_path.empty())
      throw InputError("peft config: give a CONFIG file, or --reference for every key at its default");
    return cmd_config(load(), std::cout);
  }
  if (export_cmd->parsed()) {
    setup_logging(common.log_level.empty() ? "info" : common.log_level);
    return cmd_export(export_options);
  }
  if (bench->parsed()) return cmd_bench(load(), bench_options);
  if (stats->parsed()) return cmd_data_stats(load(), run_options);

  const Config config = load();
  prepare_run_dir(config);  // every run leaves config.resolved.yaml and log.txt in run.out
  if (pretrain->parsed()) return cmd_pretrain(config, run_options);
  if (adapt->parsed()) return cmd_adapt(config, run_options);
  if (eval->parsed()) return cmd_eval(config, run_options);
  throw std::logic_error("no subcommand dispatched");
}

}  // namespace

int run(int argc, char** argv) {
  int code;
  try {
    code = dispatch(argc, argv);
  } catch (const InputError& e) {
    std::cout.flush();
    std::cerr << "peft: error: " << one_line(e.what()) << "\n";
    return kExitInput;
  } catch (const c10::Error& e) {
    std::cout.flush();
    std::cerr << "peft: internal error: " << one_line(e.what_without_backtrace()) << "\n";
    return kExitInternal;
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "peft: internal error: " << one_line(e.what()) << "\n";
    return kExitInternal;
  }
  std::cout.flush();
  spdlog::shutdown();  // flush log.txt
  return code;
}

}  // namespace peft::cli
