#include "train/workspace.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "common/error.h"
#include "common/threads.h"
#include "common/torch_compat.h"
#include "data/codec.h"
#include "data/options.h"
#include "io/checkpoint.h"
#include "models/t5/load.h"

namespace peft::train {

namespace fs = std::filesystem;

// The embedded default backbone (built by scripts/make_backbone.sh), relative to the working directory.
static const char* kDefaultModelDir = "models/peft-tiny-t5";

torch::Device setup_runtime(const Config& config) {
  const int threads = config.run.threads > 0 ? config.run.threads
                                             : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  set_cpu_threads(threads);
  torch::manual_seed(static_cast<uint64_t>(config.run.seed));
  if (config.run.device == "cuda") {
    if (!compat::cuda_available()) fail_input("run.device: 'cuda' requested but no CUDA device is available");
    return torch::Device(torch::kCUDA);
  }
  return torch::Device(torch::kCPU);
}

fs::path model_dir(const Config& config) {
  if (!config.model.path.empty()) return config.model.path;
  if (!fs::exists(fs::path(kDefaultModelDir) / "config.json"))
    fail_input(std::string("model.path: empty, and the embedded default model '") + kDefaultModelDir +
               "' is not built (run scripts/make_backbone.sh, or set model.path to a Hugging Face checkpoint)");
  return kDefaultModelDir;
}

fs::path tokenizer_dir(const Config& config) {
  return config.tokenizer.path.empty() ? model_dir(config) : fs::path(config.tokenizer.path);
}

T5ForConditionalGeneration load_frozen_t5(const Config& config, torch::Device device) {
  const auto dir = model_dir(config);
  const auto checkpoint = io::read_hf_checkpoint(dir);
  auto model = load_t5(checkpoint);
  for (auto& p : model->parameters()) p.set_requires_grad(false);
  model->to(device);
  return model;
}

data::PromptOptions prompt_options(const Config& config) { return data::prompt_options_from(config.data); }

eval::EvalOptions eval_options(const Config& config, torch::Device device) {
  eval::EvalOptions o;
  o.batch_size = config.eval.batch_size;
  o.max_new_tokens = config.eval.max_new_tokens;
  o.device = device;
  return o;
}

TaskData load_task_data(const Config& config, const Tokenizer& tokenizer) {
  TaskData out;
  auto split_of = [&](const std::string& dir, const std::string& split, const std::vector<std::string>& names,
                      const std::string& key) {
    data::TaskSuite suite = data::load_suite(config.data.format, dir);
    suite.tasks.erase(std::remove_if(suite.tasks.begin(), suite.tasks.end(),
                                     [&](const data::Task& t) { return t.split != split; }),
                      suite.tasks.end());
    data::select_tasks(suite, names, key);
    return suite;
  };
  auto train = split_of(config.data.train_dir, "train", config.data.train_tasks, "data.train_tasks");
  auto test = split_of(config.data.test_dir, "test", config.data.test_tasks, "data.test_tasks");
  const auto seed = static_cast<uint64_t>(config.run.seed);
  out.suite.root = config.data.train_dir;
  for (auto& t : train.tasks) {
    data::cap_examples(t, static_cast<size_t>(config.data.max_train_examples_per_task), seed);
    // A few examples of each training task never trained on: evaluation during pre-training.
    data::hold_out_examples(t, static_cast<size_t>(config.data.eval_examples_per_task), seed);
    out.train_tasks.push_back(out.suite.tasks.size());
    out.suite.tasks.push_back(std::move(t));
  }
  for (auto& t : test.tasks) {
    out.test_tasks.push_back(out.suite.tasks.size());
    out.suite.tasks.push_back(std::move(t));
  }
  const auto codec = data::codec_from(tokenizer);
  data::CacheStats stats;
  out.encoded = data::encode_suite(out.suite, codec, prompt_options(config), config.data.cache_dir, &stats);
  spdlog::info("tasks: {} training, {} held-out; tokenised cache hits {}, misses {}", out.train_tasks.size(),
               out.test_tasks.size(), stats.hits, stats.misses);
  return out;
}

}  // namespace peft::train
