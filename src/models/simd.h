// Eight-float vectors (GCC/Clang vector extensions) for peft's own CPU kernels (skinny_linear,
// decode_attention). Compiled for AVX2 they are one register; for the baseline x86-64 target, two SSE ones.
// Each kernel is compiled twice (generic and target("avx2,fma")) and picks one at run time.
#pragma once
#pragma GCC diagnostic ignored "-Wpsabi"  // v8f is passed only between inlined helpers: no ABI to keep

#include <cstdint>

namespace peft::simd {

typedef float v8f __attribute__((vector_size(32)));

__attribute__((always_inline)) inline v8f load8(const float* p) {
  v8f v;
  __builtin_memcpy(&v, p, sizeof v);  // unaligned load
  return v;
}

__attribute__((always_inline)) inline void store8(float* p, v8f v) { __builtin_memcpy(p, &v, sizeof v); }

__attribute__((always_inline)) inline float sum8(v8f v) { return ((v[0] + v[4]) + (v[1] + v[5])) + ((v[2] + v[6]) + (v[3] + v[7])); }

// sum_i a[i] * b[i]: eight lanes, then the tail.
__attribute__((always_inline)) inline float dot(const float* a, const float* b, int64_t n) {
  const int64_t n_vec = n / 8 * 8;
  v8f acc = {};
  for (int64_t i = 0; i < n_vec; i += 8) acc += load8(a + i) * load8(b + i);
  float s = sum8(acc);
  for (int64_t i = n_vec; i < n; ++i) s += a[i] * b[i];
  return s;
}

// Whether the CPU runs AVX2 + FMA code (the variant each kernel picks at run time).
inline bool cpu_has_avx2() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

}  // namespace peft::simd
