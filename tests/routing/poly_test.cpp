// Identities of methods.md §9 for Poly / MHR on a toy model with two adaptable linears.
#include <gtest/gtest.h>

#include "common/error.h"
#include "routing/poly.h"

using namespace peft;
using namespace peft::routing;

namespace {

struct ToyImpl : torch::nn::Module {
  ToyImpl(int64_t d_in, int64_t d_out) {
    q = register_module("q", AdaptableLinear(d_in, d_out, false));
    o = register_module("o", AdaptableLinear(d_out, d_in, true));
  }
  torch::Tensor forward(const torch::Tensor& x, const ForwardContext& ctx) { return o->forward(q->forward(x, ctx), ctx); }
  AdaptableLinear q{nullptr}, o{nullptr};
};
TORCH_MODULE(Toy);

ForwardContext context(std::vector<int64_t> tasks, bool training = false) {
  ForwardContext ctx;
  ctx.task_ids = torch::tensor(tasks, torch::kLong);
  ctx.training = training;
  return ctx;
}

void randomize_b(PolyLoRA& p) {
  torch::NoGradGuard g;
  p->lora_b.normal_(0, 0.1);
}

PolyOptions options(int64_t tasks, int64_t skills, int64_t heads, int64_t rank = 4) {
  PolyOptions o;
  o.n_tasks = tasks;
  o.n_skills = skills;
  o.n_heads = heads;
  o.rank = rank;
  return o;
}

}  // namespace

TEST(Poly, FreshInventoryIsExactNoOp) {
  torch::manual_seed(0);
  Toy toy(16, 8);
  auto x = torch::randn({3, 5, 16});
  auto ctx = context({0, 1, 2});
  auto base = toy->forward(x, ctx);
  attach_poly(*toy, ".*", options(3, 4, 2));
  toy->train();
  EXPECT_TRUE(torch::equal(toy->forward(x, context({0, 1, 2}, true)), base));
  toy->eval();
  EXPECT_TRUE(torch::equal(toy->forward(x, context({0, 1, 2})), base));
}

TEST(Poly, OneSkillEqualsLoRA) {
  torch::manual_seed(1);
  Toy toy(16, 8);
  auto polys = attach_poly(*toy, "q", options(2, 1, 1, 4));
  auto& p = polys.at(0).second;
  randomize_b(p);
  auto x = torch::randn({2, 5, 16});
  // LoRA(A1, B1) with scale 1/r: y = x W^T + x A B / r.
  auto A = p->lora_a[0][0], B = p->lora_b[0][0];
  auto expected = toy->q->base_forward(x) + torch::matmul(torch::matmul(x, A), B) / 4.0;
  for (bool training : {false, true}) {  // S = 1: weights are exactly 1 whatever the sample
    toy->train(training);
    auto got = toy->q->forward(x, context({0, 1}, training));
    EXPECT_TRUE(torch::allclose(got, expected, 1e-6, 1e-6));
  }
}

TEST(Poly, MhrWithEqualHeadLogitsEqualsPoly) {
  torch::manual_seed(2);
  const int64_t h = 4, S = 3, r = 2, d_in = 16, d_out = 8;
  Toy mhr_toy(d_in, d_out), poly_toy(d_in, d_out);
  {
    torch::NoGradGuard g;
    poly_toy->q->weight.copy_(mhr_toy->q->weight);
  }
  auto mhr = attach_poly(*mhr_toy, "q", options(2, S, h, r)).at(0).second;
  auto poly = attach_poly(*poly_toy, "q", options(2, S, 1, r)).at(0).second;
  randomize_b(mhr);
  {
    torch::NoGradGuard g;
    auto z = torch::randn({2, S});
    mhr->router->module_logits.copy_(z.repeat({1, h}));
    poly->router->module_logits.copy_(z);
    // Poly's full A[s] stacks the heads' input blocks; its B[s] puts the heads' output blocks side by side.
    poly->lora_a.copy_(mhr->lora_a.permute({1, 0, 2, 3}).reshape({1, S, d_in, r}));
    poly->lora_b.copy_(mhr->lora_b.permute({1, 2, 0, 3}).reshape({1, S, r, d_out}));
  }
  auto x = torch::randn({2, 3, d_in});
  mhr_toy->eval();
  poly_toy->eval();
  EXPECT_TRUE(torch::allclose(mhr_toy->q->forward(x, context({1, 0})), poly_toy->q->forward(x, context({1, 0})),
                              1e-5, 1e-6));
}

