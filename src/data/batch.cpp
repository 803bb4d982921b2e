#include "data/batch.h"

#include <algorithm>
#include <numeric>
#include <sstream>

#include "common/error.h"

namespace peft::data {

Batch collate(const std::vector<const Encoded*>& rows, int64_t pad_id) {
  Batch b;
  b.batch_size = static_cast<int64_t>(rows.size());
  for (const auto* r : rows) {
    b.source_length = std::max<int64_t>(b.source_length, static_cast<int64_t>(r->source_ids.size()));
    b.target_length = std::max<int64_t>(b.target_length, static_cast<int64_t>(r->target_ids.size()));
  }
  b.input_ids.assign(static_cast<size_t>(b.batch_size * b.source_length), pad_id);
  b.attention_mask.assign(b.input_ids.size(), 0);
  b.labels.assign(static_cast<size_t>(b.batch_size * b.target_length), kLabelPadId);
  for (size_t i = 0; i < rows.size(); ++i) {
    const Encoded& r = *rows[i];
    b.task_ids.push_back(r.task_index);
    b.example_indices.push_back(r.example_index);
    std::copy(r.source_ids.begin(), r.source_ids.end(), b.input_ids.begin() + static_cast<long>(i * b.source_length));
    std::fill_n(b.attention_mask.begin() + static_cast<long>(i * b.source_length), r.source_ids.size(), 1);
    std::copy(r.target_ids.begin(), r.target_ids.end(), b.labels.begin() + static_cast<long>(i * b.target_length));
  }
  return b;
}

std::vector<Batch> sequential_batches(const std::vector<Encoded>& examples, int64_t batch_size, int64_t pad_id) {
  if (batch_size <= 0) fail_input("batch size must be positive, got " + std::to_string(batch_size));
  std::vector<Batch> out;
  for (size_t start = 0; start < examples.size(); start += static_cast<size_t>(batch_size)) {
    std::vector<const Encoded*> rows;
    for (size_t i = start; i < std::min(examples.size(), start + static_cast<size_t>(batch_size)); ++i)
      rows.push_back(&examples[i]);
    out.push_back(collate(rows, pad_id));
  }
  return out;
}

namespace {
std::vector<size_t> sizes_of(const std::vector<const std::vector<Encoded>*>& tasks) {
  std::vector<size_t> s;
  for (const auto* t : tasks) s.push_back(t->size());
  return s;
}
}  // namespace

MultiTaskBatcher::MultiTaskBatcher(std::vector<const std::vector<Encoded>*> tasks, const BatchOptions& options,
                                   int64_t pad_id)
    : tasks_(std::move(tasks)),
      options_(options),
      pad_id_(pad_id),
      mixture_(sizes_of(tasks_), options.sampling, options.temperature, derive_seed(options.seed, "mixture")),
      streams_(tasks_.size()) {
  if (options_.batch_size <= 0) fail_input("batch size must be positive, got " + std::to_string(options_.batch_size));
  for (size_t t = 0; t < tasks_.size(); ++t) reshuffle(t);
}

void MultiTaskBatcher::reshuffle(size_t task) {
  Stream& s = streams_[task];
  s.order.resize(tasks_[task]->size());
  std::iota(s.order.begin(), s.order.end(), 0u);
  CountingRng rng(derive_seed(options_.seed, "order/" + std::to_string(task), s.epoch));
  portable_shuffle(s.order, rng);
}

const Encoded* MultiTaskBatcher::draw_from(size_t task) {
  Stream& s = streams_[task];
  if (s.cursor >= s.order.size()) {  // epoch of this task done: next epoch, new order
    ++s.epoch;
    s.cursor = 0;
    reshuffle(task);
  }
  return &(*tasks_[task])[s.order[s.cursor++]];
}

Batch MultiTaskBatcher::next() {
  const auto B = static_cast<size_t>(options_.batch_size);
  std::vector<size_t> row_tasks;
  if (options_.tasks_per_batch <= 0) {
    for (size_t i = 0; i < B; ++i) row_tasks.push_back(mixture_.next_task());
  } else {
    const size_t g = std::min(static_cast<size_t>(options_.tasks_per_batch), B);
    for (size_t k = 0; k < g; ++k) {
      const size_t task = mixture_.next_task();
      const size_t n = B / g + (k < B % g ? 1 : 0);
      row_tasks.insert(row_tasks.end(), n, task);
    }
  }
  // Sorted by task so that rows of one task are contiguous (routing can process them as one group).
  std::stable_sort(row_tasks.begin(), row_tasks.end());
  std::vector<const Encoded*> rows;
  for (size_t t : row_tasks) rows.push_back(draw_from(t));
  ++step_;
  return collate(rows, pad_id_);
}

std::string MultiTaskBatcher::state() const {
  std::ostringstream out;
  out << "batcher-v1 " << options_.seed << " " << step_ << " " << tasks_.size();
  for (const auto& s : streams_) out << " " << s.epoch << " " << s.cursor;
  out << " | " << mixture_.state();
  return out.str();
}

void MultiTaskBatcher::restore(const std::string& state) {
  const auto bar = state.find(" | ");
  std::istringstream in(state.substr(0, bar));
  std::string tag;
  uint64_t seed = 0, step = 0;
  size_t n = 0;
  const std::string bad = "batcher state: malformed or for a different task list";
  if (bar == std::string::npos || !(in >> tag >> seed >> step >> n) || tag != "batcher-v1" || n != tasks_.size())
    fail_input(bad);
  std::vector<Stream> streams(n);
  for (auto& s : streams)
    if (!(in >> s.epoch >> s.cursor)) fail_input(bad);
  mixture_.restore(state.substr(bar + 3));
  options_.seed = seed;  // per-task orders derive from it
  streams_ = std::move(streams);
  for (size_t t = 0; t < n; ++t) {
    reshuffle(t);
    if (streams_[t].cursor > streams_[t].order.size()) fail_input(bad);
  }
  step_ = step;
}

}  // namespace peft::data
