// Run-time choice of the vector ISA for the hot kernels (GEMM, attention). Kernels are written
// once as always_inline templates over the vector width and instantiated inside functions with
// __attribute__((target(...))), so one build runs everywhere and uses what the CPU has.
#pragma once
#include <cstring>

// The vector helpers pass AVX-sized values only between always_inline functions, so the ABI
// change clang warns about for non-inlined calls never happens.
#pragma clang diagnostic ignored "-Wpsabi"

#define FG_INLINE inline __attribute__((always_inline))
#define FG_TARGET_AVX512 __attribute__((target("avx512f,avx512dq,avx2,fma")))
#define FG_TARGET_AVX2 __attribute__((target("avx2,fma")))

namespace fg {
namespace cpu {

enum class Isa { Generic, Avx2, Avx512 };

// Best ISA of this CPU and OS; FASTGEN_CPU_ISA=avx2|generic caps it (to test the other paths).
Isa cpu_isa();

// A vector of VL floats with unaligned load/store and a pairwise sum in a fixed order.
template <int VL>
struct Vec {
  typedef float type __attribute__((vector_size(VL * 4)));
  static FG_INLINE type load(const float *p) {
    type v;
    memcpy(&v, p, sizeof v);
    return v;
  }
  static FG_INLINE void store(float *p, type v) { memcpy(p, &v, sizeof v); }
  static FG_INLINE type splat(float x) {
    type v;
    for (int i = 0; i < VL; i++) v[i] = x;
    return v;
  }
  // Pairwise: lanes i and i + VL/2 first, then halves again (same order for every VL).
  static FG_INLINE float sum(type v);
};

template <>
FG_INLINE float Vec<4>::sum(type v) {
  typedef float v2 __attribute__((vector_size(8)));
  v2 a = __builtin_shufflevector(v, v, 0, 1) + __builtin_shufflevector(v, v, 2, 3);
  return a[0] + a[1];
}
template <>
FG_INLINE float Vec<8>::sum(type v) {
  Vec<4>::type h = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
  return Vec<4>::sum(h);
}
template <>
FG_INLINE float Vec<16>::sum(type v) {
  Vec<8>::type h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) +
                   __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
  return Vec<8>::sum(h);
}

}  // namespace cpu
}  // namespace fg
