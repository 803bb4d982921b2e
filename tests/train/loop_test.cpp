#include <gtest/gtest.h>

#include <filesystem>
#include <random>
#include <sstream>

#include "routing/poly.h"
#include "train/loop.h"

using namespace peft;
namespace fs = std::filesystem;

namespace {

struct ToyImpl : torch::nn::Module {
  ToyImpl() { q = register_module("q", AdaptableLinear(8, 8, false)); }
  AdaptableLinear q{nullptr};
};
TORCH_MODULE(Toy);

// A toy task: regress a fixed random map; data drawn from a resumable generator.
struct ToyRun {
  Toy toy;
  std::mt19937_64 data_rng{7};
  torch::Tensor target_map;
  std::vector<std::pair<std::string, routing::PolyLoRA>> polys;

  ToyRun() {
    torch::manual_seed(0);
    toy = Toy();
    for (auto& p : toy->parameters()) p.set_requires_grad(false);
    routing::PolyOptions o;
    o.n_tasks = 3;
    o.n_skills = 4;
    o.n_heads = 2;
    o.rank = 2;
    polys = routing::attach_poly(*toy, "q", o);
    // Reachable by the adapter: the frozen map plus a rank-2 change.
    target_map = toy->q->weight.t().detach() + torch::randn({8, 2}).matmul(torch::randn({2, 8}));
    toy->train();
  }

  std::vector<train::ParamGroup> groups() {
    train::ParamGroup inv{"inventory", {}, 1e-2, 0.01}, route{"routing", {}, 0.1, 0.0};
    for (auto& kv : toy->named_parameters())
      if (kv.value().requires_grad())
        (kv.key().find("module_logits") != std::string::npos ? route : inv).params.emplace_back(kv.key(), kv.value());
    return {inv, route};
  }

  train::MicroStep step(int64_t) {
    const auto seed = static_cast<uint64_t>(data_rng());
    auto gen = torch::make_generator<at::CPUGeneratorImpl>(seed);
    auto x = torch::randn({4, 8}, gen);
    ForwardContext ctx;
    ctx.training = true;
    ctx.task_ids = torch::tensor({0, 1, 2, 1}, torch::kLong);
    auto y = toy->q->forward(x, ctx);
    return {(y - x.matmul(target_map)).pow(2).mean(), 4};
  }

  train::ResumableState state() {
    return {[this] {
              std::ostringstream s;
              s << data_rng;
              return nlohmann::json{{"data_rng", s.str()}};
            },
            [this](const nlohmann::json& j) {
              std::istringstream s(j.at("data_rng").get<std::string>());
              s >> data_rng;
            }};
  }
};

train::LoopOptions options(const fs::path& out, bool resume) {
  train::LoopOptions o;
  o.steps = 12;
  o.grad_accumulation = 2;
  o.save_every = 5;
  o.log_every = 3;
  o.max_grad_norm = 0.5;
  o.out_dir = out;
  o.resume = resume;
  return o;
}

}  // namespace

TEST(Schedule, LinearWarmupThenDecayAsHuggingFace) {
  EXPECT_DOUBLE_EQ(train::linear_schedule(0, 10, 100), 0.0);
  EXPECT_DOUBLE_EQ(train::linear_schedule(5, 10, 100), 0.5);
  EXPECT_DOUBLE_EQ(train::linear_schedule(10, 10, 100), 1.0);
  EXPECT_DOUBLE_EQ(train::linear_schedule(55, 10, 100), 0.5);
  EXPECT_DOUBLE_EQ(train::linear_schedule(100, 10, 100), 0.0);
  EXPECT_DOUBLE_EQ(train::linear_schedule(0, 0, 100), 1.0);
}

TEST(TrainLoop, ResumeAfterInterruptionIsBitwiseIdentical) {
  const fs::path base = fs::temp_directory_path() / "peft_loop_test";
  fs::remove_all(base);
  auto no_eval = [](int64_t) { return nlohmann::json(); };

  ToyRun full;
  train::TrainLoop loop_full(options(base / "full", false), full.groups());
  auto result = loop_full.run([&](int64_t s, int64_t) { return full.step(s); }, no_eval, full.state());
  EXPECT_EQ(result.steps_done, 12);

  // Interrupted: dies during step 7 (after the checkpoint at step 5), then a new process resumes.
  {
    ToyRun first;
    train::TrainLoop loop(options(base / "cut", false), first.groups());
    EXPECT_THROW(loop.run([&](int64_t s, int64_t) {
                            if (s == 7) throw std::runtime_error("killed");
                            return first.step(s);
                          },
                          no_eval, first.state()),
                 std::runtime_error);
  }
  torch::manual_seed(12345);  // the new process's RNG differs until the checkpoint restores it
  ToyRun second;
  train::TrainLoop loop(options(base / "cut", true), second.groups());
  loop.run([&](int64_t s, int64_t) { return second.step(s); }, no_eval, second.state());

  auto a = full.toy->named_parameters(), b = second.toy->named_parameters();
  int compared = 0;
  for (auto& kv : a) {
    EXPECT_TRUE(torch::equal(kv.value(), b[kv.key()])) << kv.key();
    ++compared;
  }
  EXPECT_EQ(compared, 4);  // weight, lora_a, lora_b, module_logits
  // Training moved the adapter away from its init.
  EXPECT_GT(full.polys[0].second->lora_b.abs().sum().item<double>(), 0);
  EXPECT_TRUE(fs::exists(base / "cut" / "checkpoint" / "state.json"));
  EXPECT_FALSE(fs::exists(base / "cut" / "checkpoint.tmp"));
  fs::remove_all(base);
}

TEST(TrainLoop, LossFallsOnToyRegression) {
  const fs::path base = fs::temp_directory_path() / "peft_loop_test_loss";
  fs::remove_all(base);
  ToyRun run;
  auto opts = options(base, false);
  opts.steps = 800;
  opts.grad_accumulation = 1;
  opts.warmup_ratio = 0;
  opts.max_grad_norm = 0;
  opts.save_every = 0;
  opts.log_every = 100;
  double first = -1, last = 0;
  train::TrainLoop loop(opts, run.groups());
  loop.run(
      [&](int64_t s, int64_t) {
        auto m = run.step(s);
        if (first < 0) first = m.loss.item<double>();
        if (s >= opts.steps - 100) last += m.loss.item<double>() / 100;  // mean of the last 100 steps
        return m;
      },
      [](int64_t) { return nlohmann::json(); }, run.state());
  EXPECT_LT(last, 0.1 * first);
  fs::remove_all(base);
}
