// Adapters on the real BERT implementation (tests/fixtures/bert_tiny): default sites, no-op at init against
// the transformers reference, HF PEFT file names with a `bert.` prefix and modules_to_save, round trips.
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "adapters/checkpoint.h"
#include "adapters/inject.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/bert/model.h"
#include "toy_model.h"

namespace fs = std::filesystem;
using namespace peft;
using namespace peft::adapters;
using peft::testing::max_diff;
using peft::testing::randomize;

namespace {

const fs::path kFixtures = fs::path(PEFT_SOURCE_DIR) / "tests" / "fixtures";

struct BertFixture {
  std::shared_ptr<bert::BertForSequenceClassificationImpl> model;
  io::TensorMap ref;
  ModelInfo info;
};

BertFixture load() {
  BertFixture f;
  f.model = std::dynamic_pointer_cast<bert::BertForSequenceClassificationImpl>(
      bert::load_bert(io::read_hf_checkpoint(kFixtures / "bert_tiny")));
  f.model->eval();
  f.ref = io::read_safetensors(kFixtures / "bert_tiny" / "ref.safetensors");
  const auto& c = f.model->config;
  f.info = {"bert", c.hidden_size, c.num_attention_heads, c.head_dim()};
  return f;
}

bert::SequenceClassifierOutput run(BertFixture& f, bool with_labels = false) {
  bert::BertInputs in;
  in.input_ids = f.ref.at("input_ids");
  in.token_type_ids = f.ref.at("token_type_ids");
  in.attention_mask = f.ref.at("attention_mask");
  return f.model->forward(in, {}, with_labels ? f.ref.at("labels") : torch::Tensor());
}

}  // namespace

TEST(BertAdapters, DefaultSitesNoOpAndCounts) {
  {
    BertFixture f = load();
    torch::NoGradGuard no_grad;
    torch::Tensor base = run(f).logits;
    EXPECT_LT(max_diff(base, f.ref.at("logits")), 1e-4);
    AdapterSet set = inject(*f.model, AdapterSpec{}, f.info);  // LoRA r 8 on query, value
    EXPECT_EQ(set.site_names(), (std::vector<std::string>{"bert.encoder.layer.0.attention.self.query",
                                                          "bert.encoder.layer.0.attention.self.value",
                                                          "bert.encoder.layer.1.attention.self.query",
                                                          "bert.encoder.layer.1.attention.self.value"}));
    EXPECT_EQ(count_parameters(*f.model).trainable, 4 * LoraAdapter::expected_num_parameters(64, 64, 8));
    EXPECT_TRUE(torch::equal(run(f).logits, base));
  }
  {
    // (IA)^3: key, value and the FFN's output.dense only (attention.output.dense is not an FFN).
    BertFixture f = load();
    torch::NoGradGuard no_grad;
    torch::Tensor base = run(f).logits;
    AdapterSpec s;
    s.kind = "ia3";
    AdapterSet set = inject(*f.model, s, f.info);
    EXPECT_EQ(set.site_names(), (std::vector<std::string>{"bert.encoder.layer.0.attention.self.key",
                                                          "bert.encoder.layer.0.attention.self.value",
                                                          "bert.encoder.layer.0.output.dense",
                                                          "bert.encoder.layer.1.attention.self.key",
                                                          "bert.encoder.layer.1.attention.self.value",
                                                          "bert.encoder.layer.1.output.dense"}));
    EXPECT_EQ(f.model->named_parameters()["bert.encoder.layer.1.output.dense.ia3_l"].sizes(),
              (std::vector<int64_t>{1, 128}));
    EXPECT_EQ(count_parameters(*f.model).trainable, 2 * (64 + 64 + 128));
    EXPECT_TRUE(torch::equal(run(f).logits, base));
  }
  {
    BertFixture f = load();
    torch::NoGradGuard no_grad;
    torch::Tensor base = run(f).logits;
    AdapterSpec s;
    s.kind = "bottleneck";
    s.bottleneck.config = "houlsby";
    AdapterSet set = inject(*f.model, s, f.info);
    EXPECT_EQ(set.site_names(), (std::vector<std::string>{"bert.encoder.layer.0.attention.output",
                                                          "bert.encoder.layer.0.output",
                                                          "bert.encoder.layer.1.attention.output",
                                                          "bert.encoder.layer.1.output"}));
    EXPECT_EQ(count_parameters(*f.model).trainable, 4 * BottleneckAdapter::expected_num_parameters(64, 4));
    EXPECT_TRUE(torch::equal(run(f).logits, base));
  }
}

