// Few-shot adaptation (train/adapt.h, train/variants.h) on a hand-made pre-training folder: a random tiny T5
// (d_model 16, 1+1 layers, 2 heads) with an MHR inventory (S = 2, h = 2, r = 4) saved by Inventory::save, and
// a tiny JSON Lines suite with one training and one held-out yes/no task.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>

#include "adapters/checkpoint.h"
#include "adapters/lora.h"
#include "common/error.h"
#include "common/files.h"
#include "data/batch.h"
#include "data/codec.h"
#include "eval/report.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/t5/load.h"
#include "routing/poly.h"
#include "tokenizer/tokenizer.h"
#include "train/adapt.h"
#include "train/step.h"
#include "train/inventory.h"
#include "train/variants.h"
#include "train/workspace.h"

using namespace peft;
namespace fs = std::filesystem;

namespace {

const fs::path kTokenizerDir = fs::path(PEFT_SOURCE_DIR "/../shared/models/t5-tokenizer");
constexpr int64_t kSites = 12;  // q,k,v,o of encoder self-, decoder self- and cross-attention
constexpr int64_t kS = 2, kH = 2, kR = 4, kD = 16;

std::string jsonl_line(const std::string& id, const std::string& task, const std::string& input,
                       const std::string& output) {
  return nlohmann::json{{"id", id}, {"task", task}, {"definition", "Answer yes or no."}, {"input", input},
                        {"outputs", {output}}}
             .dump() +
         "\n";
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

// Everything the tests share, built once per process in a temp dir.
struct World {
  fs::path root, model_dir, data_dir, pretrained;
  io::TensorMap inventory;  // as saved

  World() {
    static std::atomic<int> counter{0};
    root = fs::temp_directory_path() / ("peft_adapt_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    fs::remove_all(root);
    model_dir = root / "model";
    data_dir = root / "data";
    pretrained = root / "pretrain";
    fs::create_directories(model_dir);
    fs::create_directories(pretrained);

    // Random tiny T5, saved as a Hugging Face checkpoint.
    torch::manual_seed(0);
    T5Config c;
    c.vocab_size = 32128;
    c.d_model = kD;
    c.d_kv = 8;
    c.d_ff = 32;
    c.num_layers = 1;
    c.num_decoder_layers = 1;
    c.num_heads = 2;
    c.dropout_rate = 0.0;
    T5ForConditionalGeneration model(c);
    io::TensorMap weights;
    for (const auto& p : model->named_parameters()) weights[p.key()] = p.value().detach().clone();
    io::write_safetensors(model_dir / "model.safetensors", weights);
    write_file_atomic(model_dir / "config.json", c.to_json().dump(2));

    // Suite: one training task, one held-out yes/no task (pool of 8, test set of 4).
    std::string train, pool, test;
    for (int i = 0; i < 6; ++i)
      train += jsonl_line("t" + std::to_string(i), "task_train", "is " + std::to_string(i) + " even?", i % 2 ? "no" : "yes");
    for (int i = 0; i < 8; ++i)
      pool += jsonl_line("p" + std::to_string(i), "task_heldout", "is the sky blue " + std::to_string(i) + "?",
                         i % 2 ? "no" : "yes");
    for (int i = 0; i < 4; ++i)
      test += jsonl_line("e" + std::to_string(i), "task_heldout", "is grass green " + std::to_string(i) + "?",
                         i % 2 ? "no" : "yes");
    write(data_dir / "train" / "task_train.jsonl", train);
    write(data_dir / "test" / "task_heldout.train.jsonl", pool);
    write(data_dir / "test" / "task_heldout.test.jsonl", test);

    // An MHR inventory "pre-trained" on task_train: random A, B and routing, saved as pretrain does.
    const Config pc = pretrain_config();
    auto m = load_t5(io::read_hf_checkpoint(model_dir));
    for (auto& p : m->parameters()) p.set_requires_grad(false);
    const auto inv = train::attach_inventory(*m, pc, {"task_train"});
    {
      torch::NoGradGuard no_grad;
      for (auto& [name, poly] : inv.sites) {
        poly->lora_b.normal_(0, 0.5);
        poly->router->module_logits.normal_(0, 1);
      }
    }
    inv.save(pretrained, *m, pc);
    inventory = io::read_safetensors(pretrained / "inventory.safetensors");
  }
  ~World() {
    std::error_code ec;
    fs::remove_all(root, ec);
  }

  Config pretrain_config() const {
    Config c = default_config();
    c.model.path = model_dir.string();
    c.routing.method = "mhr";
    c.routing.n_skills = kS;
    c.routing.n_heads = kH;
    c.adapter.kind = "lora";
    c.adapter.r = kR;
    return c;
  }

  Config adapt_config(const std::string& out) const {
    Config c = pretrain_config();
    c.tokenizer.path = kTokenizerDir.string();
    c.data.format = "jsonl";
    c.data.train_dir = data_dir.string();
    c.data.test_dir = data_dir.string();
    c.data.cache_dir = "";
    c.data.max_source_length = 64;
    c.data.max_target_length = 8;
    c.data.num_positive_examples = 0;
    c.data.eval_examples_per_task = 0;
    c.adapt.pretrained = pretrained.string();
    c.adapt.shots = 4;
    c.adapt.steps = 3;
    c.adapt.batch_size = 2;
    c.adapt.seeds = {13};
    c.eval.max_new_tokens = 3;
    c.eval.batch_size = 8;
    c.train.save_every = 0;
    c.train.log_every = 1;
    c.run.out = (root / out).string();
    c.run.threads = 1;
    return c;
  }

  T5ForConditionalGeneration backbone(const Config& c) const { return train::load_frozen_t5(c, torch::kCPU); }
};

World& world() {
  static World w;
  return w;
}

#define SKIP_WITHOUT_TOKENIZER()                                                                           \
  if (!fs::exists(kTokenizerDir / "spiece.model"))                                                         \
    GTEST_SKIP() << "T5 tokenizer not found at " << kTokenizerDir << " (the shared models folder is absent)";

std::map<std::string, torch::Tensor> snapshot(const torch::nn::Module& m) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : m.named_parameters()) out[p.key()] = p.value().detach().clone();
  return out;
}

struct CellFixture {
  std::unique_ptr<Tokenizer> tokenizer;
  train::TaskData tasks;
  train::CellData cell;
};

CellFixture cell_fixture(const Config& c) {
  CellFixture f;
  f.tokenizer = load_tokenizer(train::tokenizer_dir(c));
  f.tasks = train::load_task_data(c, *f.tokenizer);
  const size_t i = f.tasks.test_tasks.at(0);
  f.cell = train::make_cell_data(f.tasks.suite.tasks[i], f.tasks.encoded[i], 4, 13, data::codec_from(*f.tokenizer),
                                 train::prompt_options(c));
  return f;
}

}  // namespace

