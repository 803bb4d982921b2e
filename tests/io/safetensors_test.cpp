#include "support/input_error.h"
#include "io/safetensors.h"

#include <gtest/gtest.h>

#include <fstream>

#include "common/error.h"
#include "common/files.h"
#include "io/checkpoint.h"
#include "io/temp_dir.h"

namespace peft::io {
namespace {

using test::TempDir;
using test::write_raw_safetensors;

const std::filesystem::path kFixtures = std::filesystem::path(PEFT_SOURCE_DIR) / "tests" / "fixtures";

using test::input_error;

std::string bytes_of(std::initializer_list<uint16_t> values) {
  std::string s;
  for (uint16_t v : values) {
    s.push_back(static_cast<char>(v & 0xff));
    s.push_back(static_cast<char>(v >> 8));
  }
  return s;
}

TEST(Safetensors, RoundTripsEveryDtype) {
  TempDir dir;
  TensorMap tensors;
  tensors["f64"] = torch::tensor({1.5, -2.25, 1e300}, torch::kFloat64);
  tensors["f32"] = torch::randn({3, 5});
  tensors["f16"] = torch::randn({2, 3}).to(torch::kFloat16);
  tensors["bf16"] = torch::randn({4}).to(torch::kBFloat16);
  tensors["i64"] = torch::tensor({int64_t{1} << 40, int64_t{-7}}, torch::kInt64);
  tensors["i32"] = torch::tensor({-3, 2147483647}, torch::kInt32);
  tensors["i16"] = torch::tensor({-300, 300}, torch::kInt16);
  tensors["i8"] = torch::tensor({-128, 127}, torch::kInt8);
  tensors["u8"] = torch::tensor({0, 255}, torch::kUInt8);
  tensors["bool"] = torch::tensor({true, false, true}, torch::kBool);
  tensors["scalar"] = torch::tensor(3.25f);
  tensors["empty"] = torch::zeros({0, 3});
  tensors["strided"] = torch::arange(12, torch::kFloat32).view({3, 4}).t();  // written contiguous
  const auto path = dir / "all.safetensors";
  write_safetensors(path, tensors, {{"format", "pt"}, {"note", "x"}});

  const TensorMap back = read_safetensors(path, std::nullopt);
  ASSERT_EQ(back.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    SCOPED_TRACE(name);
    const torch::Tensor& b = back.at(name);
    EXPECT_EQ(b.scalar_type(), t.scalar_type());
    EXPECT_EQ(b.sizes(), t.sizes());
    EXPECT_TRUE(torch::equal(b, t));
  }
  std::map<std::string, std::string> metadata;
  const auto header = read_safetensors_header(path, &metadata);
  EXPECT_EQ(metadata, (std::map<std::string, std::string>{{"format", "pt"}, {"note", "x"}}));
  EXPECT_EQ(header.at("bf16").dtype, "BF16");
  EXPECT_EQ(header.at("bool").dtype, "BOOL");
  EXPECT_EQ(header.at("strided").shape, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(header.at("scalar").shape, std::vector<int64_t>{});

  // Header padded with spaces to a multiple of 8, tensors in name order.
  const std::string raw = read_file(path);
  uint64_t n = 0;
  for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(raw[i]);
  EXPECT_EQ(n % 8, 0u);
  const std::string json = raw.substr(8, n);
  EXPECT_LT(json.find("\"bf16\""), json.find("\"bool\""));
  EXPECT_LT(json.find("\"u8\""), json.find("__metadata__"));
  EXPECT_EQ(json.back(), ' ');
  // No temporary file left behind.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir.path), std::filesystem::directory_iterator()), 1);
}

TEST(Safetensors, ReadsTheFixtureAndWritesItBackByteIdentical) {
  const auto path = kFixtures / "bert_tiny" / "model.safetensors";
  const nlohmann::json ref = read_json(kFixtures / "bert_tiny" / "ref.json");
  const TensorMap tensors = read_safetensors(path, std::nullopt);
  ASSERT_EQ(tensors.size(), ref["saved_tensor_names"].size());
  for (const auto& name : ref["saved_tensor_names"]) {
    const auto& t = tensors.at(name.get<std::string>());
    EXPECT_EQ(t.scalar_type(), torch::kFloat32);
    EXPECT_EQ(t.sizes().vec(), ref["shapes"][name.get<std::string>()].get<std::vector<int64_t>>());
  }
  TempDir dir;
  write_safetensors(dir / "copy.safetensors", tensors);
  EXPECT_EQ(sha256_hex(read_file(dir / "copy.safetensors")), ref["model_safetensors_sha256"].get<std::string>());
}

TEST(Safetensors, ConvertsHalfAndBfloat16ToFloat32) {
  TempDir dir;
  const auto path = dir / "half.safetensors";
  // F16: 1, -2, 0x3555 = 0.333251953125, 65504 (max); BF16: 1, -3.140625, 0x3EAB = 0.333984375.
  const std::string data = bytes_of({0x3C00, 0xC000, 0x3555, 0x7BFF}) + bytes_of({0x3F80, 0xC049, 0x3EAB}) +
                           std::string("\x05\x00\x00\x00\x00\x00\x00\x00", 8);
  write_raw_safetensors(path,
                        R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},)"
                        R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},)"
                        R"("i":{"dtype":"I64","shape":[1],"data_offsets":[14,22]}})",
                        data);
  const TensorMap t = read_safetensors(path);  // default: floating tensors as F32
  EXPECT_EQ(t.at("h").scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(t.at("h"), torch::tensor({1.0f, -2.0f, 0.333251953125f, 65504.0f})));
  EXPECT_EQ(t.at("b").scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(t.at("b"), torch::tensor({1.0f, -3.140625f, 0.333984375f})));
  // Integers keep their stored dtype (here at an offset that is not 8-aligned: copied, still right).
  EXPECT_EQ(t.at("i").scalar_type(), torch::kInt64);
  EXPECT_EQ(t.at("i").item<int64_t>(), 5);
  // And the other way: F32 stored, F16 asked for.
  write_safetensors(dir / "f32.safetensors", {{"x", torch::tensor({0.5f, 3.0f})}});
  const auto half = read_safetensors(dir / "f32.safetensors", torch::kFloat16).at("x");
  EXPECT_EQ(half.scalar_type(), torch::kFloat16);
  EXPECT_TRUE(torch::equal(half.to(torch::kFloat32), torch::tensor({0.5f, 3.0f})));
}

