// Progress of long work: step, loss, tokens/s and ETA. Redraws one line on a terminal, prints plain
// lines (every `every` steps) when the output is a file or a pipe.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace peft::train {

class Progress {
 public:
  Progress(std::string label, int64_t total, int64_t start = 0, int64_t every = 10);
  void update(int64_t done, double loss, int64_t tokens);
  void finish();
  double elapsed_seconds() const;

 private:
  std::string label_;
  int64_t total_, start_, every_, tokens_ = 0, last_printed_ = -1;
  bool tty_;
  std::chrono::steady_clock::time_point t0_;
};

std::string format_duration(double seconds);

}  // namespace peft::train