TEST(AdaptVariants, UnknownVariantIsAnInputErrorListingTheValidNames) {
  try {
    train::find_variant("mhr-x");
    FAIL() << "no error";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("adapt.variants: unknown variant 'mhr-x'"), std::string::npos) << msg;
    for (const char* name : {"poly", "mhr-z", "mhr-mu", "lora", "ia3", "adapter", "compacter", "prefix", "mam",
                             "shared-lora", "full", "zero-shot"})
      EXPECT_NE(msg.find(name), std::string::npos) << name;
  }
  // run_adapt rejects it before reading any data.
  Config c = default_config();
  c.adapt.variants = {"mhr-z", "nope"};
  c.adapt.pretrained = "";
  EXPECT_THROW(
      {
        try {
          train::run_adapt(c, false);
        } catch (const InputError& e) {
          EXPECT_NE(std::string(e.what()).find("adapt.variants: unknown variant 'nope'"), std::string::npos);
          throw;
        }
      },
      InputError);
}

TEST(AdaptVariants, CollapseIsThePerHeadSkillMeanAndEqualsUniformMix) {
  torch::manual_seed(3);
  routing::PolyOptions o;
  o.n_skills = 3;
  o.n_heads = 2;
  o.rank = 2;
  routing::PolyLoRA poly(8, 6, o, "x");
  { torch::NoGradGuard g; poly->lora_b.normal_(); }
  const auto [a, b] = train::collapse_skills(poly->lora_a, poly->lora_b);
  ASSERT_EQ(a.sizes(), (std::vector<int64_t>{8, 2}));
  ASSERT_EQ(b.sizes(), (std::vector<int64_t>{2, 6}));
  // Head 1 owns input rows 4..7 and output columns 3..5.
  EXPECT_TRUE(torch::allclose(a.slice(0, 4, 8), poly->lora_a[1].mean(0)));
  EXPECT_TRUE(torch::allclose(b.slice(1, 3, 6), poly->lora_b[1].mean(0)));
  const auto [ma, mb] = poly->mix(torch::full({1, 2, 3}, 1.0 / 3.0));
  EXPECT_TRUE(torch::allclose(ma[0], a, 1e-6, 1e-7));
  EXPECT_TRUE(torch::allclose(mb[0], b, 1e-6, 1e-7));
}