TEST(Poly, MhrOneHeadIsPoly) {
  // h = 1 takes the same code path by construction; check its shapes and the routing row layout.
  Toy toy(16, 8);
  auto p = attach_poly(*toy, "q", options(5, 3, 1)).at(0).second;
  EXPECT_EQ(p->lora_a.sizes(), (std::vector<int64_t>{1, 3, 16, 4}));
  EXPECT_EQ(p->router->module_logits.sizes(), (std::vector<int64_t>{5, 3}));
}

TEST(Poly, EvaluationRoutingIsDeterministicAndNormalised) {
  torch::manual_seed(3);
  Router router(4, 2, 5, Sampling::kRelaxedBernoulli, 1.0);
  auto ids = torch::tensor({0, 3, 3}, torch::kLong);
  auto w1 = router->weights(ids, false), w2 = router->weights(ids, false);
  EXPECT_TRUE(torch::equal(w1, w2));
  EXPECT_TRUE(torch::allclose(w1.sum(-1), torch::ones({3, 2})));
  auto s1 = router->weights(ids, true), s2 = router->weights(ids, true);
  EXPECT_FALSE(torch::equal(s1, s2));  // training samples
  EXPECT_TRUE(torch::allclose(s1.sum(-1), torch::ones({3, 2}), 1e-5, 1e-5));
}

TEST(Poly, GradientsReachRoutingLogitsAndInventory) {
  torch::manual_seed(4);
  Toy toy(16, 8);
  for (auto& p : toy->parameters()) p.set_requires_grad(false);
  auto p = attach_poly(*toy, "q", options(3, 4, 2)).at(0).second;
  randomize_b(p);
  toy->train();
  auto loss = toy->forward(torch::randn({2, 3, 16}), context({0, 2}, true)).pow(2).sum();
  loss.backward();
  auto g = p->router->module_logits.grad();
  ASSERT_TRUE(g.defined());
  EXPECT_GT(g[0].abs().sum().item<double>(), 0);
  EXPECT_GT(g[2].abs().sum().item<double>(), 0);
  EXPECT_EQ(g[1].abs().sum().item<double>(), 0);  // task 1 is not in the batch
  EXPECT_GT(p->lora_a.grad().abs().sum().item<double>(), 0);
  EXPECT_FALSE(toy->q->weight.grad().defined());
}

TEST(Poly, MixedTaskBatchRowsEqualRowsAlone) {
  torch::manual_seed(5);
  Toy toy(16, 8);
  for (auto& [name, p] : attach_poly(*toy, ".*", options(4, 3, 2))) randomize_b(p);
  toy->eval();
  auto x = torch::randn({4, 3, 16});
  std::vector<int64_t> tasks = {2, 0, 2, 3};
  auto batch = toy->forward(x, context(tasks));
  for (int64_t i = 0; i < 4; ++i) {
    auto alone = toy->forward(x.slice(0, i, i + 1), context({tasks[i]}));
    EXPECT_TRUE(torch::allclose(batch.slice(0, i, i + 1), alone, 1e-5, 1e-6)) << "row " << i;
  }
}

TEST(Poly, UniformRoutingEqualsMeanLoRA) {
  torch::manual_seed(6);
  const int64_t h = 2, S = 4, r = 3;
  Toy toy(16, 8);
  auto p = attach_poly(*toy, "q", options(1, S, h, r)).at(0).second;
  randomize_b(p);
  auto [a, b] = p->mix(torch::full({1, h, S}, 1.0 / S));
  auto a_mean = p->lora_a.mean(1).reshape({16, r});                      // heads stacked on input rows
  auto b_mean = p->lora_b.mean(1).permute({1, 0, 2}).reshape({r, 8});    // heads side by side on outputs
  EXPECT_TRUE(torch::allclose(a[0], a_mean, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(b[0], b_mean, 1e-6, 1e-7));
}

TEST(Poly, ParameterCountsMatchClosedForm) {
  const int64_t S = 8, h = 4, r = 2, T = 5, d_in = 16, d_out = 8;
  Toy toy(d_in, d_out);
  auto p = attach_poly(*toy, "q", options(T, S, h, r)).at(0).second;
  EXPECT_EQ(p->lora_a.numel() + p->lora_b.numel(), S * r * (d_in + d_out));
  EXPECT_EQ(p->router->module_logits.numel(), T * h * S);
  std::vector<std::string> names;
  for (auto& kv : toy->named_parameters()) names.push_back(kv.key());
  EXPECT_NE(std::find(names.begin(), names.end(), "q.poly_lora.router.module_logits"), names.end());
}

TEST(Poly, IndivisibleHeadsFailNamingTheLayer) {
  Toy toy(12, 8);
  try {
    attach_poly(*toy, "q", options(1, 2, 8));
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()),
              "routing.n_heads: 8 does not divide the input (12) and output (8) size of 'q' (try 4)");
  }
  EXPECT_THROW(attach_poly(toy.ptr().operator*(), "nothing", options(1, 2, 1)), InputError);
}

