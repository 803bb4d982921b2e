// `peft export ADAPTER --merge --out DIR`: a plain Hugging Face checkpoint with the adapter folded in.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "adapters/checkpoint.h"
#include "adapters/inject.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "models/t5/load.h"
#include "train/inventory.h"

namespace fs = std::filesystem;
using namespace peft;

TEST(Export, MergedCheckpointReproducesTheAdaptedModel) {
  const fs::path base = fs::absolute(fs::path(PEFT_SOURCE_DIR) / "tests" / "fixtures" / "t5v11_tiny");
  const fs::path tmp = fs::temp_directory_path() / "peft_export_test";
  fs::remove_all(tmp);
  auto model = load_t5(io::read_hf_checkpoint(base));
  adapters::AdapterSpec spec;
  spec.kind = "lora";
  spec.lora.r = 4;
  spec.base_model_name_or_path = base.string();
  auto set = adapters::inject(*model, spec, train::model_info(*model));
  {
    torch::NoGradGuard g;
    for (auto& [name, p] : set.named_trainable_parameters(*model)) p.normal_(0, 0.2);  // a trained-looking adapter
  }
  adapters::save_adapter(tmp / "adapter", *model, set);

  const std::string cmd = std::string(PEFT_BINARY) + " export " + (tmp / "adapter").string() + " --merge --out " +
                          (tmp / "merged").string() + " > /dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const auto merged_ckpt = io::read_hf_checkpoint(tmp / "merged");
  for (const auto& [name, t] : merged_ckpt.tensors) EXPECT_EQ(name.find("lora"), std::string::npos) << name;
  auto merged = load_t5(merged_ckpt);  // a plain T5: every stored name is a backbone name

  ForwardContext ctx;
  const auto ids = torch::tensor({{5, 9, 17, 1}}, torch::kLong);
  const auto mask = torch::ones_like(ids);
  const auto labels = torch::tensor({{3, 8, 1}}, torch::kLong);
  torch::NoGradGuard g;
  const auto adapted = model->forward(ids, mask, {}, {}, labels, ctx).logits;
  const auto folded = merged->forward(ids, mask, {}, {}, labels, ctx).logits;
  EXPECT_GT((adapted - load_t5(io::read_hf_checkpoint(base))->forward(ids, mask, {}, {}, labels, ctx).logits)
                .abs().max().item<double>(), 1e-3);  // the adapter does change the model
  // fp32: folding B·A into W reorders the sums; logits reach ~30, so compare at 1e-4 (the fixtures' tolerance).
  EXPECT_TRUE(torch::allclose(adapted, folded, 1e-4, 1e-4)) << (adapted - folded).abs().max().item<double>();
  fs::remove_all(tmp);
}

TEST(Export, RefusesWithoutMerge) {
  const std::string cmd = std::string(PEFT_BINARY) + " export /nonexistent --out /tmp/x > /dev/null 2>&1";
  EXPECT_EQ(WEXITSTATUS(std::system(cmd.c_str())), 2);
}