TEST(AdaptVariants, WrongPretrainedRunsAreRejectedClearly) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  const Config c = w.adapt_config("wrong");
  const auto pre = train::open_pretrained(w.pretrained);
  EXPECT_EQ(pre.method, "mhr");
  auto model = w.backbone(c);
  auto message = [&](const std::string& variant) {
    try {
      train::attach_variant(*model, variant, pre, c);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("poly-z").find("needs a poly inventory"), std::string::npos) << message("poly-z");
  EXPECT_NE(message("poly-z").find("mhr-z"), std::string::npos);
  EXPECT_NE(message("shared-lora").find("needs a shared-LoRA pre-training run"), std::string::npos);
  EXPECT_THROW(train::open_pretrained(w.data_dir), InputError);
  const auto none = train::open_pretrained("");
  try {
    train::check_variant_runs_on(train::find_variant("mhr"), none);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("adapt.pretrained: empty", 0), 0u) << e.what();
  }
}

TEST(AdaptVariants, ParameterCountsPerVariant) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  const Config c = w.adapt_config("counts");
  const auto pre = train::open_pretrained(w.pretrained);
  auto count = [&](const std::string& v) {
    auto model = w.backbone(c);
    return train::attach_variant(*model, v, pre, c).trainable_params;
  };
  // Every site is 16 -> 16: inventory S·r·(d_in + d_out), fresh routing row h·S, collapsed LoRA r·(d_in + d_out).
  EXPECT_EQ(count("mhr"), kSites * (kS * kR * 2 * kD + kH * kS));
  EXPECT_EQ(count("mhr-z"), kSites * kH * kS);
  EXPECT_EQ(count("mhr-mu"), kSites * kR * 2 * kD);
  EXPECT_EQ(count("lora"), kSites * kR * 2 * kD);
  EXPECT_EQ(count("zero-shot"), 0);
  auto model = w.backbone(c);
  const auto full = train::attach_variant(*model, "full", pre, c);
  EXPECT_EQ(full.trainable_params, adapters::count_parameters(*model).total);
  // mhr: the inventory at adapt.learning_rate, the routing at adapt.z_learning_rate.
  auto m2 = w.backbone(c);
  const auto mhr = train::attach_variant(*m2, "mhr", pre, c);
  ASSERT_EQ(mhr.groups.size(), 2u);
  EXPECT_EQ(mhr.groups[0].name, "inventory");
  EXPECT_DOUBLE_EQ(mhr.groups[0].learning_rate, c.adapt.learning_rate);
  EXPECT_EQ(mhr.groups[1].name, "routing");
  EXPECT_DOUBLE_EQ(mhr.groups[1].learning_rate, c.adapt.z_learning_rate);
  for (const auto& [name, poly] : mhr.inventory.sites) EXPECT_EQ(poly->router->module_logits.sizes()[0], 1);
}