TEST(Poly, MixStacksEachHeadsWeightedSkillsAsTheMhrFormula) {
  // Written out per head: A_u = [sum_s w[u,q,s] A[q,s] for q in heads] stacked along the input dim,
  // B_u = the same sums of B[q,s] side by side along the output dim.
  torch::manual_seed(12);
  const int64_t heads = 2, skills = 3, tasks = 4;
  PolyLoRA p(12, 8, options(tasks, skills, heads), "q");
  randomize_b(p);
  const auto w = torch::rand({tasks, heads, skills});
  auto [a, b] = p->mix(w);
  for (int64_t u = 0; u < tasks; ++u)
    for (int64_t q = 0; q < heads; ++q) {
      torch::Tensor want_a = torch::zeros({12 / heads, 4}), want_b = torch::zeros({4, 8 / heads});  // rank 4
      for (int64_t s = 0; s < skills; ++s) {
        want_a += w[u][q][s] * p->lora_a[q][s];
        want_b += w[u][q][s] * p->lora_b[q][s];
      }
      EXPECT_TRUE(torch::allclose(a[u].narrow(0, q * 12 / heads, 12 / heads), want_a, 1e-5, 1e-6)) << u << " " << q;
      EXPECT_TRUE(torch::allclose(b[u].narrow(1, q * 8 / heads, 8 / heads), want_b, 1e-5, 1e-6)) << u << " " << q;
    }
}

// The hook adds its up-projection to the base output (addmm from y, or per-example batched_matmul); its
// gradients must be those of the plain formula y = x W^T + (x a_t) b_t / r for every leaf: input, inventory
// and routing logits.
TEST(Poly, UpProjectionHasTheFormulasGradients) {
  for (std::vector<int64_t> tasks : {std::vector<int64_t>{0, 2, 1, 0}, std::vector<int64_t>{1, 1, 1, 1}}) {
    for (int64_t heads : {1, 2}) {
      SCOPED_TRACE("heads " + std::to_string(heads) + (tasks[0] == 1 ? ", one task" : ", three tasks"));
      torch::manual_seed(9);
      AdaptableLinear lin(12, 8, true);
      lin->weight.set_requires_grad(false);
      lin->bias.set_requires_grad(false);
      PolyLoRA p(12, 8, options(3, 3, heads), "q");
      lin->add_hook(p.ptr());
      randomize_b(p);
      const auto x = torch::randn({4, 5, 12}, torch::requires_grad());
      const auto g = torch::randn({4, 5, 8});
      const std::vector<torch::Tensor> leaves = {x, p->lora_a, p->lora_b, p->router->module_logits};
      ForwardContext ctx = context(tasks);  // evaluation routing: no sampling, the same weights both times
      const auto hooked = torch::autograd::grad({(lin->forward(x, ctx) * g).sum()}, leaves);

      const auto ids = torch::tensor(tasks, torch::kLong);
      auto [a, b] = p->mix(p->router->weights(ids, false));  // per example: [4, 12, r], [4, r, 8]
      const auto y = lin->base_forward(x) + torch::matmul(torch::matmul(x, a), b) / 4.0;
      const auto plain = torch::autograd::grad({(y * g).sum()}, leaves);
      for (size_t i = 0; i < leaves.size(); ++i)
        EXPECT_TRUE(torch::allclose(hooked[i], plain[i], 1e-5, 1e-6)) << "leaf " << i;
    }
  }
}
