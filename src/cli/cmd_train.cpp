// pretrain, data stats and export: thin wrappers over src/train, src/data and src/adapters.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <iostream>
#include <set>

#include "adapters/checkpoint.h"
#include "cli/commands.h"
#include "common/error.h"
#include "data/codec.h"
#include "data/stats.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/bert/model.h"
#include "models/t5/load.h"
#include "train/adapt.h"
#include "train/bench.h"
#include "train/evaluate_run.h"
#include "train/inventory.h"
#include "train/pretrain.h"
#include "train/workspace.h"

namespace peft::cli {

namespace fs = std::filesystem;

int cmd_pretrain(const Config& config, const RunOptions& options) {
  const auto s = train::run_pretrain(config, options.resume);
  spdlog::info("pretrain done in {:.0f} s: train loss {:.4f} -> {:.4f}; results in {}", s.seconds, s.first_train_loss,
               s.final_train_loss, config.run.out);
  return 0;
}

int cmd_adapt(const Config& config, const RunOptions& options) {
  const auto s = train::run_adapt(config, options.resume);
  spdlog::info("adapt done in {:.0f} s: {} cells run, {} already done; results in {}", s.seconds, s.cells_run,
               s.cells_skipped, config.run.out);
  return 0;
}

int cmd_bench(const Config& config, const BenchOptions& options) {
  train::BenchSettings s;
  s.model = config.model.path.empty() ? "t5-small-shape" : config.model.path;
  s.methods = options.methods;
  s.batch = options.batch;
  s.src_len = options.src_len;
  s.tgt_len = options.tgt_len;
  s.n_tasks = options.tasks;
  s.steps = options.steps;
  s.warmup = options.warmup;
  s.gen_rounds = options.gen_rounds;
  s.threads = config.run.threads;
  s.device = config.run.device;
  s.json = options.json;
  s.seed = static_cast<uint64_t>(config.run.seed);
  train::run_bench(s, std::cout);
  return 0;
}

int cmd_eval(const Config& config, const RunOptions&) {
  train::run_eval(config);
  return 0;
}

int cmd_data_stats(const Config& config, const RunOptions&) {
  const auto tokenizer = load_tokenizer(train::tokenizer_dir(config));
  const auto tasks = train::load_task_data(config, *tokenizer);
  std::cout << data::mixture_stats(tasks.suite, tasks.encoded, config.data.sampling, config.data.temperature);
  return 0;
}

int cmd_export(const ExportOptions& options) {
  if (!options.merge)
    fail_input("export: only --merge is supported (it writes a plain Hugging Face checkpoint with the adapter folded in)");
  if (options.out.empty()) fail_input("export: --out DIR is required");
  const fs::path adapter_dir = options.adapter_dir;
  const auto adapter_config = io::read_json(adapter_dir / "adapter_config.json");
  const std::string base = adapter_config.value("base_model_name_or_path", "");
  if (base.empty() || !fs::exists(fs::path(base) / "config.json"))
    fail_input(where((adapter_dir / "adapter_config.json").string()) +
               "base_model_name_or_path must name a local checkpoint directory, got '" + base + "'");
  const auto checkpoint = io::read_hf_checkpoint(base);
  const std::string model_type = checkpoint.config.value("model_type", "");
  std::shared_ptr<torch::nn::Module> model;
  adapters::ModelInfo info;
  if (model_type == "t5") {
    auto t5 = load_t5(checkpoint);
    info = train::model_info(*t5);
    model = t5.ptr();
  } else if (model_type == "bert") {
    auto bert = bert::load_bert(checkpoint);
    const auto& c = bert->config;
    info.family = "bert";
    info.d_model = c.hidden_size;
    info.num_heads = c.num_attention_heads;
    info.d_kv = c.hidden_size / c.num_attention_heads;
    model = bert;
  } else {
    fail_input(where((fs::path(base) / "config.json").string()) + "unsupported model_type '" + model_type + "'");
  }
  auto set = adapters::load_adapter(adapter_dir, *model, info);
  set.merge();  // InputError for kinds that cannot merge
  io::TensorMap tensors;
  std::set<const void*> adapter_tensors;
  for (const auto& [name, p] : set.named_trainable_parameters(*model)) adapter_tensors.insert(p.unsafeGetTensorImpl());
  for (const auto& kv : model->named_parameters())
    if (!adapter_tensors.count(kv.value().unsafeGetTensorImpl())) tensors[kv.key()] = kv.value().detach().contiguous();
  const fs::path out = options.out;
  fs::create_directories(out);
  io::write_safetensors(out / "model.safetensors", tensors);
  for (const char* f : {"config.json", "spiece.model", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json",
                        "tokenizer.json", "generation_config.json"})
    if (fs::exists(fs::path(base) / f)) fs::copy_file(fs::path(base) / f, out / f, fs::copy_options::overwrite_existing);
  std::cout << "wrote " << (out / "model.safetensors").string() << ": " << tensors.size() << " tensors, "
            << set.adapters.size() << " adapters merged\n";
  return 0;
}

}  // namespace peft::cli