TEST(Adapt, MhrZTrainsOnlyTheFreshRoutingRow) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  const Config c = w.adapt_config("mhr_z");
  auto f = cell_fixture(c);
  auto model = w.backbone(c);
  torch::manual_seed(13);
  auto attached = train::attach_variant(*model, "mhr-z", train::open_pretrained(w.pretrained), c);
  ASSERT_EQ(attached.groups.size(), 1u);
  EXPECT_EQ(attached.groups[0].name, "routing");
  EXPECT_DOUBLE_EQ(attached.groups[0].learning_rate, c.adapt.z_learning_rate);
  const auto before = snapshot(*model);
  for (const auto& [name, poly] : attached.inventory.sites) {
    // The fresh row ~ U(±1e-3), not the pre-trained task's row.
    EXPECT_EQ(poly->router->module_logits.sizes(), (std::vector<int64_t>{1, kH * kS}));
    EXPECT_LE(poly->router->module_logits.abs().max().item<double>(), 1e-3);
  }
  train::CellOptions o;
  o.out_dir = fs::path(c.run.out) / "cell";
  o.seed = 13;
  const auto row = train::run_cell(*model, attached, f.cell, *f.tokenizer, c, o);
  EXPECT_EQ(row.steps, 3);
  EXPECT_EQ(row.trainable_params, kSites * kH * kS);
  EXPECT_EQ(row.variant, "mhr-z");
  EXPECT_EQ(row.task, "task_heldout");
  EXPECT_TRUE(row.metrics.count("rouge_l") && row.metrics.count("exact_match") && row.metrics.count("accuracy"));

  int logits_changed = 0;
  for (const auto& p : model->named_parameters()) {
    const std::string& name = p.key();
    if (name.find("module_logits") != std::string::npos) {
      logits_changed += !torch::equal(p.value(), before.at(name));
    } else {
      EXPECT_TRUE(torch::equal(p.value(), before.at(name))) << name;  // backbone and inventory untouched
    }
  }
  EXPECT_EQ(logits_changed, kSites);
  for (const auto& [name, poly] : attached.inventory.sites) {
    EXPECT_TRUE(torch::equal(poly->lora_a, w.inventory.at(name + ".poly_lora.lora_a"))) << name;
    EXPECT_TRUE(torch::equal(poly->lora_b, w.inventory.at(name + ".poly_lora.lora_b"))) << name;
  }
  // The loop's checkpoint holds exactly the routing logits.
  const auto saved = io::read_safetensors(o.out_dir / "checkpoint" / "trainable.safetensors");
  EXPECT_EQ(static_cast<int64_t>(saved.size()), kSites);
  for (const auto& [name, t] : saved) EXPECT_NE(name.find("router.module_logits"), std::string::npos) << name;
}

TEST(Adapt, MhrMuStartsExactlyFromTheInventoryAverageWithoutRouting) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  const Config c = w.adapt_config("mhr_mu");
  const auto pre = train::open_pretrained(w.pretrained);
  auto model = w.backbone(c);
  auto attached = train::attach_variant(*model, "mhr-mu", pre, c);
  EXPECT_FALSE(attached.routed());
  for (const auto& p : model->named_parameters()) {
    EXPECT_EQ(p.key().find("module_logits"), std::string::npos) << p.key();
    EXPECT_EQ(p.key().find("poly_lora"), std::string::npos) << p.key();
  }
  ASSERT_EQ(static_cast<int64_t>(attached.adapter_set.adapters.size()), kSites);
  for (const auto& adapter : attached.adapter_set.adapters) {
    auto lora = std::dynamic_pointer_cast<adapters::LoraAdapter>(adapter);
    ASSERT_TRUE(lora);
    EXPECT_DOUBLE_EQ(lora->scaling(), 1.0 / kR);
    const auto& A = w.inventory.at(adapter->site_name() + ".poly_lora.lora_a");  // [h, S, d/h, r]
    const auto& B = w.inventory.at(adapter->site_name() + ".poly_lora.lora_b");  // [h, S, r, d/h]
    // Written out: head q's mean over its two skills, heads stacked (S = 2: the mean is exact in fp32).
    const auto a_bar = torch::cat({(A[0][0] + A[0][1]) / 2, (A[1][0] + A[1][1]) / 2}, 0);  // [d_in, r]
    const auto b_bar = torch::cat({(B[0][0] + B[0][1]) / 2, (B[1][0] + B[1][1]) / 2}, 1);  // [r, d_out]
    EXPECT_TRUE(torch::equal(lora->lora_A->weight, a_bar.t())) << adapter->site_name();
    EXPECT_TRUE(torch::equal(lora->lora_B->weight, b_bar.t())) << adapter->site_name();
  }
  // End to end: the μ model's logits equal the inventory's under uniform routing (equal logits per head).
  auto routed = w.backbone(c);
  const auto inv = train::load_inventory(w.pretrained, *routed);
  {
    torch::NoGradGuard g;
    for (auto& [name, poly] : inv.sites) poly->router->module_logits.fill_(0.3);
  }
  model->eval();
  routed->eval();
  const auto input_ids = torch::tensor({{100, 200, 300, 1}, {5, 6, 1, 0}}, torch::kLong);
  const auto mask = torch::tensor({{1, 1, 1, 1}, {1, 1, 1, 0}}, torch::kLong);
  const auto labels = torch::tensor({{7, 8, 1}, {9, 1, -100}}, torch::kLong);
  ForwardContext ctx;
  ctx.task_ids = torch::zeros({2}, torch::kLong);
  torch::NoGradGuard g;
  const auto mu_logits = model->forward(input_ids, mask, {}, {}, labels, ctx).logits;
  const auto inv_logits = routed->forward(input_ids, mask, {}, {}, labels, ctx).logits;
  EXPECT_LT((mu_logits - inv_logits).abs().max().item<double>(), 1e-5);
  auto bare = w.backbone(c);
  bare->eval();
  const auto bare_logits = bare->forward(input_ids, mask, {}, {}, labels, ctx).logits;
  EXPECT_GT((mu_logits - bare_logits).abs().max().item<double>(), 1e-4);  // the adapter does something
}