TEST(Safetensors, SameDtypeTensorsViewTheMappingAndOutliveTheMap) {
  TempDir dir;
  const auto path = dir / "w.safetensors";
  write_safetensors(path, {{"a", torch::arange(16, torch::kFloat32)}, {"b", torch::arange(8, torch::kFloat32)}});
  torch::Tensor a, b;
  {
    const TensorMap t = read_safetensors(path);
    a = t.at("a");
    b = t.at("b");
  }
  // Zero copy: both are views of one mapping, as far apart as in the file (64 bytes of "a").
  EXPECT_EQ(static_cast<char*>(b.data_ptr()) - static_cast<char*>(a.data_ptr()), 64);
  EXPECT_TRUE(torch::equal(b, torch::arange(8, torch::kFloat32)));  // still mapped after the map is gone
  // Writing into a view changes neither the file nor a second read (private copy-on-write mapping).
  a.fill_(-1.0f);
  EXPECT_TRUE(torch::equal(read_safetensors(path).at("a"), torch::arange(16, torch::kFloat32)));
}

TEST(Safetensors, TruncatedDataNamesFileAndTensor) {
  TempDir dir;
  const auto path = dir / "t.safetensors";
  write_safetensors(path, {{"a", torch::ones({4})}, {"b", torch::ones({8})}});
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 4);
  const std::string msg = input_error([&] { read_safetensors(path); });
  EXPECT_EQ(msg.rfind(path.string() + ": tensor 'b': data_offsets [16,48] beyond the data section (44 bytes", 0), 0u)
      << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  // The header check alone (inspect) sees it too.
  EXPECT_NE(input_error([&] { read_safetensors_header(path); }).find("tensor 'b'"), std::string::npos);
}

TEST(Safetensors, TruncatedHeaderNamesFile) {
  TempDir dir;
  const auto path = dir / "t.safetensors";
  write_safetensors(path, {{"a", torch::ones({4})}});
  std::filesystem::resize_file(path, 20);
  const std::string msg = input_error([&] { read_safetensors(path); });
  EXPECT_NE(msg.find(path.string() + ": safetensors header length "), std::string::npos) << msg;
  EXPECT_NE(msg.find("beyond the file size (20 bytes"), std::string::npos) << msg;
  std::filesystem::resize_file(path, 3);
  EXPECT_EQ(input_error([&] { read_safetensors(path); }),
            path.string() + ": too short for a safetensors file (3 bytes)");
}

TEST(Safetensors, HeaderLyingAboutSizeNamesTensor) {
  TempDir dir;
  const auto path = dir / "lie.safetensors";
  write_raw_safetensors(path, R"({"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,32]}})", std::string(64, '\0'));
  EXPECT_EQ(input_error([&] { read_safetensors(path); }),
            path.string() + ": tensor 'w': data_offsets [0,32] hold 32 bytes but F32 [4,4] needs 64");
}

TEST(Safetensors, OverlappingOffsetsNameBothTensors) {
  TempDir dir;
  const auto path = dir / "overlap.safetensors";
  write_raw_safetensors(path,
                        R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("b":{"dtype":"F32","shape":[4],"data_offsets":[8,24]}})",
                        std::string(24, '\0'));
  EXPECT_EQ(input_error([&] { read_safetensors(path); }),
            path.string() + ": tensor 'b': data_offsets [8,24] overlap tensor 'a'");
}

TEST(Safetensors, UnknownDtypeNamesTensor) {
  TempDir dir;
  const auto path = dir / "dtype.safetensors";
  write_raw_safetensors(path, R"({"q":{"dtype":"F12","shape":[2],"data_offsets":[0,3]}})", std::string(3, '\0'));
  EXPECT_EQ(input_error([&] { read_safetensors(path); }),
            path.string() + ": tensor 'q': unknown or unsupported dtype 'F12'");
}

TEST(Safetensors, MalformedJsonHeaderNamesFile) {
  TempDir dir;
  const auto path = dir / "json.safetensors";
  write_raw_safetensors(path, R"({"q":{"dtype":"F32",)", "");
  const std::string msg = input_error([&] { read_safetensors(path); });
  EXPECT_EQ(msg.rfind(path.string() + ": malformed safetensors header (JSON): ", 0), 0u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  write_raw_safetensors(path, R"({"q":{"dtype":"F32","shape":[1]}})", "");
  EXPECT_EQ(input_error([&] { read_safetensors(path); }),
            path.string() + ": tensor 'q': header entry needs dtype, shape and data_offsets");
}

TEST(Safetensors, MissingFileNamesIt) {
  const std::string msg = input_error([] { read_safetensors("/nonexistent/x.safetensors"); });
  EXPECT_EQ(msg.rfind("/nonexistent/x.safetensors: cannot open file", 0), 0u) << msg;
}

}  // namespace
}  // namespace peft::io
