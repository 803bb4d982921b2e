// Every folder under tests/fixtures/ whose ref.json says kind "bert" is loaded and compared with what
// transformers computed: every output tensor, the loss, and the gradient of every parameter (atol = rtol = 1e-4).
#include <gtest/gtest.h>

#include <algorithm>
#include <iostream>

#include "io/checkpoint.h"
#include "models/bert/model.h"

namespace peft::bert {
namespace {

const std::filesystem::path kFixtures = std::filesystem::path(PEFT_SOURCE_DIR) / "tests" / "fixtures";
constexpr double kTol = 1e-4;

std::vector<std::string> bert_fixtures() {
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(kFixtures)) {
    const auto ref = entry.path() / "ref.json";
    if (!std::filesystem::exists(ref)) continue;
    if (io::read_json(ref).value("kind", "") == "bert") names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Compares one tensor with its reference and keeps the largest absolute error seen.
void expect_close(const std::string& name, const torch::Tensor& actual, const io::TensorMap& ref, double& max_err) {
  SCOPED_TRACE(name);
  ASSERT_TRUE(ref.count(name)) << "no reference tensor " << name;
  ASSERT_TRUE(actual.defined());
  const torch::Tensor expected = ref.at(name);
  ASSERT_EQ(actual.sizes(), expected.sizes());
  const torch::Tensor a = actual.detach().to(torch::kFloat64), e = expected.to(torch::kFloat64);
  const double err = (a - e).abs().max().item<double>();
  max_err = std::max(max_err, err);
  EXPECT_TRUE(torch::allclose(a, e, kTol, kTol)) << "max abs error " << err;
}

TEST(BertFixtures, AtLeastTheTwoShippedOnesAreFound) {
  const auto names = bert_fixtures();
  EXPECT_NE(std::find(names.begin(), names.end(), "bert_tiny"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "bert_tiny_base"), names.end());
}

class BertFixture : public ::testing::TestWithParam<std::string> {};

TEST_P(BertFixture, ForwardAndGradientsMatchTransformers) {
  const auto dir = kFixtures / GetParam();
  const nlohmann::json ref_json = io::read_json(dir / "ref.json");
  const io::TensorMap ref = io::read_safetensors(dir / "ref.safetensors", std::nullopt);
  const auto model = load_bert(io::read_hf_checkpoint(dir));
  model->eval();

  // Parameter names (and their order) are transformers'.
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, ref_json.at("parameter_names").get<std::vector<std::string>>());

  BertInputs in;
  in.input_ids = ref.at("input_ids");
  in.attention_mask = ref.at("attention_mask");
  in.token_type_ids = ref.at("token_type_ids");
  in.output_hidden_states = true;
  in.output_attentions = true;
  ForwardContext ctx;  // eval: no dropout

  double max_err = 0;
  torch::Tensor scalar;
  BertModelOutput out;
  if (auto* seqcls = dynamic_cast<BertForSequenceClassificationImpl*>(model.get())) {
    ASSERT_EQ(ref_json.at("head"), "seqcls");
    SequenceClassifierOutput o = seqcls->forward(in, ctx, ref.at("labels"));
    expect_close("logits", o.logits, ref, max_err);
    expect_close("loss", o.loss, ref, max_err);
    scalar = o.loss;
    out = std::move(o.bert);
  } else {
    ASSERT_EQ(ref_json.at("head"), "base");
    out = model->base_model().forward(in, ctx);
    scalar = (out.last_hidden_state * ref.at("probe_weights")).sum() + out.pooler_output.sum();
    expect_close("probe_loss", scalar, ref, max_err);
  }
  const int64_t layers = ref_json.at("config").at("num_hidden_layers").get<int64_t>();
  ASSERT_EQ(out.hidden_states.size(), static_cast<size_t>(layers + 1));
  ASSERT_EQ(out.attentions.size(), static_cast<size_t>(layers));
  for (int64_t i = 0; i <= layers; ++i)
    expect_close("hidden_states." + std::to_string(i), out.hidden_states[i], ref, max_err);
  for (int64_t i = 0; i < layers; ++i)
    expect_close("attentions." + std::to_string(i), out.attentions[i], ref, max_err);
  expect_close("last_hidden_state", out.last_hidden_state, ref, max_err);
  expect_close("pooler_output", out.pooler_output, ref, max_err);
  const double forward_err = max_err;

  model->zero_grad();
  scalar.backward();
  double grad_err = 0;
  for (const auto& p : model->named_parameters()) {
    const torch::Tensor g = p.value().grad().defined() ? p.value().grad() : torch::zeros_like(p.value());
    expect_close("grad." + p.key(), g, ref, grad_err);
  }
  std::cout << "[ bert fixture ] " << GetParam() << ": max abs error forward " << forward_err << ", gradients "
            << grad_err << " (" << names.size() << " parameters)\n";
}

INSTANTIATE_TEST_SUITE_P(Fixtures, BertFixture, ::testing::ValuesIn(bert_fixtures()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
}  // namespace peft::bert