TEST(Adapt, ZeroShotTrainsNothingAndChangesNothing) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  const Config c = w.adapt_config("zero_shot");
  auto f = cell_fixture(c);
  auto model = w.backbone(c);
  auto attached = train::attach_variant(*model, "zero-shot", train::open_pretrained(w.pretrained), c);
  EXPECT_TRUE(attached.groups.empty());
  EXPECT_EQ(attached.trainable_params, 0);
  EXPECT_EQ(adapters::count_parameters(*model).trainable, 0);
  EXPECT_EQ(static_cast<int64_t>(attached.adapter_set.adapters.size()), kSites);  // the μ adapter
  const auto before = snapshot(*model);
  train::CellOptions o;
  o.out_dir = fs::path(c.run.out) / "cell";
  const auto row = train::run_cell(*model, attached, f.cell, *f.tokenizer, c, o);
  EXPECT_EQ(row.steps, 0);
  EXPECT_EQ(row.trainable_params, 0);
  for (const auto& p : model->named_parameters()) EXPECT_TRUE(torch::equal(p.value(), before.at(p.key()))) << p.key();
  EXPECT_FALSE(fs::exists(o.out_dir / "checkpoint"));
}

TEST(Adapt, SweepWritesOneRowPerCellAndARerunSkipsDoneCells) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  Config c = w.adapt_config("sweep");
  c.adapt.variants = {"mhr-z", "zero-shot"};
  c.adapt.seeds = {13, 42};
  const auto first = train::run_adapt(c, false);
  EXPECT_EQ(first.cells_run, 4);
  EXPECT_EQ(first.cells_skipped, 0);
  const fs::path out = c.run.out;
  auto rows = eval::read_results_jsonl(out / "results.jsonl");
  ASSERT_EQ(rows.size(), 4u);
  std::set<std::tuple<std::string, std::string, int64_t>> keys;
  for (const auto& r : rows) {
    keys.insert({r.task, r.variant, r.seed});
    EXPECT_EQ(r.task, "task_heldout");
    EXPECT_EQ(r.trainable_params, r.variant == "mhr-z" ? kSites * kH * kS : 0);
    EXPECT_EQ(r.steps, r.variant == "mhr-z" ? 3 : 0);
    EXPECT_TRUE(r.metrics.count("rouge_l") && r.metrics.count("accuracy"));
  }
  EXPECT_EQ(keys.size(), 4u);
  EXPECT_TRUE(fs::exists(out / "cells" / "task_heldout" / "mhr-z" / "seed42" / "checkpoint" / "state.json"));
  EXPECT_TRUE(fs::exists(out / "results.csv"));
  EXPECT_TRUE(fs::exists(out / "results.png"));
  const std::string md = read_file(out / "summary.md");
  EXPECT_NE(md.find("mhr-z"), std::string::npos);
  EXPECT_NE(md.find("zero-shot"), std::string::npos);
  // Zero-shot evaluation is deterministic: both seeds score the same.
  std::map<int64_t, double> zero;
  for (const auto& r : rows)
    if (r.variant == "zero-shot") zero[r.seed] = r.metrics.at("rouge_l");
  EXPECT_DOUBLE_EQ(zero.at(13), zero.at(42));

  // Rerun with one more seed: only the new cells run.
  c.adapt.seeds = {13, 42, 58};
  const auto second = train::run_adapt(c, true);
  EXPECT_EQ(second.cells_run, 2);
  EXPECT_EQ(second.cells_skipped, 4);
  rows = eval::read_results_jsonl(out / "results.jsonl");
  EXPECT_EQ(rows.size(), 6u);
  EXPECT_EQ(second.rows.size(), 6u);
  const auto third = train::run_adapt(c, true);
  EXPECT_EQ(third.cells_run, 0);
  EXPECT_EQ(third.cells_skipped, 6);
}