TEST(BertAdapters, LoraWithClassifierSavesHfNamesAndRoundTrips) {
  auto dir = fs::temp_directory_path() / ("peft_bert_lora_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  BertFixture f = load();
  AdapterSpec s;
  s.lora.r = 2;
  s.modules_to_save = {"classifier"};
  s.task_type = "SEQ_CLS";
  AdapterSet set = inject(*f.model, s, f.info);
  randomize(set.named_trainable_parameters(*f.model));
  run(f, true).loss.backward();
  std::set<std::string> with_grad;
  for (const auto& p : f.model->named_parameters())
    if (p.value().grad().defined()) with_grad.insert(p.key());
  EXPECT_EQ(with_grad, (std::set<std::string>{"bert.encoder.layer.0.attention.self.query.lora_A.weight",
                                              "bert.encoder.layer.0.attention.self.query.lora_B.weight",
                                              "bert.encoder.layer.0.attention.self.value.lora_A.weight",
                                              "bert.encoder.layer.0.attention.self.value.lora_B.weight",
                                              "bert.encoder.layer.1.attention.self.query.lora_A.weight",
                                              "bert.encoder.layer.1.attention.self.query.lora_B.weight",
                                              "bert.encoder.layer.1.attention.self.value.lora_A.weight",
                                              "bert.encoder.layer.1.attention.self.value.lora_B.weight",
                                              "classifier.weight", "classifier.bias"}));
  save_adapter(dir, *f.model, set);
  std::vector<std::string> names;
  for (const auto& kv : io::read_safetensors_header(dir / "adapter_model.safetensors")) names.push_back(kv.first);
  EXPECT_EQ(names, (std::vector<std::string>{
                       "base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight",
                       "base_model.model.bert.encoder.layer.0.attention.self.query.lora_B.weight",
                       "base_model.model.bert.encoder.layer.0.attention.self.value.lora_A.weight",
                       "base_model.model.bert.encoder.layer.0.attention.self.value.lora_B.weight",
                       "base_model.model.bert.encoder.layer.1.attention.self.query.lora_A.weight",
                       "base_model.model.bert.encoder.layer.1.attention.self.query.lora_B.weight",
                       "base_model.model.bert.encoder.layer.1.attention.self.value.lora_A.weight",
                       "base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight",
                       "base_model.model.classifier.bias", "base_model.model.classifier.weight"}));
  const auto config = io::read_json(dir / "adapter_config.json");
  EXPECT_EQ(config["modules_to_save"], nlohmann::json({"classifier"}));
  EXPECT_EQ(config["target_modules"], nlohmann::json({"query", "value"}));
  torch::Tensor trained;
  {
    torch::NoGradGuard no_grad;
    trained = run(f).logits;
  }
  BertFixture g = load();
  load_adapter(dir, *g.model, g.info);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(run(g).logits, trained));
  fs::remove_all(dir);
}

TEST(BertAdapters, PromptPrefixAndMamRun) {
  for (const std::string kind : {"prompt", "prefix", "mam"}) {
    BertFixture f = load();
    AdapterSpec s;
    s.kind = kind;
    s.prompt.num_virtual_tokens = 3;
    s.prefix.num_virtual_tokens = 3;
    s.prefix.encoder_hidden_size = 16;
    s.mam.prefix = s.prefix;
    AdapterSet set = inject(*f.model, s, f.info);
    if (kind == "prompt") {
      EXPECT_EQ(set.site_names(), std::vector<std::string>{"bert.embeddings"});
    }
    if (kind == "prefix") {
      EXPECT_EQ(set.shared.size(), 1u);
      EXPECT_EQ(count_parameters(*f.model).trainable,
                PrefixGeneratorImpl::expected_num_parameters(2, 64, 4, 16, 3, 16));
    }
    auto out = run(f, true);
    EXPECT_GT(max_diff(out.logits, f.ref.at("logits")), 1e-5) << kind;
    out.loss.backward();
    std::set<const void*> owned;
    for (const auto& p : set.trainable_parameters(*f.model)) owned.insert(p.unsafeGetTensorImpl());
    for (const auto& p : f.model->named_parameters())
      EXPECT_EQ(p.value().grad().defined(), owned.count(p.value().unsafeGetTensorImpl()) > 0) << kind << " " << p.key();
  }
}
