// Every T5 folder in tests/fixtures/ (ref.json "kind": "t5") is loaded and compared with what Hugging Face
// transformers 4.33 computed: every reference tensor (logits, losses, all hidden states and attention
// probabilities), the gradient of every parameter, and greedy generation. Adding a folder adds a model.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/loss.h"
#include "models/t5/load.h"

namespace fs = std::filesystem;
using namespace peft;

namespace {

constexpr double kAtol = 1e-4, kRtol = 1e-4;  // fixtures/README.md: BLAS changes alone move outputs ~5e-5

const fs::path kFixtures = fs::path(PEFT_SOURCE_DIR) / "tests" / "fixtures";

std::vector<std::string> t5_fixtures() {
  std::vector<std::string> names;
  if (!fs::exists(kFixtures)) return names;
  for (const auto& entry : fs::directory_iterator(kFixtures)) {
    const fs::path ref = entry.path() / "ref.json";
    if (!entry.is_directory() || !fs::exists(ref)) continue;
    if (io::read_json(ref).value("kind", "") == "t5") names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

// Shape first, then |got - want| <= atol + rtol |want| everywhere; returns the max abs difference and prints
// where it is, so a failure (or a pass) shows the evidence.
double expect_close(const std::string& name, const torch::Tensor& got_in, const torch::Tensor& want_in) {
  if (!got_in.defined()) {
    ADD_FAILURE() << name << ": not computed";
    return INFINITY;
  }
  torch::Tensor got = got_in.detach().to(torch::kCPU, torch::kDouble);
  torch::Tensor want = want_in.detach().to(torch::kCPU, torch::kDouble);
  if (got.sizes() != want.sizes()) {
    ADD_FAILURE() << name << ": shape " << got.sizes() << ", expected " << want.sizes();
    return INFINITY;
  }
  if (got.numel() == 0) return 0.0;
  torch::Tensor diff = (got - want).abs();
  const int64_t at = diff.flatten().argmax().item<int64_t>();
  const double max_diff = diff.flatten()[at].item<double>();
  const bool ok = (diff <= kAtol + kRtol * want.abs()).all().item<bool>();
  EXPECT_TRUE(ok) << name << ": max |diff| " << max_diff << " at flat index " << at << " (got "
                  << got.flatten()[at].item<double>() << ", want " << want.flatten()[at].item<double>()
                  << "), atol=rtol=" << kAtol;
  return max_diff;
}

class T5Fixture : public ::testing::TestWithParam<std::string> {};

TEST_P(T5Fixture, MatchesTransformers) {
  const fs::path dir = kFixtures / GetParam();
  const nlohmann::json ref_json = io::read_json(dir / "ref.json");
  io::TensorMap ref = io::read_safetensors(dir / "ref.safetensors", std::nullopt);
  T5ForConditionalGeneration model = load_t5(io::read_hf_checkpoint(dir));
  model->eval();
  ForwardContext ctx;

  // Parameter names: HF's named_parameters(), tied ones once, same order.
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters()) names.push_back(p.key());
  const auto want_names = ref_json.at("parameter_names").get<std::vector<std::string>>();
  EXPECT_EQ(std::set<std::string>(names.begin(), names.end()),
            std::set<std::string>(want_names.begin(), want_names.end()));
  EXPECT_EQ(names, want_names) << "same set, different order";

  Seq2SeqOutput out = model->forward(ref.at("input_ids"), ref.at("attention_mask"), ref.at("decoder_input_ids"),
                                     ref.at("decoder_attention_mask"), ref.at("labels"), ctx,
                                     /*output_hidden_states=*/true, /*output_attentions=*/true);
  torch::Tensor loss_labels_only;
  {
    torch::NoGradGuard no_grad;
    loss_labels_only = model->forward(ref.at("input_ids"), ref.at("attention_mask"), torch::Tensor(), torch::Tensor(),
                                      ref.at("labels"), ctx).loss;
  }
  out.loss.backward();
  std::map<std::string, torch::Tensor> grads;
  for (const auto& p : model->named_parameters()) grads["grad." + p.key()] = p.value().grad();

  auto indexed = [](const std::vector<torch::Tensor>& v, const std::string& name, const std::string& prefix) {
    const size_t i = std::stoul(name.substr(prefix.size()));
    return i < v.size() ? v[i] : torch::Tensor();
  };
  auto starts = [](const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; };

  // Every reference tensor must be compared; inputs are skipped, anything unknown fails.
  const std::set<std::string> inputs = {"input_ids", "attention_mask", "labels", "decoder_input_ids",
                                        "decoder_attention_mask", "generation_min_margin"};
  double max_output = 0, max_grad = 0;
  size_t compared = 0, compared_grads = 0;
  for (const auto& [name, want] : ref) {
    if (inputs.count(name)) continue;
    torch::Tensor got;
    if (name == "generated_ids") {
      // fixtures/README.md: plain greedy, at most 8 new tokens (fewer when every row emitted eos).
      torch::Tensor ids = model->generate(ref.at("input_ids"), ref.at("attention_mask"), ctx, /*max_new_tokens=*/8);
      EXPECT_TRUE(ids.equal(want)) << "generated_ids: got " << ids << "\nwant " << want;
      ++compared;
      continue;
    }
    bool is_grad = false;
    if (name == "logits") got = out.logits;
    else if (name == "loss") got = out.loss;
    else if (name == "loss_labels_only") got = loss_labels_only;
    else if (name == "encoder_last_hidden_state") got = out.encoder_last_hidden_state;
    else if (name == "decoder_last_hidden_state") got = out.decoder_last_hidden_state;
    else if (starts(name, "encoder_hidden_states.")) got = indexed(out.encoder_hidden_states, name, "encoder_hidden_states.");
    else if (starts(name, "decoder_hidden_states.")) got = indexed(out.decoder_hidden_states, name, "decoder_hidden_states.");
    else if (starts(name, "encoder_attentions.")) got = indexed(out.encoder_attentions, name, "encoder_attentions.");
    else if (starts(name, "decoder_attentions.")) got = indexed(out.decoder_attentions, name, "decoder_attentions.");
    else if (starts(name, "cross_attentions.")) got = indexed(out.cross_attentions, name, "cross_attentions.");
    else if (starts(name, "grad.")) {
      is_grad = true;
      auto it = grads.find(name);
      if (it != grads.end()) got = it->second;
    } else {
      ADD_FAILURE() << "reference tensor '" << name << "' is not compared by this test";
      continue;
    }
    const double d = expect_close(GetParam() + ": " + name, got, want);
    (is_grad ? max_grad : max_output) = std::max(is_grad ? max_grad : max_output, d);
    ++(is_grad ? compared_grads : compared);
  }
  // One gradient per parameter, and the vector outputs have exactly HF's lengths.
  EXPECT_EQ(compared_grads, names.size());
  const auto config = model->config();
  EXPECT_EQ(out.encoder_hidden_states.size(), static_cast<size_t>(config.num_layers + 1));
  EXPECT_EQ(out.decoder_hidden_states.size(), static_cast<size_t>(config.num_decoder_layers + 1));
  EXPECT_EQ(out.cross_attentions.size(), static_cast<size_t>(config.num_decoder_layers));
  std::cout << "[ fixture  ] " << GetParam() << ": " << compared << " outputs, max |diff| " << max_output << "; "
            << compared_grads << " gradients, max |diff| " << max_grad << std::endl;
}

TEST(T5Fixtures, FoundBothShippedModels) {
  const auto names = t5_fixtures();
  EXPECT_NE(std::find(names.begin(), names.end(), "t5_tiny"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "t5v11_tiny"), names.end());
}

INSTANTIATE_TEST_SUITE_P(AllT5, T5Fixture, ::testing::ValuesIn(t5_fixtures()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

}  // namespace