TEST(Adapt, FreshAdapterVariantsAttachTrainAndCountTheirParameters) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  Config c = w.adapt_config("fresh");
  c.adapt.steps = 2;
  c.adapter.reduction_factor = 4;  // d_model 16: bottleneck 4
  c.adapter.prefix_length = 3;
  c.adapter.prefix_hidden = 8;
  c.adapter.phm_dim = 2;
  // (compacter is left out: train::adapter_spec keeps Compacter's own reduction factor 32, no bottleneck at d = 16)
  auto f = cell_fixture(c);
  const auto pre = train::open_pretrained(w.pretrained);
  for (const char* v : {"lora", "ia3", "adapter", "prefix", "mam", "full"}) {
    SCOPED_TRACE(v);
    auto model = w.backbone(c);
    torch::manual_seed(13);
    auto attached = train::attach_variant(*model, v, pre, c);
    ASSERT_FALSE(attached.groups.empty());
    EXPECT_GT(attached.trainable_params, 0);
    EXPECT_EQ(attached.trainable_params, adapters::count_parameters(*model).trainable);
    const auto before = snapshot(*model);
    train::CellOptions o;
    o.out_dir = fs::path(c.run.out) / v;
    o.seed = 13;
    const auto row = train::run_cell(*model, attached, f.cell, *f.tokenizer, c, o);
    EXPECT_EQ(row.steps, 2);
    EXPECT_EQ(row.trainable_params, attached.trainable_params);
    // Only trainable tensors moved.
    std::set<const void*> trained;
    for (const auto& g : attached.groups)
      for (const auto& [name, p] : g.params) trained.insert(p.unsafeGetTensorImpl());
    int moved = 0;
    for (const auto& p : model->named_parameters()) {
      const bool same = torch::equal(p.value(), before.at(p.key()));
      if (!trained.count(p.value().unsafeGetTensorImpl())) {
        EXPECT_TRUE(same) << p.key();
      }
      moved += !same;
    }
    EXPECT_GT(moved, 0);
  }
  // adapter.kind selects the bottleneck / compacter flavour.
  Config h = c;
  h.adapter.kind = "houlsby";
  auto m1 = w.backbone(h), m2 = w.backbone(c);
  const auto houlsby = train::attach_variant(*m1, "adapter", pre, h);
  const auto pfeiffer = train::attach_variant(*m2, "adapter", pre, c);
  EXPECT_EQ(houlsby.adapter_set.spec.bottleneck.config, "houlsby");
  EXPECT_EQ(pfeiffer.adapter_set.spec.bottleneck.config, "pfeiffer");
  EXPECT_EQ(houlsby.trainable_params, 2 * pfeiffer.trainable_params);  // after attention and after the FFN
}

