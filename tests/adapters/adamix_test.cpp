#include <gtest/gtest.h>

#include "adapters/adamix.h"
#include "adapters/bottleneck.h"
#include "adapters/lora.h"
#include "common/error.h"
#include "toy_model.h"

using namespace peft;
using namespace peft::adapters;
using namespace peft::testing;

namespace {

constexpr int64_t kIn = 6, kOut = 5;

ForwardContext train_ctx() {
  ForwardContext c;
  c.training = true;
  return c;
}

AdaptableLinear make_linear(uint64_t seed = 11) {
  torch::manual_seed(seed);
  AdaptableLinear lin(kIn, kOut, true);
  torch::NoGradGuard no_grad;
  lin->weight.copy_(torch::randn({kOut, kIn}));
  lin->bias.copy_(torch::randn({kOut}));
  return lin;
}

LoraOptions lora_opts(int64_t r = 3, double alpha = 6) {
  LoraOptions o;
  o.r = r;
  o.lora_alpha = alpha;
  return o;
}

AdamixOptions mix(int64_t e, const std::string& share) {
  AdamixOptions o;
  o.num_experts = e;
  o.share = share;
  return o;
}

torch::Tensor input(uint64_t seed = 3) {
  torch::manual_seed(seed);
  return torch::randn({2, 4, kIn});
}

BottleneckOptions bn_opts(const std::string& config = "pfeiffer") {
  BottleneckOptions o;
  o.config = config;
  o.bottleneck_size = 4;
  return resolve(o);
}

}  // namespace

TEST(AdamixLora, InitSharesAndNames) {
  auto lin = make_linear();
  auto amx = std::make_shared<AdamixLora>("q", lin, lora_opts(), mix(4, "up"));
  EXPECT_EQ(amx->kind(), "adamix_lora");
  EXPECT_EQ(amx->num_A(), 4);  // default LoRA sharing: one B, E copies of A
  EXPECT_EQ(amx->num_B(), 1);
  for (int64_t i = 1; i < 4; ++i) EXPECT_TRUE(torch::equal(amx->A(i), amx->A(0)));  // A copies equal at start
  EXPECT_EQ(amx->B(0).abs().max().item<float>(), 0.0f);
  EXPECT_LE(amx->A(0).abs().max().item<double>(), 1.0 / std::sqrt(double(kIn)));
  AdamixLora down_shared("q", lin, lora_opts(), mix(3, "down"));
  EXPECT_EQ(down_shared.num_A(), 1);
  EXPECT_EQ(down_shared.num_B(), 3);
  AdamixLora none("q", lin, lora_opts(), mix(3, "none"));
  EXPECT_EQ(none.num_A(), 3);
  EXPECT_EQ(none.num_B(), 3);

  // Attached, the copies appear on the site and a fresh adapter is a no-op (B = 0) in both modes.
  amx->attach(*lin, amx);
  auto params = lin->named_parameters();
  EXPECT_TRUE(params.contains("lora_A.3.weight"));
  EXPECT_TRUE(params.contains("lora_B.0.weight"));
  EXPECT_FALSE(params.contains("lora_B.1.weight"));
  torch::Tensor x = input();
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(lin->forward(x, {}), lin->base_forward(x)));
  EXPECT_TRUE(torch::equal(lin->forward(x, train_ctx()), lin->base_forward(x)));

  try {
    AdamixLora bad("q", lin, lora_opts(), mix(2, "both"));
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "adamix share: unknown value 'both', expected up, down or none");
  }
  EXPECT_THROW(AdamixLora("q", lin, lora_opts(), mix(0, "up")), InputError);
}

TEST(AdamixLora, SingleCopyEqualsLora) {
  auto lin = make_linear();
  AdamixLora amx("q", lin, lora_opts(), mix(1, "none"));
  LoraAdapter lora("q", lin, lora_opts());
  {
    torch::NoGradGuard no_grad;
    torch::manual_seed(5);
    amx.A(0).copy_(torch::randn_like(amx.A(0)));
    amx.B(0).copy_(torch::randn_like(amx.B(0)));
    lora.lora_A->weight.copy_(amx.A(0));
    lora.lora_B->weight.copy_(amx.B(0));
  }
  torch::Tensor x = input();
  torch::Tensor y = lin->base_forward(x).detach();
  for (bool training : {false, true}) {
    ForwardContext ctx;
    ctx.training = training;
    torch::Tensor expected = lora.transform_output(x, y.clone(), ctx);  // the hook owns (may update) its y
    EXPECT_LT(max_diff(amx.transform_output(x, y.clone(), ctx), expected), 1e-6) << "training=" << training;
  }
  auto [A, B] = amx.averaged_lora();
  EXPECT_TRUE(torch::equal(A, lora.lora_A->weight));
  EXPECT_TRUE(torch::equal(B, lora.lora_B->weight));
}

