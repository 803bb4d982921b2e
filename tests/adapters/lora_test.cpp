#include <gtest/gtest.h>

#include <filesystem>

#include "adapters/checkpoint.h"
#include "adapters/inject.h"
#include "adapters/lora.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "toy_model.h"

using namespace peft;
using namespace peft::adapters;
using namespace peft::testing;

namespace {

std::filesystem::path temp_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() / ("peft_adapters_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  return dir;
}

AdapterSpec lora_spec(int64_t r = 4, double alpha = 8) {
  AdapterSpec s;
  s.kind = "lora";
  s.lora.r = r;
  s.lora.lora_alpha = alpha;
  return s;
}

}  // namespace

TEST(Lora, FreshAdapterIsExactNoOp) {
  ToyModel model(1);
  auto b = toy_batch();
  torch::NoGradGuard no_grad;
  torch::Tensor base = model->forward(b.x, b.mask);
  AdapterSet set = inject(*model, lora_spec(), toy_info());
  EXPECT_EQ(set.adapters.size(), 8u);  // q, k, v, o in 2 layers (default T5 targets)
  EXPECT_TRUE(torch::equal(model->forward(b.x, b.mask), base));
}

TEST(Lora, InitAndNamesFollowHfPeft) {
  ToyModel model(1);
  AdapterSet set = inject(*model, lora_spec(4), toy_info());
  auto params = model->named_parameters();
  ASSERT_TRUE(params.contains("encoder.block.0.layer.0.SelfAttention.q.lora_A.weight"));
  ASSERT_TRUE(params.contains("encoder.block.1.layer.0.SelfAttention.o.lora_B.weight"));
  torch::Tensor A = params["encoder.block.0.layer.0.SelfAttention.q.lora_A.weight"];
  torch::Tensor B = params["encoder.block.1.layer.0.SelfAttention.o.lora_B.weight"];
  EXPECT_EQ(A.sizes(), (std::vector<int64_t>{4, 16}));
  EXPECT_EQ(B.sizes(), (std::vector<int64_t>{16, 4}));
  EXPECT_EQ(B.abs().max().item<float>(), 0.0f);
  const double bound = 1.0 / std::sqrt(16.0);  // kaiming-uniform(a=sqrt 5) = U(±1/sqrt(d_in))
  EXPECT_LE(A.abs().max().item<double>(), bound);
  EXPECT_GT(A.abs().max().item<double>(), 0.5 * bound);
}

TEST(Lora, ParameterCountsMatchClosedForm) {
  ToyModel model(1);
  const int64_t total_before = count_parameters(*model).total;
  AdapterSet set = inject(*model, lora_spec(4), toy_info());
  const int64_t per_linear = LoraAdapter::expected_num_parameters(16, 16, 4);
  EXPECT_EQ(per_linear, 128);
  EXPECT_EQ(set.num_adapter_parameters(), 8 * per_linear);
  ParameterCount c = count_parameters(*model);
  EXPECT_EQ(c.trainable, 8 * per_linear);
  EXPECT_EQ(c.total, total_before + 8 * per_linear);
  EXPECT_NEAR(c.percent(), 100.0 * 1024 / c.total, 1e-12);
}

