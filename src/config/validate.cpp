// Cross-key checks (marian's config_validator): each check is one `if` with a message naming the key it blames.
#include "config/validate.h"

#include <algorithm>
#include <regex>
#include <set>

namespace peft {
namespace {

template <class T>
std::string to_text(const T& v) {
  if constexpr (std::is_same_v<T, std::string>) {
    return v;
  } else {
    return std::to_string(v);
  }
}

template <class T>
void check_unique(const std::string& key, const std::vector<T>& values, std::vector<ConfigProblem>& out) {
  std::set<T> seen;
  for (const T& v : values)
    if (!seen.insert(v).second) {
      out.push_back({key, "'" + to_text(v) + "' is listed twice"});
      return;
    }
}

void check_regex(const std::string& key, const std::string& pattern, std::vector<ConfigProblem>& out) {
  try {
    std::regex re(pattern);
  } catch (const std::regex_error& e) {
    out.push_back({key, "invalid regular expression '" + pattern + "' (" + e.what() + ")"});
  }
}

}  // namespace

std::vector<ConfigProblem> validate_config(const Config& c) {
  std::vector<ConfigProblem> out;

  // Poly/MHR route over an inventory of LoRA skills: other adapter kinds have nothing to route.
  if (c.routing.method != "none" && c.adapter.kind != "lora")
    out.push_back({"routing.method", c.routing.method + " routes over LoRA skills and needs adapter.kind lora, got '" +
                                         c.adapter.kind + "'"});
  // Poly is MHR with a single head; several heads under `poly` would silently be MHR.
  if (c.routing.method == "poly" && c.routing.n_heads != 1)
    out.push_back({"routing.n_heads", "must be 1 when routing.method is poly (use mhr for several heads), got " +
                                          std::to_string(c.routing.n_heads)});
  if (c.routing.method == "mhr" && c.routing.n_heads < 1)
    out.push_back({"routing.n_heads", "must be >= 1 when routing.method is mhr, got " +
                                          std::to_string(c.routing.n_heads)});

  // AdaMix mixes copies of a bottleneck adapter after the FFN (pfeiffer placement) or of LoRA, without a router.
  if (c.adamix.enabled && c.adapter.kind != "lora" && c.adapter.kind != "pfeiffer")
    out.push_back({"adamix.enabled", "needs adapter.kind lora or pfeiffer, got '" + c.adapter.kind + "'"});
  if (c.adamix.enabled && c.routing.method != "none")
    out.push_back({"adamix.enabled", "cannot be combined with routing.method " + c.routing.method});

  // LibTorch 1.13 has no half-precision matmul on CPU.
  if (c.model.dtype == "float16" && c.run.device == "cpu")
    out.push_back({"model.dtype", "float16 needs run.device cuda (use bfloat16 or float32 on cpu)"});
  if (c.train.bf16 && c.model.dtype == "float16")
    out.push_back({"train.bf16", "cannot be combined with model.dtype float16"});

  // A held-out task that is also trained on makes the few-shot numbers meaningless.
  for (const std::string& t : c.data.test_tasks)
    if (std::find(c.data.train_tasks.begin(), c.data.train_tasks.end(), t) != c.data.train_tasks.end()) {
      out.push_back({"data.test_tasks", "task '" + t + "' is also in data.train_tasks"});
      break;
    }
  check_unique("data.train_tasks", c.data.train_tasks, out);
  check_unique("data.test_tasks", c.data.test_tasks, out);
  check_unique("adapt.tasks", c.adapt.tasks, out);
  check_unique("adapt.variants", c.adapt.variants, out);
  check_unique("adapt.seeds", c.adapt.seeds, out);
  check_unique("eval.metrics", c.eval.metrics, out);

  if (c.adapt.variants.empty()) out.push_back({"adapt.variants", "must name at least one variant"});
  if (c.adapt.seeds.empty()) out.push_back({"adapt.seeds", "must list at least one seed"});
  if (c.eval.metrics.empty()) out.push_back({"eval.metrics", "must name at least one metric"});

  check_regex("adapter.target_modules", c.adapter.target_modules, out);
  for (const std::string& m : c.adapter.modules_to_save) check_regex("adapter.modules_to_save", m, out);

  return out;
}

}  // namespace peft
