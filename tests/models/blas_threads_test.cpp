// common/threads.h as the models see it: set_cpu_threads sizes OpenBLAS's pool and shortens its idle spin,
// and matrix products stay right after OpenBLAS restarts its workers. (Lives with the models' tests because
// common's test binary does not link LibTorch.)
#include <gtest/gtest.h>

#include <dlfcn.h>

#include "common/threads.h"

namespace peft {
namespace {

TEST(BlasThreads, OpenBlasWorkersSleepAfterAShortSpinAndProductsStayRight) {
  using IntFn = int (*)();
  auto thread_timeout = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "openblas_thread_timeout"));
  if (thread_timeout == nullptr) GTEST_SKIP() << "the BLAS is not OpenBLAS: nothing to shorten";
  const char* before = getenv("OPENBLAS_THREAD_TIMEOUT");
  set_cpu_threads(2);
  if (before == nullptr) {
    ASSERT_NE(getenv("OPENBLAS_THREAD_TIMEOUT"), nullptr);
    EXPECT_STREQ(getenv("OPENBLAS_THREAD_TIMEOUT"), "4");
    EXPECT_EQ(thread_timeout(), 4);  // OpenBLAS re-read its environment
  }
  torch::manual_seed(1);
  const auto a = torch::randn({300, 200}), b = torch::randn({200, 100});
  const auto expected = (a.to(torch::kDouble).matmul(b.to(torch::kDouble))).to(torch::kFloat);
  for (int threads : {2, 1, 2}) {  // the restarted pool, then resized
    set_cpu_threads(threads);
    EXPECT_TRUE(torch::allclose(torch::mm(a, b), expected, 1e-4, 1e-4)) << threads << " threads";
  }
  set_cpu_threads(1);
}

}  // namespace
}  // namespace peft