TEST(Adapt, SharedLoraFineTunesThePretrainedAdapter) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  const fs::path shared_run = w.root / "shared_pretrain";
  Config c = w.adapt_config("shared");
  c.adapt.pretrained = shared_run.string();
  io::TensorMap saved;
  {
    auto m = w.backbone(c);
    adapters::AdapterSpec spec;
    spec.kind = "lora";
    spec.lora.r = kR;
    auto set = adapters::inject(*m, spec, train::model_info(*m));
    torch::NoGradGuard g;
    for (auto& p : set.trainable_parameters(*m)) p.normal_();
    adapters::save_adapter(shared_run / "adapter", *m, set);
    for (const auto& p : m->named_parameters())
      if (p.key().find("lora_") != std::string::npos) saved[p.key()] = p.value().detach().clone();
  }
  const auto pre = train::open_pretrained(shared_run);
  EXPECT_TRUE(pre.has_shared_adapter());
  auto model = w.backbone(c);
  auto attached = train::attach_variant(*model, "shared-lora", pre, c);
  EXPECT_EQ(attached.trainable_params, kSites * kR * 2 * kD);
  int loaded = 0;
  for (const auto& p : model->named_parameters())
    if (saved.count(p.key())) loaded += torch::equal(p.value(), saved.at(p.key()));
  EXPECT_EQ(loaded, 2 * kSites);
  // zero-shot evaluates the shared adapter as is; the inventory variants refuse this run.
  auto m2 = w.backbone(c);
  const auto zero = train::attach_variant(*m2, "zero-shot", pre, c);
  EXPECT_EQ(zero.trainable_params, 0);
  EXPECT_EQ(static_cast<int64_t>(zero.adapter_set.adapters.size()), kSites);
  auto m3 = w.backbone(c);
  EXPECT_THROW(train::attach_variant(*m3, "mhr", pre, c), InputError);

  // adapt.more_pretrained: each variant adapts the first run it can run on.
  const std::vector<train::Pretrained> runs = {pre, train::open_pretrained(w.pretrained)};
  EXPECT_EQ(train::pretrained_for(train::find_variant("mhr-z"), runs).dir, w.pretrained);
  EXPECT_EQ(train::pretrained_for(train::find_variant("shared-lora"), runs).dir, shared_run);
  EXPECT_EQ(train::pretrained_for(train::find_variant("lora"), runs).dir, shared_run);
  EXPECT_EQ(train::pretrained_for(train::find_variant("zero-shot"), runs).dir, shared_run);
  try {
    train::pretrained_for(train::find_variant("poly"), runs);
    ADD_FAILURE() << "no Poly run among them";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("variant 'poly' needs a Poly/MHR inventory"), std::string::npos) << e.what();
  }
}