TEST(Lora, TargetModulesRegexIsFullMatchAndListIsSuffix) {
  {
    ToyModel model(1);
    AdapterSpec s = lora_spec();
    s.target_modules = TargetModules::list({"q", "v"});
    EXPECT_EQ(inject(*model, s, toy_info()).site_names(),
              (std::vector<std::string>{"encoder.block.0.layer.0.SelfAttention.q",
                                        "encoder.block.0.layer.0.SelfAttention.v",
                                        "encoder.block.1.layer.0.SelfAttention.q",
                                        "encoder.block.1.layer.0.SelfAttention.v"}));
  }
  {
    ToyModel model(1);
    AdapterSpec s = lora_spec();
    s.target_modules = TargetModules::pattern(R"(.*block\.1\..*\.(q|wo))");
    EXPECT_EQ(inject(*model, s, toy_info()).site_names(),
              (std::vector<std::string>{"encoder.block.1.layer.0.SelfAttention.q",
                                        "encoder.block.1.layer.1.DenseReluDense.wo"}));
  }
  {
    // A regex must match the whole name: "q" alone matches nothing (std::regex_search would).
    ToyModel model(1);
    AdapterSpec s = lora_spec();
    s.target_modules = TargetModules::pattern("q");
    try {
      inject(*model, s, toy_info());
      FAIL() << "expected InputError";
    } catch (const InputError& e) {
      EXPECT_EQ(std::string(e.what()).find("adapters.target_modules: 'q' matched no linear layer"), 0u) << e.what();
    }
  }
  {
    // A suffix must start at a name boundary: "SelfAttention.q" matches, "elfAttention.q" does not.
    TargetModules t = TargetModules::list({"elfAttention.q"});
    EXPECT_FALSE(t.matches("encoder.block.0.layer.0.SelfAttention.q"));
    EXPECT_TRUE(TargetModules::list({"SelfAttention.q"}).matches("encoder.block.0.layer.0.SelfAttention.q"));
    EXPECT_TRUE(TargetModules::list({"q"}).matches("q"));
  }
}

TEST(Lora, MergeEqualsUnmergedAndUnmergeRestoresW) {
  ToyModel model(1);
  auto b = toy_batch();
  AdapterSet set = inject(*model, lora_spec(4, 8), toy_info());
  randomize(set.named_trainable_parameters(*model));
  torch::NoGradGuard no_grad;
  torch::Tensor W0 = model->encoder->blocks[0]->attn->SelfAttention->q->weight.clone();
  torch::Tensor base_out;
  {
    ToyModel plain(1);
    base_out = plain->forward(b.x, b.mask);
  }
  torch::Tensor unmerged = model->forward(b.x, b.mask);
  EXPECT_GT(max_diff(unmerged, base_out), 1e-3);  // the adapter does something
  set.merge();
  torch::Tensor W1 = model->encoder->blocks[0]->attn->SelfAttention->q->weight.clone();
  auto lora = std::dynamic_pointer_cast<LoraAdapter>(set.adapters[0]);
  EXPECT_LT(max_diff(W1, W0 + 2.0 * torch::matmul(lora->lora_B->weight, lora->lora_A->weight)), 1e-6);  // s = 8/4
  EXPECT_LT(max_diff(model->forward(b.x, b.mask), unmerged), 1e-5);
  EXPECT_THROW(set.merge(), std::logic_error);
  set.unmerge();
  EXPECT_LT(max_diff(model->encoder->blocks[0]->attn->SelfAttention->q->weight, W0), 1e-6);
  EXPECT_LT(max_diff(model->forward(b.x, b.mask), unmerged), 1e-5);
  EXPECT_THROW(set.unmerge(), std::logic_error);
}

TEST(Lora, GradientsReachExactlyTheTrainableParameters) {
  ToyModel model(1);
  auto b = toy_batch();
  AdapterSpec s = lora_spec();
  s.modules_to_save = {"classifier"};
  AdapterSet set = inject(*model, s, toy_info());
  randomize(set.named_trainable_parameters(*model));
  model->forward(b.x, b.mask).pow(2).sum().backward();
  int64_t trainable = 0;
  for (const auto& p : model->named_parameters()) {
    const bool owned = p.key().find(".lora_") != std::string::npos || p.key().rfind("classifier.", 0) == 0;
    EXPECT_EQ(p.value().requires_grad(), owned) << p.key();
    EXPECT_EQ(p.value().grad().defined(), owned) << p.key();
    if (owned) {
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
      trainable += p.value().numel();
    }
  }
  EXPECT_EQ(trainable, 8 * 128 + 16 * 3 + 3);
  EXPECT_EQ(count_parameters(*model).trainable, trainable);
  EXPECT_EQ(set.trainable_parameters(*model).size(), 16u + 2u);
}

