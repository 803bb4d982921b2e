// Load-time measurement, not a pass/fail check (timings depend on the machine): run with
//   test_io --gtest_also_run_disabled_tests --gtest_filter='*LoadTime*'
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>

#include "io/safetensors.h"
#include "io/temp_dir.h"

namespace peft::io {
namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

TEST(SafetensorsBench, DISABLED_LoadTime250MB) {
  test::TempDir dir;
  const auto path = dir / "big.safetensors";
  TensorMap tensors;  // ~250 MB in BERT-base-like pieces: 64 x [1024, 1024] F32 (4 MiB each) -> 256 MiB
  for (int i = 0; i < 64; ++i) tensors["layer." + std::to_string(i) + ".weight"] = torch::randn({1024, 1024});
  auto t0 = std::chrono::steady_clock::now();
  write_safetensors(path, tensors);
  std::cout << "write 256 MiB: " << seconds_since(t0) << " s\n";
  tensors.clear();

  t0 = std::chrono::steady_clock::now();
  TensorMap same = read_safetensors(path, torch::kFloat32);
  const double map_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  double sum = 0;  // touching every page: the disk / page-cache part the mapping defers
  for (auto& [name, t] : same) sum += t.sum().item<double>();
  const double touch_s = seconds_since(t0);
  same.clear();

  t0 = std::chrono::steady_clock::now();
  TensorMap half = read_safetensors(path, torch::kFloat16);
  const double convert_s = seconds_since(t0);
  std::cout << "read F32->F32 (mmap, zero copy): " << map_s * 1e3 << " ms; first pass over the data: "
            << touch_s * 1e3 << " ms; read F32->F16 (converting copy): " << convert_s * 1e3 << " ms (sum " << sum
            << ")\n";
  EXPECT_EQ(half.size(), 64u);
}

}  // namespace
}  // namespace peft::io