TEST(AdamixLora, EvaluationUsesCurrentMeanWeights) {
  auto lin = make_linear();
  AdamixLora amx("q", lin, lora_opts(3, 6), mix(4, "none"));
  randomize(amx.named_parameters().pairs());
  torch::Tensor x = input();
  torch::Tensor y = lin->base_forward(x).detach();
  auto expected_for = [&] {
    torch::Tensor A = (amx.A(0) + amx.A(1) + amx.A(2) + amx.A(3)) / 4;
    torch::Tensor B = (amx.B(0) + amx.B(1) + amx.B(2) + amx.B(3)) / 4;
    return y + torch::matmul(torch::matmul(x, A.t()), B.t()) * 2.0;  // s = 6 / 3
  };
  torch::NoGradGuard no_grad;
  EXPECT_LT(max_diff(amx.transform_output(x, y, {}), expected_for()), 1e-6);
  // Module in eval mode: a training context still takes the mean (no sampling).
  amx.eval();
  EXPECT_LT(max_diff(amx.transform_output(x, y, train_ctx()), expected_for()), 1e-6);
  amx.train();
  // "Further training" changes one copy: the next evaluation sees it (no stale cached average).
  amx.A(2).add_(0.5);
  amx.B(1).mul_(-2.0);
  EXPECT_LT(max_diff(amx.transform_output(x, y, {}), expected_for()), 1e-6);
  EXPECT_GT(amx.A(2).sub(amx.A(0)).abs().max().item<double>(), 0.1);

  // Merge adds s·B̄Ā to W: the merged base alone reproduces the evaluation output; unmerge restores W.
  torch::Tensor eval_out = amx.transform_output(x, y, {});
  torch::Tensor W = lin->weight.clone();
  amx.merge();
  EXPECT_LT(max_rel_diff(amx.transform_output(x, lin->base_forward(x), {}), eval_out), 1e-5);
  EXPECT_THROW(amx.merge(), std::logic_error);
  amx.unmerge();
  EXPECT_LT(max_diff(lin->weight, W), 1e-6);
}

TEST(AdamixLora, EvaluationIsDeterministicAndLeavesRngAlone) {
  auto lin = make_linear();
  AdamixLora amx("q", lin, lora_opts(), mix(4, "up"));
  randomize(amx.named_parameters().pairs());
  torch::Tensor x = input();
  torch::Tensor y = lin->base_forward(x).detach();
  torch::NoGradGuard no_grad;
  torch::manual_seed(99);
  torch::Tensor untouched = torch::rand({16});
  torch::manual_seed(99);
  torch::Tensor out1 = amx.transform_output(x, y, {});
  torch::Tensor after1 = torch::rand({16});
  torch::manual_seed(99);
  torch::Tensor out2 = amx.transform_output(x, y, {});
  EXPECT_TRUE(torch::equal(out1, out2));
  EXPECT_TRUE(torch::equal(after1, untouched));  // evaluation drew nothing from the generator
  EXPECT_EQ(amx.last_route(), std::make_pair(int64_t{-1}, int64_t{-1}));
  // Training does draw.
  torch::manual_seed(99);
  amx.transform_output(x, y, train_ctx());
  EXPECT_FALSE(torch::equal(torch::rand({16}), untouched));
}

