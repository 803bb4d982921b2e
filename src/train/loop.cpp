#include "train/loop.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <fstream>

#include "common/error.h"
#include "common/files.h"
#include "io/safetensors.h"
#include "train/progress.h"

namespace peft::train {

namespace fs = std::filesystem;

double linear_schedule(int64_t step, int64_t warmup, int64_t total) {
  if (step < warmup) return static_cast<double>(step) / static_cast<double>(std::max<int64_t>(1, warmup));
  return std::max(0.0, static_cast<double>(total - step) / static_cast<double>(std::max<int64_t>(1, total - warmup)));
}

void append_jsonl(const fs::path& path, const nlohmann::json& record) {
  std::ofstream out(path, std::ios::app);
  if (!out) throw std::runtime_error(path.string() + ": cannot open for appending");
  out << record.dump() << '\n';
  out.flush();
}

std::string cpu_rng_state() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  const auto state = gen.get_state();
  static const char* hex = "0123456789abcdef";
  std::string out;
  const auto* p = state.data_ptr<uint8_t>();
  for (int64_t i = 0; i < state.numel(); ++i) {
    out.push_back(hex[p[i] >> 4]);
    out.push_back(hex[p[i] & 15]);
  }
  return out;
}

void set_cpu_rng_state(const std::string& hexstate) {
  auto state = torch::empty({static_cast<int64_t>(hexstate.size() / 2)}, torch::kUInt8);
  auto* p = state.data_ptr<uint8_t>();
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i < hexstate.size() / 2; ++i) p[i] = static_cast<uint8_t>(nibble(hexstate[2 * i]) * 16 + nibble(hexstate[2 * i + 1]));
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

TrainLoop::TrainLoop(LoopOptions options, std::vector<ParamGroup> groups)
    : options_(std::move(options)), groups_(std::move(groups)) {
  warmup_steps_ = static_cast<int64_t>(std::ceil(options_.warmup_ratio * options_.steps));
  std::vector<torch::optim::OptimizerParamGroup> param_groups;
  for (const auto& g : groups_) {
    std::vector<torch::Tensor> params;
    for (const auto& [name, p] : g.params) params.push_back(p);
    auto opts = std::make_unique<torch::optim::AdamWOptions>(g.learning_rate);
    opts->weight_decay(g.weight_decay);
    param_groups.emplace_back(std::move(params), std::move(opts));
  }
  optimizer_ = std::make_unique<FusedAdamW>(std::move(param_groups), torch::optim::AdamWOptions(1e-3));
}

void TrainLoop::save_checkpoint(int64_t step, const ResumableState& state) {
  // Write everything into checkpoint.tmp/, then swap directories: a crash leaves the previous checkpoint.
  const fs::path final_dir = options_.out_dir / "checkpoint";
  const fs::path tmp_dir = options_.out_dir / "checkpoint.tmp";
  const fs::path old_dir = options_.out_dir / "checkpoint.old";
  fs::remove_all(tmp_dir);
  fs::create_directories(tmp_dir);
  io::TensorMap tensors;
  for (const auto& g : groups_)
    for (const auto& [name, p] : g.params) tensors[name] = p.detach().cpu();
  io::write_safetensors(tmp_dir / "trainable.safetensors", tensors);
  torch::save(*optimizer_, (tmp_dir / "optimizer.pt").string());
  nlohmann::json meta = {{"format_version", 1}, {"step", step}, {"rng_cpu", cpu_rng_state()}, {"caller", state.save()}};
  write_file_atomic(tmp_dir / "state.json", meta.dump(1));
  fs::remove_all(old_dir);
  if (fs::exists(final_dir)) fs::rename(final_dir, old_dir);
  fs::rename(tmp_dir, final_dir);
  fs::remove_all(old_dir);
}

int64_t TrainLoop::load_checkpoint(const ResumableState& state) {
  const fs::path dir = options_.out_dir / "checkpoint";
  if (!fs::exists(dir / "state.json")) {
    spdlog::info("no checkpoint in {}: starting from step 0", dir.string());
    return 0;
  }
  const auto meta = nlohmann::json::parse(read_file(dir / "state.json"));
  if (meta.value("format_version", 0) != 1)
    fail_input(where((dir / "state.json").string()) + "unsupported format_version " + meta["format_version"].dump());
  const auto tensors = io::read_safetensors(dir / "trainable.safetensors", std::nullopt);
  {
    torch::NoGradGuard no_grad;
    for (auto& g : groups_)
      for (auto& [name, p] : g.params) {
        auto it = tensors.find(name);
        if (it == tensors.end())
          fail_input(where((dir / "trainable.safetensors").string()) + "missing tensor '" + name + "'");
        if (it->second.sizes() != p.sizes())
          fail_input(where((dir / "trainable.safetensors").string()) + "wrong shape for '" + name + "'");
        p.copy_(it->second);
      }
  }
  torch::load(*optimizer_, (dir / "optimizer.pt").string());
  set_cpu_rng_state(meta.at("rng_cpu").get<std::string>());
  state.load(meta.at("caller"));
  const int64_t step = meta.at("step").get<int64_t>();
  spdlog::info("resumed from {} at step {}", dir.string(), step);
  return step;
}

