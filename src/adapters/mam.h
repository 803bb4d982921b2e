// MAM adapter (methods.md §6, He et al.): prefix tuning on every attention (l = 30) plus a scaled parallel
// adapter on every FFN (s = 4, m = min(512, d/2), `lora` init). inject() builds both from these options.
#pragma once
#include <algorithm>

#include "adapters/bottleneck.h"
#include "adapters/prefix.h"

namespace peft::adapters {

struct MamOptions {
  PrefixOptions prefix;               // l = 30, m = 512
  int64_t bottleneck_size = 0;        // 0: min(512, d/2)
  double scaling = 4.0;
  std::string non_linearity = "relu";
};

inline BottleneckOptions mam_parallel_options(const MamOptions& o, int64_t d_model) {
  BottleneckOptions b;
  b.config = "scaled_parallel";
  b.bottleneck_size = o.bottleneck_size > 0 ? o.bottleneck_size : std::min<int64_t>(512, d_model / 2);
  b.scaling = o.scaling;
  b.non_linearity = o.non_linearity;
  b.init = "lora";
  return resolve(b);
}

}  // namespace peft::adapters
