#include "train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace peft::train {

std::string format_duration(double s) {
  char buf[32];
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", (long long)(t / 3600), (long long)(t % 3600 / 60));
  else
    std::snprintf(buf, sizeof buf, "%lldm%02llds", (long long)(t / 60), (long long)(t % 60));
  return buf;
}

Progress::Progress(std::string label, int64_t total, int64_t start, int64_t every)
    : label_(std::move(label)), total_(total), start_(start), every_(every > 0 ? every : 1),
      tty_(::isatty(STDERR_FILENO)), t0_(std::chrono::steady_clock::now()) {}

double Progress::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
}

void Progress::update(int64_t done, double loss, int64_t tokens) {
  tokens_ += tokens;
  const bool last = done >= total_;
  if (!tty_ && !last && done % every_ != 0) return;
  const double secs = elapsed_seconds();
  const double steps_done = static_cast<double>(done - start_);
  const double rate = secs > 0 ? steps_done / secs : 0;
  const double eta = rate > 0 ? (total_ - done) / rate : 0;
  const double tok_rate = secs > 0 ? tokens_ / secs : 0;
  std::fprintf(stderr, "%s%s step %lld/%lld  loss %.4f  %.0f tok/s  %.2f step/s  elapsed %s  ETA %s%s",
               tty_ ? "\r\033[K" : "", label_.c_str(), (long long)done, (long long)total_, loss, tok_rate, rate,
               format_duration(secs).c_str(), format_duration(eta).c_str(), tty_ ? "" : "\n");
  std::fflush(stderr);
  last_printed_ = done;
}

void Progress::finish() {
  if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace peft::train