TEST(AdamixLora, TrainingRoutesOneCopyAndOnlyItGetsGradients) {
  auto lin = make_linear();
  AdamixLora amx("q", lin, lora_opts(3, 6), mix(4, "none"));
  randomize(amx.named_parameters().pairs());
  torch::Tensor x = input();
  torch::Tensor y = lin->base_forward(x).detach();
  torch::manual_seed(4);
  std::vector<int> count_A(4, 0), count_B(4, 0);
  for (int step = 0; step < 400; ++step) {
    for (auto& p : amx.parameters()) p.mutable_grad() = torch::Tensor();
    torch::Tensor out = amx.transform_output(x, y, train_ctx());
    auto [ia, ib] = amx.last_route();
    ASSERT_GE(ia, 0);
    ASSERT_LT(ia, 4);
    ASSERT_GE(ib, 0);
    ASSERT_LT(ib, 4);
    ++count_A[ia];
    ++count_B[ib];
    if (step < 8) {
      torch::NoGradGuard no_grad;
      torch::Tensor expected = y + torch::matmul(torch::matmul(x, amx.A(ia).t()), amx.B(ib).t()) * 2.0;
      EXPECT_LT(max_diff(out, expected), 1e-6);
    }
    if (step < 8) {
      out.pow(2).sum().backward();
      for (int64_t i = 0; i < 4; ++i) {
        const torch::Tensor ga = amx.A(i).grad(), gb = amx.B(i).grad();
        if (i == ia) {
          ASSERT_TRUE(ga.defined());
          EXPECT_GT(ga.abs().max().item<double>(), 0.0);
        } else {
          EXPECT_TRUE(!ga.defined() || ga.abs().max().item<double>() == 0.0) << "A copy " << i;
        }
        if (i == ib) {
          ASSERT_TRUE(gb.defined());
          EXPECT_GT(gb.abs().max().item<double>(), 0.0);
        } else {
          EXPECT_TRUE(!gb.defined() || gb.abs().max().item<double>() == 0.0) << "B copy " << i;
        }
      }
    }
  }
  // Uniform draws: 100 expected per copy; [60, 140] is > 4 standard deviations wide.
  for (int i = 0; i < 4; ++i) {
    EXPECT_GT(count_A[i], 60) << i;
    EXPECT_LT(count_A[i], 140) << i;
    EXPECT_GT(count_B[i], 60) << i;
    EXPECT_LT(count_B[i], 140) << i;
  }
}

TEST(AdamixConsistency, ZeroForIdenticalPositiveOtherwiseAndTargetDetached) {
  torch::manual_seed(8);
  torch::Tensor p = torch::randn({2, 3, 7});
  torch::Tensor q = torch::randn({2, 3, 7});
  torch::Tensor mask = torch::tensor({{1, 1, 0}, {1, 0, 0}}, torch::kLong);
  EXPECT_LT(consistency_loss(p, p.clone(), mask).abs().item<double>(), 1e-7);
  EXPECT_LT(consistency_loss(p, p.clone()).abs().item<double>(), 1e-7);

  // Reference value: ½[KL(q‖p) + KL(p‖q)] per position, mean over the 3 unpadded positions.
  torch::Tensor lp = torch::log_softmax(p, -1), lq = torch::log_softmax(q, -1);
  torch::Tensor sym = 0.5 * ((lq.exp() * (lq - lp)).sum(-1) + (lp.exp() * (lp - lq)).sum(-1));
  const double expected = (sym[0][0] + sym[0][1] + sym[1][0]).item<double>() / 3.0;
  torch::Tensor P = p.clone().requires_grad_(true), Q = q.clone().requires_grad_(true);
  torch::Tensor loss = consistency_loss(P, Q, mask);
  EXPECT_GT(loss.item<double>(), 1e-3);
  EXPECT_NEAR(loss.item<double>(), expected, 1e-6);

  // With each target detached, d loss / d logits_p = ½(softmax(p) − softmax(q)) / N at unpadded positions
  // (the KL(p‖q) term, whose target is p, contributes nothing to logits_p), and symmetrically for q.
  loss.backward();
  torch::Tensor w = mask.to(torch::kFloat).unsqueeze(-1) / 3.0;
  torch::Tensor gp = 0.5 * (torch::softmax(p, -1) - torch::softmax(q, -1)) * w;
  EXPECT_LT(max_diff(P.grad(), gp), 1e-6);
  EXPECT_LT(max_diff(Q.grad(), -gp), 1e-6);
  EXPECT_EQ(P.grad()[1][2].abs().max().item<float>(), 0.0f);  // padding gets no gradient
}

