#include "common/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

namespace peft {
namespace {

TEST(WorkerPool, EveryIndexRunsExactlyOnceForAnyNumberOfParts) {
  for (int round = 0; round < 200; ++round) {  // many jobs in a row: no lost or repeated wake-up
    const int parts = 1 + round % 5;
    const int64_t n = 1 + round * 7 % 97;
    std::vector<std::atomic<int>> hits(n);
    run_in_parts(n, parts, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) hits[i]++;
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "index " << i << ", parts " << parts;
  }
}

TEST(WorkerPool, RunForEachVisitsEveryIndexOnce) {
  for (int parts : {1, 2, 3}) {
    std::vector<std::atomic<int>> hits(11);
    run_for_each(11, parts, [&](int64_t i) { hits[i]++; });
    for (int64_t i = 0; i < 11; ++i) EXPECT_EQ(hits[i].load(), 1) << "index " << i << ", parts " << parts;
  }
}

TEST(WorkerPool, JobsAfterTheWorkersFellAsleepComplete) {
  // Pauses longer than the workers' spin: each job is posted to sleeping workers, alternately with one
  // posted while they still spin.
  for (int round = 0; round < 6; ++round) {
    std::atomic<int64_t> total{0};
    run_in_parts(64, 2, [&](int64_t b, int64_t e) { total += e - b; });
    EXPECT_EQ(total.load(), 64);
    if (round % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

TEST(WorkerPool, PartsRunOnSeveralThreads) {
  std::mutex m;
  std::set<std::thread::id> ids;
  run_in_parts(4, 4, [&](int64_t, int64_t) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // overlap the parts
    std::lock_guard<std::mutex> lock(m);
    ids.insert(std::this_thread::get_id());
  });
  EXPECT_EQ(ids.size(), 4u);
  EXPECT_EQ(ids.count(std::this_thread::get_id()), 1u);  // part 0 on the caller
}

TEST(WorkerPool, ConcurrentCallersAreSerialisedAndComplete) {
  std::atomic<int64_t> total{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 3; ++c)
    callers.emplace_back([&] {
      for (int j = 0; j < 50; ++j)
        run_in_parts(100, 3, [&](int64_t b, int64_t e) { total += e - b; });
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(total.load(), 3 * 50 * 100);
}

}  // namespace
}  // namespace peft
