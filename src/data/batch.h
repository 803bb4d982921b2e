// Padded batches of encoded examples, and the multi-task batch stream used for training.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "data/prompt.h"
#include "data/random.h"
#include "data/sampler.h"

namespace peft::data {

inline constexpr int64_t kLabelPadId = -100;  // ignored by the cross-entropy loss (HF convention)

// Row-major flattened arrays; the training code turns them into tensors of the given shapes.
struct Batch {
  int64_t batch_size = 0;
  int64_t source_length = 0;            // S: longest source in the batch
  int64_t target_length = 0;            // T: longest target in the batch
  std::vector<int64_t> task_ids;        // [B]
  std::vector<int64_t> input_ids;       // [B*S], pad_id after each source
  std::vector<int64_t> attention_mask;  // [B*S], 1 on tokens, 0 on padding
  std::vector<int64_t> labels;          // [B*T], kLabelPadId after each target
  std::vector<int32_t> example_indices; // [B], Encoded::example_index (to find the references)
};

// Pads rows to the longest source / target among them.
Batch collate(const std::vector<const Encoded*>& rows, int64_t pad_id);

// In-order batches over a list (evaluation): ceil(n / batch_size) batches, the last one smaller.
std::vector<Batch> sequential_batches(const std::vector<Encoded>& examples, int64_t batch_size, int64_t pad_id);

struct BatchOptions {
  int64_t batch_size = 8;
  Sampling sampling = Sampling::kProportional;
  double temperature = 1.0;
  uint64_t seed = 0;
  // 0: every row draws its own task (rows then sorted by task id, stable, so routing can group them);
  // g > 0: each batch draws g tasks from the mixture and splits its rows evenly among them (g = 1: one task
  // per batch), rows sorted by task.
  int tasks_per_batch = 0;
};

// Endless stream of training batches over several tasks. Tasks are picked by a MixtureSampler; within a task
// examples come in a seeded random order, reshuffled every epoch of that task. State is a short string, and
// restore() continues exactly where state() was taken:
//   "batcher-v1 <seed> <step> <n_tasks> (<epoch> <cursor>) x n_tasks | mixture-v1 <seed> <steps> <draws>".
class MultiTaskBatcher {
 public:
  // `tasks[i]` are the training examples of task i (task_ids in batches are the Encoded::task_index values).
  // The vectors must outlive the batcher.
  MultiTaskBatcher(std::vector<const std::vector<Encoded>*> tasks, const BatchOptions& options, int64_t pad_id);

  Batch next();
  std::string state() const;
  void restore(const std::string& state);
  const MixtureSampler& mixture() const { return mixture_; }

 private:
  struct Stream {
    uint64_t epoch = 0;
    uint64_t cursor = 0;
    std::vector<uint32_t> order;
  };
  const Encoded* draw_from(size_t task);
  void reshuffle(size_t task);

  std::vector<const std::vector<Encoded>*> tasks_;
  BatchOptions options_;
  int64_t pad_id_;
  MixtureSampler mixture_;
  std::vector<Stream> streams_;
  uint64_t step_ = 0;
};

}  // namespace peft::data