TEST(AdamixBottleneck, SingleCopyEqualsBottleneckFormula) {
  const int64_t d = 8;
  AdamixBottleneck amx("encoder.block.0.layer.1", d, bn_opts(), mix(1, "none"));
  EXPECT_EQ(amx.kind(), "adamix_bottleneck");
  torch::manual_seed(2);
  torch::Tensor z = torch::randn({2, 3, d}), out = torch::randn({2, 3, d});
  BottleneckAdapter plain("encoder.block.0.layer.1", d, bn_opts());
  amx.copy_averaged_into(plain);
  torch::NoGradGuard no_grad;
  for (bool training : {false, true}) {
    ForwardContext ctx;
    ctx.training = training;
    torch::Tensor expected = out + amx.up(0)(torch::relu(amx.down(0)(out)));
    EXPECT_LT(max_diff(amx.apply(z, out, ctx), expected), 1e-6) << training;
    EXPECT_LT(max_diff(plain.apply(z, out, ctx), expected), 1e-6) << training;
  }
}

TEST(AdamixBottleneck, InitRoutingAndMeanEvaluation) {
  const int64_t d = 8;
  auto amx = std::make_shared<AdamixBottleneck>("encoder.block.0.layer.1", d, bn_opts(), mix(4, "up"));
  EXPECT_EQ(amx->num_down(), 4);  // methods §7: Up shared, Down mixed
  EXPECT_EQ(amx->num_up(), 1);
  // Copies independent, N(0, 0.02), zero biases.
  EXPECT_FALSE(torch::equal(amx->down(0)->weight, amx->down(1)->weight));
  torch::Tensor all = torch::cat({amx->down(0)->weight.flatten(), amx->down(1)->weight.flatten(),
                                  amx->down(2)->weight.flatten(), amx->down(3)->weight.flatten()});
  EXPECT_NEAR(all.std().item<double>(), 0.02, 0.006);
  EXPECT_EQ(amx->down(3)->bias.abs().max().item<float>(), 0.0f);
  EXPECT_EQ(amx->up(0)->bias.abs().max().item<float>(), 0.0f);

  ToyModel model(1);
  auto modules = model->named_modules();
  amx->attach(*modules["encoder.block.0.layer.1"], amx);
  auto params = model->named_parameters();
  EXPECT_TRUE(params.contains("encoder.block.0.layer.1.adapter.adapter_down.3.weight"));
  EXPECT_TRUE(params.contains("encoder.block.0.layer.1.adapter.adapter_up.0.bias"));
  EXPECT_FALSE(params.contains("encoder.block.0.layer.1.adapter.adapter_up.1.weight"));

  randomize(amx->named_parameters().pairs());
  torch::manual_seed(2);
  torch::Tensor z = torch::randn({2, 3, d}), out = torch::randn({2, 3, d});
  AveragedBottleneck avg = amx->averaged();
  {
    torch::NoGradGuard no_grad;
    torch::Tensor wd = torch::zeros_like(avg.down_weight), bd = torch::zeros_like(avg.down_bias);
    for (int64_t i = 0; i < 4; ++i) wd += amx->down(i)->weight / 4, bd += amx->down(i)->bias / 4;
    EXPECT_LT(max_diff(avg.down_weight, wd), 1e-7);
    EXPECT_LT(max_diff(avg.down_bias, bd), 1e-7);
    EXPECT_TRUE(torch::equal(avg.up_weight, amx->up(0)->weight));
    torch::Tensor expected = out + torch::linear(torch::relu(torch::linear(out, wd, bd)), avg.up_weight, avg.up_bias);
    torch::manual_seed(50);
    torch::Tensor untouched = torch::rand({8});
    torch::manual_seed(50);
    EXPECT_LT(max_diff(amx->apply(z, out, {}), expected), 1e-6);
    EXPECT_TRUE(torch::equal(torch::rand({8}), untouched));
  }

  // Training: the drawn Down copy alone gets a gradient, and the output is that copy's adapter.
  torch::manual_seed(6);
  for (int step = 0; step < 6; ++step) {
    for (auto& p : amx->parameters()) p.mutable_grad() = torch::Tensor();
    torch::Tensor o = amx->apply(z, out, train_ctx());
    auto [id, iu] = amx->last_route();
    EXPECT_EQ(iu, 0);
    {
      torch::NoGradGuard no_grad;
      EXPECT_LT(max_diff(o, out + amx->up(0)(torch::relu(amx->down(id)(out)))), 1e-6);
    }
    o.pow(2).sum().backward();
    for (int64_t i = 0; i < 4; ++i) {
      const torch::Tensor g = amx->down(i)->weight.grad();
      if (i == id)
        EXPECT_TRUE(g.defined() && g.abs().max().item<double>() > 0);
      else
        EXPECT_TRUE(!g.defined() || g.abs().max().item<double>() == 0.0) << i;
    }
  }
}
