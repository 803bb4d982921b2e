// FusedAdamW: the same updates as torch::optim::AdamW (weight decay, bias corrections, per-group options),
// the same state, so optimizer checkpoints load into either, and the fallback where it cannot fuse.
#include <gtest/gtest.h>

#include <filesystem>

#include "common/threads.h"
#include "train/adamw.h"

namespace peft::train {
namespace {

struct Params {
  torch::Tensor big, small, frozen_this_step;
};

Params make_params() {
  torch::manual_seed(21);
  return {torch::randn({300, 257}).requires_grad_(true),  // > 2^16 elements: split over the threads
          torch::randn({7, 3}).requires_grad_(true), torch::randn({5}).requires_grad_(true)};
}

std::vector<torch::optim::OptimizerParamGroup> groups(const Params& p) {
  auto first = std::make_unique<torch::optim::AdamWOptions>(3e-3);
  first->weight_decay(0.1).betas({0.8, 0.95}).eps(1e-6);
  auto second = std::make_unique<torch::optim::AdamWOptions>(1e-2);
  second->weight_decay(0.0);
  std::vector<torch::optim::OptimizerParamGroup> g;
  g.emplace_back(std::vector<torch::Tensor>{p.big, p.small}, std::move(first));
  g.emplace_back(std::vector<torch::Tensor>{p.frozen_this_step}, std::move(second));
  return g;
}

// Gradients for step `s` (the last parameter gets none on odd steps: AdamW leaves it alone then).
void set_grads(const Params& p, int s) {
  torch::manual_seed(100 + s);
  for (const auto& t : {p.big, p.small, p.frozen_this_step}) t.mutable_grad() = torch::randn(t.sizes());
  if (s % 2 == 1) p.frozen_this_step.mutable_grad() = torch::Tensor();
}

void expect_close(const Params& a, const Params& b, const std::string& where) {
  EXPECT_TRUE(torch::allclose(a.big, b.big, 1e-5, 1e-6)) << where;
  EXPECT_TRUE(torch::allclose(a.small, b.small, 1e-5, 1e-6)) << where;
  EXPECT_TRUE(torch::allclose(a.frozen_this_step, b.frozen_this_step, 1e-5, 1e-6)) << where;
}

TEST(FusedAdamW, UpdatesAsTorchAdamWOverSeveralStepsAndThreads) {
  for (int threads : {1, 2}) {
    set_cpu_threads(threads);
    Params fused = make_params(), plain = make_params();
    FusedAdamW fused_opt(groups(fused), torch::optim::AdamWOptions(1e-3));
    torch::optim::AdamW plain_opt(groups(plain), torch::optim::AdamWOptions(1e-3));
    for (int s = 0; s < 6; ++s) {
      set_grads(fused, s);
      set_grads(plain, s);
      fused_opt.step();
      plain_opt.step();
      expect_close(fused, plain, "step " + std::to_string(s) + ", " + std::to_string(threads) + " threads");
    }
    EXPECT_EQ(fused_opt.fused_updates(), 6 * 2 + 3);  // big and small every step, the last on even steps
    // The parameters moved (a check that could not pass with a no-op step).
    EXPECT_GT((fused.big - make_params().big).abs().max().item<float>(), 1e-3);
  }
  set_cpu_threads(1);
}

TEST(FusedAdamW, StateSavedByEitherClassResumesInTheOther) {
  const auto path = std::filesystem::temp_directory_path() / ("peft_adamw_" + std::to_string(::getpid()) + ".pt");
  Params a = make_params(), b = make_params();
  FusedAdamW fused(groups(a), torch::optim::AdamWOptions(1e-3));
  for (int s = 0; s < 3; ++s) {
    set_grads(a, s);
    fused.step();
  }
  torch::save(fused, path.string());
  {
    torch::NoGradGuard no_grad;
    b.big.copy_(a.big), b.small.copy_(a.small), b.frozen_this_step.copy_(a.frozen_this_step);
  }
  torch::optim::AdamW plain(groups(b), torch::optim::AdamWOptions(1e-3));
  torch::load(plain, path.string());
  for (int s = 3; s < 6; ++s) {
    set_grads(a, s);
    set_grads(b, s);
    fused.step();
    plain.step();
    expect_close(a, b, "resumed step " + std::to_string(s));
  }
  std::filesystem::remove(path);
}

TEST(FusedAdamW, AmsgradAndDoublesGoThroughTorchAdamW) {
  for (bool amsgrad : {true, false}) {
    torch::manual_seed(3);
    auto dtype = amsgrad ? torch::kFloat : torch::kDouble;
    auto x = torch::randn({4, 4}, dtype).requires_grad_(true), y = x.detach().clone().requires_grad_(true);
    FusedAdamW fused({x}, torch::optim::AdamWOptions(1e-2).amsgrad(amsgrad));
    torch::optim::AdamW plain({y}, torch::optim::AdamWOptions(1e-2).amsgrad(amsgrad));
    for (int s = 0; s < 3; ++s) {
      auto g = torch::randn({4, 4}, dtype);
      x.mutable_grad() = g.clone();
      y.mutable_grad() = g.clone();
      fused.step();
      plain.step();
    }
    EXPECT_TRUE(torch::equal(x, y)) << (amsgrad ? "amsgrad" : "double");
    EXPECT_EQ(fused.fused_updates(), 0);
  }
}

}  // namespace
}  // namespace peft::train