LoopResult TrainLoop::run(const std::function<MicroStep(int64_t, int64_t)>& step_fn,
                          const std::function<nlohmann::json(int64_t)>& eval_fn, ResumableState state) {
  fs::create_directories(options_.out_dir);
  const int64_t start = options_.resume ? load_checkpoint(state) : 0;
  const fs::path metrics_path = options_.out_dir / "metrics.jsonl";
  std::vector<torch::Tensor> all_params;
  for (const auto& g : groups_)
    for (const auto& [name, p] : g.params) all_params.push_back(p);

  LoopResult result;
  Progress progress(options_.label, options_.steps, start, options_.log_every);
  double window_loss = 0;
  int64_t window_steps = 0, window_tokens = 0;
  auto window_t0 = std::chrono::steady_clock::now();
  for (int64_t step = start; step < options_.steps; ++step) {
    const double factor = linear_schedule(step, warmup_steps_, options_.steps);
    for (size_t i = 0; i < groups_.size(); ++i)
      static_cast<torch::optim::AdamWOptions&>(optimizer_->param_groups()[i].options())
          .lr(groups_[i].learning_rate * factor);
    // set_to_none (PyTorch 2's default; 1.13's zero_grad() writes zeros): a parameter the step does not reach,
    // such as an AdaMix copy nobody drew, keeps an undefined grad and AdamW leaves it alone (no decay, no momentum).
    for (auto& p : all_params) p.mutable_grad() = torch::Tensor();
    double step_loss = 0;
    int64_t step_tokens = 0;
    for (int64_t micro = 0; micro < options_.grad_accumulation; ++micro) {
      MicroStep m = step_fn(step, micro);
      (m.loss / static_cast<double>(options_.grad_accumulation)).backward();
      step_loss += m.loss.item<double>() / static_cast<double>(options_.grad_accumulation);
      step_tokens += m.tokens;
    }
    if (!std::isfinite(step_loss)) throw std::runtime_error("training loss is not finite at step " + std::to_string(step));
    if (options_.max_grad_norm > 0) torch::nn::utils::clip_grad_norm_(all_params, options_.max_grad_norm);
    optimizer_->step();
    const int64_t done = step + 1;
    window_loss += step_loss;
    ++window_steps;
    window_tokens += step_tokens;
    progress.update(done, step_loss, step_tokens);
    if (done % std::max<int64_t>(1, options_.log_every) == 0 || done == options_.steps) {
      const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_t0).count();
      result.final_train_loss = window_loss / window_steps;
      append_jsonl(metrics_path, {{"step", done},
                                  {"train_loss", result.final_train_loss},
                                  {"lr", groups_.empty() ? 0.0 : groups_[0].learning_rate * factor},
                                  {"tokens_per_s", secs > 0 ? window_tokens / secs : 0.0}});
      window_loss = 0;
      window_steps = window_tokens = 0;
      window_t0 = std::chrono::steady_clock::now();
    }
    const bool last = done == options_.steps;
    if ((options_.eval_every > 0 && done % options_.eval_every == 0) || last) {
      nlohmann::json ev = eval_fn(done);
      if (!ev.empty()) {
        result.last_eval = ev;
        append_jsonl(metrics_path, {{"step", done}, {"eval", ev}});
      }
    }
    const bool stop = options_.stop_after > 0 && done == options_.stop_after && !last;
    if ((options_.save_every > 0 && done % options_.save_every == 0) || last || stop) save_checkpoint(done, state);
    if (stop) {
      progress.finish();
      result.steps_done = done;
      result.seconds = progress.elapsed_seconds();
      spdlog::info("stopped after step {} as asked; continue with --resume", done);
      return result;
    }
  }
  progress.finish();
  result.finished = true;
  result.steps_done = options_.steps;
  result.seconds = progress.elapsed_seconds();
  return result;
}

}  // namespace peft::train
