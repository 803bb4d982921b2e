// Few-shot adaptation splits of held-out tasks.
#pragma once
#include <cstdint>
#include <vector>

#include "data/task.h"

namespace peft::data {

struct FewShotSplit {
  std::vector<Example> train;  // the k adaptation examples
  std::vector<Example> test;   // evaluation examples
};

// k examples of a held-out task, drawn with a seeded portable RNG from Task::examples (the few-shot pool),
// leaving out any pool example whose id or input text also occurs in the test set, so train and test are
// disjoint. The test set is Task::test_examples, or, when the task has none (BBH), the pool minus the k.
// Where the task has a label_set the draw is stratified: labels take turns (in a seeded order), each giving
// its next example, until k are drawn; so every label appears before any appears twice.
// k larger than the usable pool is an InputError naming the task.
FewShotSplit make_fewshot_split(const Task& task, size_t k, uint64_t seed);

}  // namespace peft::data
