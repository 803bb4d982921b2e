// mix_inventory (Poly/MHR's mixing of the skills into each task's adapter) and routing_weights (the router's
// sampling and normalisation) against their definitions in torch ops: values and gradients, over shapes that hit
// the vector loops and their tails, and (mixing) the same bits on 1 and 2 threads.
#include "routing/mix.h"

#include <gtest/gtest.h>

#include "common/threads.h"

namespace peft::routing {
namespace {

struct Shape {
  int64_t tasks, heads, skills, d_in, d_out, rank;
};

// a_t[u, j, q ai + i] = sum_s w[u,q,s] A[q,s,i,j]; b[u, j, q bo + o] = sum_s w[u,q,s] B[q,s,j,o].
std::pair<torch::Tensor, torch::Tensor> definition(const torch::Tensor& w, const torch::Tensor& a,
                                                   const torch::Tensor& b) {
  const int64_t U = w.size(0), r = a.size(3);
  const auto a_mixed = torch::einsum("uqs,qsij->ujqi", {w, a}).reshape({U, r, -1});
  const auto b_mixed = torch::einsum("uqs,qsjo->ujqo", {w, b}).reshape({U, r, -1});
  return {a_mixed, b_mixed};
}

struct Result {
  torch::Tensor a_t, b, grad_w, grad_a, grad_b;
};

Result run(bool kernel, const torch::Tensor& w_in, const torch::Tensor& a_in, const torch::Tensor& b_in,
           const torch::Tensor& weigh_a, const torch::Tensor& weigh_b) {
  const auto w = w_in.detach().clone().requires_grad_(true);
  const auto a = a_in.detach().clone().requires_grad_(true), b = b_in.detach().clone().requires_grad_(true);
  Result r;
  std::tie(r.a_t, r.b) = kernel ? mix_inventory(w, a, b) : definition(w, a, b);
  ((r.a_t * weigh_a).sum() + (r.b * weigh_b).sum()).backward();  // a loss that weighs every output differently
  r.grad_w = w.grad();
  r.grad_a = a.grad();
  r.grad_b = b.grad();
  return r;
}

TEST(MixInventory, MatchesTheDefinitionWithGradients) {
  const std::vector<Shape> shapes = {
      {4, 8, 8, 64, 48, 4},   // MHR: 8 heads of 8 and 6 (tails below one vector)
      {3, 1, 5, 40, 24, 3},   // Poly: one head, odd skills and rank
      {1, 2, 3, 36, 20, 16},  // one task; head slices 18 and 10
      {4, 4, 8, 64, 64, 16},  // large enough to split over the threads
  };
  for (const Shape& s : shapes) {
    SCOPED_TRACE("tasks " + std::to_string(s.tasks) + " heads " + std::to_string(s.heads) + " skills " +
                 std::to_string(s.skills) + " d_in " + std::to_string(s.d_in) + " d_out " + std::to_string(s.d_out) +
                 " rank " + std::to_string(s.rank));
    torch::manual_seed(7);
    const auto w = torch::rand({s.tasks, s.heads, s.skills});
    const auto a = torch::randn({s.heads, s.skills, s.d_in / s.heads, s.rank});
    const auto b = torch::randn({s.heads, s.skills, s.rank, s.d_out / s.heads});
    const auto weigh_a = torch::randn({s.tasks, s.rank, s.d_in}), weigh_b = torch::randn({s.tasks, s.rank, s.d_out});
    ASSERT_TRUE(mix_inventory_applies(w, a, b));
    const Result ref = run(false, w, a, b, weigh_a, weigh_b);
    set_cpu_threads(2);
    const Result two = run(true, w, a, b, weigh_a, weigh_b);
    set_cpu_threads(1);
    const Result one = run(true, w, a, b, weigh_a, weigh_b);
    EXPECT_TRUE(two.a_t.is_contiguous() && two.b.is_contiguous());
    EXPECT_TRUE(torch::allclose(two.a_t, ref.a_t, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(two.b, ref.b, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(two.grad_w, ref.grad_w, 1e-4, 1e-4));
    EXPECT_TRUE(torch::allclose(two.grad_a, ref.grad_a, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(two.grad_b, ref.grad_b, 1e-5, 1e-5));
    for (const auto& [x, y] : {std::pair{two.a_t, one.a_t}, {two.b, one.b}, {two.grad_w, one.grad_w},
                               {two.grad_a, one.grad_a}, {two.grad_b, one.grad_b}})
      EXPECT_TRUE(torch::equal(x, y)) << "the thread count changed the result";
  }
}

TEST(MixInventory, OneFactorUnusedAndFrozenInputs) {
  // Only A's mix reaches the loss: B's skills get zero gradients; frozen routing weights get none.
  torch::manual_seed(8);
  const auto w = torch::rand({2, 2, 3});
  const auto a = torch::randn({2, 3, 8, 4}).requires_grad_(true), b = torch::randn({2, 3, 4, 6}).requires_grad_(true);
  const auto [a_t, b_mixed] = mix_inventory(w, a, b);
  a_t.square().sum().backward();
  EXPECT_TRUE(b.grad().defined() ? torch::equal(b.grad(), torch::zeros_like(b)) : true);
  const auto ref = torch::einsum("uqs,qsij->ujqi", {w, a.detach().requires_grad_(false)});
  EXPECT_TRUE(torch::allclose(a_t, ref.reshape({2, 4, 16}), 1e-5, 1e-6));
  EXPECT_TRUE(a.grad().defined() && a.grad().abs().sum().item<float>() > 0);
  EXPECT_FALSE(mix_inventory_applies(w.to(torch::kDouble), a, b));
  EXPECT_FALSE(mix_inventory_applies(w, a, torch::randn({2, 3, 5, 6})));  // B's rank is not A's
}

// Router::weights in torch ops (its non-CPU path), for comparison.
torch::Tensor weights_definition(const torch::Tensor& z, const torch::Tensor& noise_in, double tau, bool hard) {
  torch::Tensor u;
  if (!noise_in.defined()) {
    u = torch::sigmoid(z);
  } else {
    const auto noise = noise_in.clamp(1e-6, 1.0 - 1e-6);
    u = torch::sigmoid((z + noise.log() - (1 - noise).log()) / tau);
    if (hard) u = (u > 0.5).to(u.scalar_type()) + u - u.detach();
  }
  return u / (u.sum(-1, /*keepdim=*/true) + 1e-12);
}

TEST(RoutingWeights, MatchesTheDefinitionWithGradientsInEveryMode) {
  torch::manual_seed(9);
  const auto z0 = torch::randn({4, 8, 8}) * 2, loss_weight = torch::randn({4, 8, 8});
  auto noise = torch::rand({4, 8, 8});
  noise[0][0][0] = 0.0f;  // clamped to 1e-6
  noise[0][0][1] = 1.0f;  // clamped to 1 - 1e-6
  struct Mode {
    torch::Tensor noise;
    double tau;
    bool hard;
    const char* name;
  };
  for (const Mode& m : {Mode{torch::Tensor(), 1.0, false, "sigmoid"}, Mode{noise, 0.5, false, "relaxed Bernoulli"},
                        Mode{noise, 1.0, true, "straight-through"}}) {
    SCOPED_TRACE(m.name);
    const auto z_ours = z0.clone().requires_grad_(true), z_ref = z0.clone().requires_grad_(true);
    ASSERT_TRUE(routing_weights_applies(z_ours, m.noise));
    const auto ours = routing_weights(z_ours, m.noise, m.tau, m.hard);
    const auto ref = weights_definition(z_ref, m.noise, m.tau, m.hard);
    EXPECT_TRUE(torch::allclose(ours, ref, 1e-5, 1e-6));
    EXPECT_TRUE(torch::allclose(ours.sum(-1), torch::ones({4, 8}), 1e-5, 0) || m.hard);
    (ours * loss_weight).sum().backward();
    (ref * loss_weight).sum().backward();
    EXPECT_TRUE(torch::allclose(z_ours.grad(), z_ref.grad(), 1e-4, 1e-5));
    EXPECT_GT(z_ours.grad().abs().sum().item<float>(), 0.0f);
  }
  EXPECT_FALSE(routing_weights_applies(z0, torch::rand({4, 8, 7})));
  EXPECT_FALSE(routing_weights_applies(z0.to(torch::kDouble), torch::Tensor()));
}

}  // namespace
}  // namespace peft::routing