TEST(Adapt, AdamixTrainsItsCopiesAndSavesTheMergedAdapterInTheBaseFormat) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  Config c = w.adapt_config("adamix");
  c.adapt.steps = 2;
  c.adapter.reduction_factor = 4;  // d_model 16: bottleneck 4
  c.adamix.num_experts = 3;
  c.adamix.share = "up";
  c.adamix.consistency_weight = 1.0;
  const auto pre = train::open_pretrained(w.pretrained);
  auto f = cell_fixture(c);

  // Parameter counts, during training (every copy) and after merging (one adapter of the base kind).
  auto m0 = w.backbone(c);
  const auto mix_adapter = train::attach_variant(*m0, "adamix-adapter", pre, c);
  constexpr int64_t kM = kD / 4, kFfnSites = 2;  // Pfeiffer: after each FFN (1 encoder + 1 decoder layer)
  EXPECT_EQ(mix_adapter.trainable_params, kFfnSites * (3 * (kD * kM + kM) + (kM * kD + kD)));  // E Down, one Up
  EXPECT_EQ(mix_adapter.merged_params, kFfnSites * ((kD * kM + kM) + (kM * kD + kD)));
  EXPECT_EQ(mix_adapter.consistency_weight, 1.0);

  auto model = w.backbone(c);
  torch::manual_seed(13);
  auto attached = train::attach_variant(*model, "adamix", pre, c);
  EXPECT_EQ(attached.trainable_params, kSites * (3 * kR * kD + kR * kD));  // E copies of A, one shared B
  EXPECT_EQ(attached.merged_params, kSites * kR * 2 * kD);                 // = the lora variant's count
  const auto before = snapshot(*model);
  train::CellOptions o;
  o.out_dir = fs::path(c.run.out) / "adamix";
  o.seed = 13;
  const auto row = train::run_cell(*model, attached, f.cell, *f.tokenizer, c, o);
  EXPECT_EQ(row.trainable_params, attached.trainable_params);
  EXPECT_EQ(row.merged_params, attached.merged_params);

  // Drawn copies moved; a copy no forward drew stays bit-identical (its grad is undefined, so AdamW neither
  // decays it nor moves it by momentum). 2 steps x 2 passes draw 4 of 3 copies per site: some stay untouched.
  int moved = 0, untouched = 0;
  for (const auto& p : model->named_parameters()) {
    if (p.key().find(".lora_A.") == std::string::npos) continue;
    (torch::equal(p.value(), before.at(p.key())) ? untouched : moved)++;
  }
  EXPECT_GT(moved, 0);
  EXPECT_GT(untouched, 0);

  // The saved adapter is a plain LoRA holding the mean of the copies: loaded into a fresh backbone it gives
  // the logits the AdaMix model computes in evaluation.
  const nlohmann::json saved_config = io::read_json(o.out_dir / "adapter" / "adapter_config.json");
  EXPECT_EQ(saved_config.at("peft_type"), "LORA");
  auto plain = w.backbone(c);
  const auto loaded = adapters::load_adapter(o.out_dir / "adapter", *plain, train::model_info(*plain));
  EXPECT_EQ(loaded.spec.kind, "lora");
  EXPECT_EQ(static_cast<int64_t>(loaded.adapters.size()), kSites);
  EXPECT_EQ(loaded.num_adapter_parameters(), attached.merged_params);
  torch::manual_seed(5);
  const auto ids = torch::randint(3, 500, {2, 7});
  const auto mask = torch::ones({2, 7}, torch::kLong);
  const auto labels = torch::randint(3, 500, {2, 4});
  ForwardContext eval_ctx;
  torch::NoGradGuard no_grad;
  model->eval();
  const auto expected = model->forward(ids, mask, {}, {}, labels, eval_ctx).logits;
  const auto got = plain->forward(ids, mask, {}, {}, labels, eval_ctx).logits;
  EXPECT_LT((expected - got).abs().max().item<double>(), 1e-5);
  EXPECT_GT((expected - w.backbone(c)->forward(ids, mask, {}, {}, labels, eval_ctx).logits).abs().max().item<double>(),
            1e-4);  // the adapter did change the model
}

TEST(Adapt, AdamixConsistencyTermIsZeroForOneRouteAndPositiveForTwo) {
  SKIP_WITHOUT_TOKENIZER();
  auto& w = world();
  Config c = w.adapt_config("adamix_consistency");
  const auto pre = train::open_pretrained(w.pretrained);
  auto f = cell_fixture(c);
  std::vector<const data::Encoded*> rows;
  for (const auto& e : f.cell.train) rows.push_back(&e);
  const data::Batch batch = data::collate(rows, f.tokenizer->pad_id());
  auto loss_of = [&](int64_t experts, double weight) {
    Config cc = c;
    cc.adamix.num_experts = experts;
    cc.adamix.share = "none";
    auto model = w.backbone(cc);
    torch::manual_seed(13);
    auto attached = train::attach_variant(*model, "adamix", pre, cc);
    {
      torch::NoGradGuard no_grad;
      for (auto& p : attached.adapter_set.trainable_parameters(*model)) p.normal_(0, 0.5);  // copies differ
    }
    torch::manual_seed(99);  // the same routes for the first pass in every call
    return train::seq2seq_train_step(*model, batch, torch::kCPU, false, weight).loss.item<double>();
  };
  // One copy: both passes take the same route (dropout is 0), the KL term vanishes.
  EXPECT_NEAR(loss_of(1, 1.0), loss_of(1, 0.0), 1e-6);
  // Three copies: the second pass routes differently, the term is positive and scales with its weight.
  const double ce = loss_of(3, 0.0), with1 = loss_of(3, 1.0), with2 = loss_of(3, 2.0);
  EXPECT_GT(with1, ce + 1e-4);
  EXPECT_NEAR(with2 - ce, 2 * (with1 - ce), 1e-4 * std::max(1.0, with1));
}
