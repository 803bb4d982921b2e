#include "data/fewshot.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/error.h"
#include "data/random.h"

namespace peft::data {

FewShotSplit make_fewshot_split(const Task& task, size_t k, uint64_t seed) {
  std::set<std::string> test_ids, test_inputs;
  for (const auto& ex : task.test_examples) {
    test_ids.insert(ex.id);
    test_inputs.insert(ex.input);
  }
  std::vector<size_t> pool;
  for (size_t i = 0; i < task.examples.size(); ++i)
    if (!test_ids.count(task.examples[i].id) && !test_inputs.count(task.examples[i].input)) pool.push_back(i);
  if (k > pool.size())
    fail_input("task '" + task.name + "': " + std::to_string(k) + "-shot split asked, but only " +
               std::to_string(pool.size()) + " examples are available apart from the test set");

  CountingRng rng(derive_seed(seed, "fewshot/" + task.name));
  std::vector<size_t> chosen;
  if (task.label_set.empty()) {
    portable_shuffle(pool, rng);
    chosen.assign(pool.begin(), pool.begin() + static_cast<long>(k));
  } else {
    // Group by first reference (label), shuffle each group, then take round-robin over a shuffled label order.
    std::map<std::string, std::vector<size_t>> groups;
    for (size_t i : pool) groups[task.examples[i].outputs.front()].push_back(i);
    std::vector<std::vector<size_t>*> order;
    for (auto& [label, members] : groups) {
      portable_shuffle(members, rng);
      order.push_back(&members);
    }
    portable_shuffle(order, rng);
    for (size_t round = 0; chosen.size() < k; ++round)
      for (auto* g : order)
        if (round < g->size() && chosen.size() < k) chosen.push_back((*g)[round]);
  }
  std::sort(chosen.begin(), chosen.end());  // file order: stable, readable
  FewShotSplit split;
  for (size_t i : chosen) split.train.push_back(task.examples[i]);
  if (!task.test_examples.empty()) {
    split.test = task.test_examples;
  } else {
    // Pool minus the k, and minus any repeat of a chosen input text (BBH has a few duplicates).
    std::set<size_t> taken(chosen.begin(), chosen.end());
    std::set<std::string> taken_inputs;
    for (size_t i : chosen) taken_inputs.insert(task.examples[i].input);
    for (size_t i = 0; i < task.examples.size(); ++i)
      if (!taken.count(i) && !taken_inputs.count(task.examples[i].input)) split.test.push_back(task.examples[i]);
  }
  return split;
}

}  // namespace peft::data