TEST(Lora, ModulesToSaveMustMatch) {
  ToyModel model(1);
  AdapterSpec s = lora_spec();
  s.modules_to_save = {"score"};
  try {
    inject(*model, s, toy_info());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "adapters.modules_to_save: 'score' matched no module of the model");
  }
}

TEST(Lora, SaveLoadGivesIdenticalOutputs) {
  auto dir = temp_dir("lora_toy");
  auto b = toy_batch();
  torch::Tensor trained;
  {
    ToyModel model(1);
    AdapterSpec s = lora_spec(4, 16);
    s.target_modules = TargetModules::list({"q", "v"});
    s.modules_to_save = {"classifier"};
    AdapterSet set = inject(*model, s, toy_info());
    randomize(set.named_trainable_parameters(*model));
    torch::NoGradGuard no_grad;
    trained = model->forward(b.x, b.mask);
    save_adapter(dir, *model, set);
  }
  ToyModel fresh(1);
  AdapterSet loaded = load_adapter(dir, *fresh, toy_info());
  EXPECT_EQ(loaded.spec.lora.r, 4);
  EXPECT_EQ(loaded.spec.lora.lora_alpha, 16.0);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(fresh->forward(b.x, b.mask), trained));
  auto header = io::read_safetensors_header(dir / "adapter_model.safetensors");
  EXPECT_EQ(header.size(), 2u * 4u + 2u);
  EXPECT_TRUE(header.count("base_model.model.classifier.weight"));
  EXPECT_TRUE(header.count("base_model.model.encoder.block.1.layer.0.SelfAttention.v.lora_B.weight"));
  std::filesystem::remove_all(dir);
}

TEST(Lora, LoadRejectsWrongShapeNamingFileAndTensor) {
  auto dir = temp_dir("lora_bad");
  {
    ToyModel model(1);
    AdapterSet set = inject(*model, lora_spec(4), toy_info());
    save_adapter(dir, *model, set);
  }
  auto file = dir / "adapter_model.safetensors";
  auto tensors = io::read_safetensors(file);
  const std::string key = "base_model.model.encoder.block.0.layer.0.SelfAttention.k.lora_A.weight";
  tensors[key] = torch::zeros({3, 16});
  io::write_safetensors(file, tensors);
  ToyModel fresh(1);
  try {
    load_adapter(dir, *fresh, toy_info());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), file.string() + ": tensor '" + key + "': shape [3, 16], expected [4, 16]");
  }
  tensors.erase(key);
  tensors["base_model.model.extra"] = torch::zeros({1});
  io::write_safetensors(file, tensors);
  ToyModel fresh2(1);
  try {
    load_adapter(dir, *fresh2, toy_info());
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), file.string() + ": missing tensor '" + key + "' (and 1 more problems)");
  }
  std::filesystem::remove_all(dir);
}

// A linear (bias included when asked) with a LoRA of rank 4, alpha 8 (scale 2) hooked in and a non-zero B, so
// the adapter changes the output; and the plain formula y + s (x A^T) B^T to compare it with.
namespace {

std::shared_ptr<LoraAdapter> hooked_lora(AdaptableLinear lin) {
  LoraOptions o;
  o.r = 4;
  o.lora_alpha = 8;
  auto lora = std::make_shared<LoraAdapter>("q", lin, o);
  lin->add_hook(lora);
  torch::NoGradGuard no_grad;
  lora->lora_B->weight.normal_(0, 0.1);
  return lora;
}

torch::Tensor plain_lora_formula(AdaptableLinear lin, const LoraAdapter& lora, const torch::Tensor& x) {
  return lin->base_forward(x) + torch::matmul(torch::matmul(x, lora.lora_A->weight.t()), lora.lora_B->weight.t()) * 2.0;
}

}  // namespace

