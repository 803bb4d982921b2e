#include "support/input_error.h"
#include "io/checkpoint.h"

#include <gtest/gtest.h>

#include "common/error.h"
#include "io/temp_dir.h"

namespace peft::io {
namespace {

using test::TempDir;
using test::write_text;

using test::input_error;

// Module paths as in a transformers model: `dense.weight`, `dense.bias`, `norm.weight`.
struct Tiny : torch::nn::Module {
  Tiny() {
    dense = register_module("dense", torch::nn::Linear(8, 4));
    norm = register_module("norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({4})));
    register_buffer("scale", torch::ones({2}));
  }
  torch::nn::Linear dense{nullptr};
  torch::nn::LayerNorm norm{nullptr};
};

TEST(LoadWeights, CopiesEveryTensorByName) {
  Tiny m;
  TensorMap t = {{"dense.weight", torch::randn({4, 8})}, {"dense.bias", torch::randn({4})},
                 {"norm.weight", torch::randn({4})},     {"norm.bias", torch::randn({4})},
                 {"scale", torch::tensor({2.0f, 3.0f})}, {"embeddings.position_ids", torch::arange(4)}};
  load_weights(m, t, "dir/model.safetensors", {"embeddings.position_ids"});
  EXPECT_TRUE(torch::equal(m.dense->weight, t["dense.weight"]));
  EXPECT_TRUE(torch::equal(m.norm->bias, t["norm.bias"]));
  EXPECT_TRUE(torch::equal(m.named_buffers()["scale"], t["scale"]));
  EXPECT_TRUE(m.dense->weight.requires_grad());
  // A copy, not an alias of the (possibly memory-mapped) source.
  EXPECT_NE(m.dense->weight.data_ptr(), t["dense.weight"].data_ptr());
}

TEST(LoadWeights, ReportsEveryMissingUnexpectedAndMisshapedNameInOneLine) {
  Tiny m;
  const torch::Tensor before = m.norm->weight.clone();
  TensorMap t = {{"dense.weight", torch::zeros({8, 4})},  // transposed
                 {"norm.weight", torch::zeros({4})},
                 {"scale", torch::zeros({2})},
                 {"extra.weight", torch::zeros({1})}};
  EXPECT_EQ(input_error([&] { load_weights(m, t, "dir/model.safetensors"); }),
            "dir/model.safetensors: wrong shape for 'dense.weight': file [8,4] vs model [4,8]; "
            "missing tensor 'dense.bias'; missing tensor 'norm.bias'; unexpected tensor 'extra.weight'");
  // Nothing was copied: a failed load leaves the module as it was.
  EXPECT_TRUE(torch::equal(m.norm->weight, before));
}

TEST(ReadJson, SyntaxErrorNamesFileAndLine) {
  TempDir dir;
  write_text(dir / "config.json", "{\n  \"a\": 1,\n  \"b\": ,\n}\n");
  const std::string msg = input_error([&] { read_json(dir / "config.json"); });
  EXPECT_EQ(msg.rfind((dir / "config.json").string() + ":3: invalid JSON: ", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_EQ(input_error([&] { read_json(dir / "absent.json"); }),
            (dir / "absent.json").string() + ": cannot open file");
}

TEST(ReadHfCheckpoint, ReadsConfigAndSingleFile) {
  TempDir dir;
  write_text(dir / "config.json", R"({"model_type": "bert", "hidden_size": 4})");
  write_safetensors(dir / "model.safetensors", {{"w", torch::ones({2, 2}, torch::kFloat16)}});
  const HfCheckpoint c = read_hf_checkpoint(dir.path);
  EXPECT_EQ(c.config["hidden_size"], 4);
  EXPECT_EQ(c.dir, dir.path);
  ASSERT_EQ(c.tensors.size(), 1u);
  EXPECT_EQ(c.tensors.at("w").scalar_type(), torch::kFloat32);
}

TEST(ReadHfCheckpoint, MergesShardsThroughTheIndex) {
  TempDir dir;
  write_text(dir / "config.json", "{}");
  write_safetensors(dir / "model-00001-of-00002.safetensors", {{"a", torch::ones({2})}, {"b", torch::zeros({3})}});
  write_safetensors(dir / "model-00002-of-00002.safetensors", {{"c", torch::full({1}, 7.0f)}});
  write_text(dir / "model.safetensors.index.json",
             R"({"metadata": {"total_size": 24}, "weight_map": {"a": "model-00001-of-00002.safetensors",)"
             R"( "b": "model-00001-of-00002.safetensors", "c": "model-00002-of-00002.safetensors"}})");
  const HfCheckpoint c = read_hf_checkpoint(dir.path);
  ASSERT_EQ(c.tensors.size(), 3u);
  EXPECT_EQ(c.tensors.at("c").item<float>(), 7.0f);
  EXPECT_EQ(c.tensors.at("b").sizes(), torch::IntArrayRef({3}));

  // The index promising a tensor its shard lacks.
  write_text(dir / "model.safetensors.index.json",
             R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "d": "model-00002-of-00002.safetensors"}})");
  EXPECT_EQ(input_error([&] { read_hf_checkpoint(dir.path); }),
            (dir / "model-00002-of-00002.safetensors").string() +
                ": missing tensor 'd' listed in model.safetensors.index.json");
}

TEST(ReadHfCheckpoint, PytorchBinOnlyExplainsHowToConvert) {
  TempDir dir;
  write_text(dir / "config.json", "{}");
  write_text(dir / "pytorch_model.bin", "not read");
  const std::string d = dir.path.string();
  EXPECT_EQ(input_error([&] { read_hf_checkpoint(dir.path); }),
            d + "/pytorch_model.bin: PyTorch pickle checkpoints are not read; convert to safetensors with: "
                "python -c \"from transformers import AutoModel; AutoModel.from_pretrained('" +
                d + "').save_pretrained('" + d + "', safe_serialization=True)\"");
}

TEST(ReadHfCheckpoint, MissingFilesAreNamed) {
  TempDir dir;
  EXPECT_EQ(input_error([&] { read_hf_checkpoint(dir.path); }),
            (dir / "config.json").string() + ": missing (a Hugging Face model folder needs config.json)");
  write_text(dir / "config.json", "{}");
  EXPECT_EQ(input_error([&] { read_hf_checkpoint(dir.path); }),
            (dir / "model.safetensors").string() +
                ": missing (no model.safetensors or model.safetensors.index.json in the folder)");
  EXPECT_EQ(input_error([&] { read_hf_checkpoint(dir / "nope"); }),
            (dir / "nope").string() + ": not a directory (expected a Hugging Face model folder with config.json)");
}

}  // namespace
}  // namespace peft::io
