#include "common/worker_pool.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace peft {

namespace {

class WorkerPool {
 public:
  ~WorkerPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
  }

  void run(int64_t n, int parts, const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard<std::mutex> one_job(job_mutex_);
    grow(parts - 1);
    auto range = [n, parts](int part) { return std::make_pair(n * part / parts, n * (part + 1) / parts); };
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job_ = &fn;
      job_parts_ = parts;
      job_range_ = range;
      pending_ = parts - 1;
      ++generation_;
    }
    wake_.notify_all();
    const auto [b, e] = range(0);
    fn(b, e);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }

 private:
  void grow(int wanted) {
    while (static_cast<int>(workers_.size()) < wanted) {
      const int index = static_cast<int>(workers_.size()) + 1;  // part 0 is the caller's
      workers_.emplace_back([this, index] { work(index); });
    }
  }

  void work(int part) {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int64_t, int64_t)>* fn = nullptr;
      std::pair<int64_t, int64_t> r;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || generation_ != seen; });
        if (stopping_) return;
        seen = generation_;
        if (part >= job_parts_) continue;  // a job with fewer parts than workers
        fn = job_;
        r = job_range_(part);
      }
      (*fn)(r.first, r.second);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --pending_;
      }
      done_.notify_one();
    }
  }

  std::mutex job_mutex_;  // one job at a time
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;
  std::function<std::pair<int64_t, int64_t>(int)> job_range_;
  int job_parts_ = 0;
  int pending_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
};

}  // namespace

void run_in_parts(int64_t n, int parts, const std::function<void(int64_t, int64_t)>& fn) {
  if (parts <= 1 || n <= 1) {
    fn(0, n);
    return;
  }
  static WorkerPool pool;
  pool.run(n, parts, fn);
}

}  // namespace peft