// LoRA adds s·(x A^T) B^T to the base output: a 3-D input through the op fused with the frozen base
// (routed_lowrank_linear), a 2-D one in the GEMM that starts from y (addmm, beta = 1). Either way the gradients
// of x, A and B must be those of the plain formula.
TEST(Lora, AccumulationIntoTheBaseOutputHasTheFormulasGradients) {
  for (std::vector<int64_t> shape : {std::vector<int64_t>{6, 12}, std::vector<int64_t>{3, 5, 12}}) {
    torch::manual_seed(11);
    AdaptableLinear lin(12, 8, true);
    lin->weight.set_requires_grad(false);
    lin->bias.set_requires_grad(false);
    const auto lora = hooked_lora(lin);
    const auto x = torch::randn(shape, torch::requires_grad());
    auto out_shape = shape;
    out_shape.back() = 8;
    const auto g = torch::randn(out_shape);
    const std::vector<torch::Tensor> leaves = {x, lora->lora_A->weight, lora->lora_B->weight};
    const auto out = lin->forward(x, {});
    EXPECT_EQ(out.grad_fn()->name().find("RoutedLowRankLinear") != std::string::npos, shape.size() == 3);
    const auto hooked = torch::autograd::grad({(out * g).sum()}, leaves);
    const auto plain = torch::autograd::grad({(plain_lora_formula(lin, *lora, x) * g).sum()}, leaves);
    for (size_t i = 0; i < leaves.size(); ++i)
      EXPECT_TRUE(torch::allclose(hooked[i], plain[i], 1e-5, 1e-6)) << "leaf " << i << ", dims " << shape.size();
  }
}

TEST(Lora, NoGradOperandsAreKeptPerContextOnly) {
  // Without autograd the fused op's B^T and task index are made once per context (greedy decoding reuses one
  // context for every step): a context must see B as it was, a new one sees B as it is, and a batch of another
  // size in the same context gets an index of its own size.
  torch::manual_seed(13);
  AdaptableLinear lin(16, 8, false);
  const auto lora = hooked_lora(lin);
  torch::NoGradGuard no_grad;
  const auto x = torch::randn({8, 1, 16});
  ForwardContext ctx;
  EXPECT_TRUE(torch::allclose(lin->forward(x, ctx), plain_lora_formula(lin, *lora, x), 1e-5, 1e-6));
  const auto x3 = torch::randn({3, 2, 16});
  EXPECT_TRUE(torch::allclose(lin->forward(x3, ctx), plain_lora_formula(lin, *lora, x3), 1e-5, 1e-6));
  lora->lora_B->weight.mul_(-3.0);
  ForwardContext next;
  const auto after = lin->forward(x, next);
  EXPECT_TRUE(torch::allclose(after, plain_lora_formula(lin, *lora, x), 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(after, lin->base_forward(x), 1e-3, 1e-3));  // the update is really there
}

TEST(Lora, DecodingPathWithoutAutogradEqualsTheFormula) {
  // Without autograd a 3-D input goes through the fused op, its base through skinny_linear at most 8 rows (a
  // greedy decoding step); a 2-D one through transform_output, the factors through skinny_linear at most 8 rows
  // and the GEMM above. All must give y + s (x A^T) B^T.
  torch::manual_seed(12);
  AdaptableLinear lin(40, 24, false);
  const auto lora = hooked_lora(lin);
  torch::NoGradGuard no_grad;
  for (std::vector<int64_t> shape : {std::vector<int64_t>{1, 40}, std::vector<int64_t>{8, 1, 40},
                                     std::vector<int64_t>{9, 40}, std::vector<int64_t>{2, 5, 40}}) {
    const auto x = torch::randn(shape);
    const auto expected = plain_lora_formula(lin, *lora, x);
    const auto got = lin->forward(x, {});
    ASSERT_EQ(got.sizes(), expected.sizes());
    EXPECT_TRUE(torch::allclose(got, expected, 1e-5, 1e-6)) << "rows " << x.numel() / 40;
  }
}
