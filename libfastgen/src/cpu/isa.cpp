#include "cpu/isa.h"

#include <cpuid.h>

#include <cstdlib>

#include "core/knobs.h"

namespace fg {
namespace cpu {
namespace {

// cpuid + xgetbv by hand: __builtin_cpu_supports needs compiler-rt's __cpu_model, which does
// not link into a shared library with zig's toolchain.
Isa detect() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return Isa::Generic;
  const bool fma = c & (1u << 12), osxsave = c & (1u << 27), avx = c & (1u << 28);
  if (!osxsave || !avx) return Isa::Generic;
  unsigned xlo, xhi;
  __asm__("xgetbv" : "=a"(xlo), "=d"(xhi) : "c"(0));
  const bool ymm_os = (xlo & 0x6) == 0x6, zmm_os = (xlo & 0xE6) == 0xE6;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return Isa::Generic;
  const bool avx2 = b & (1u << 5), avx512f = b & (1u << 16), avx512dq = b & (1u << 17);
  if (avx512f && avx512dq && avx2 && fma && zmm_os) return Isa::Avx512;
  if (avx2 && fma && ymm_os) return Isa::Avx2;
  return Isa::Generic;
}

}  // namespace

Isa cpu_isa() {
  static const Isa isa = [] {
    Isa best = detect();
    if (const char *cap = fg_knob_str(FG_KNOB_CPU_ISA)) {
      if (!strcmp(cap, "generic")) best = Isa::Generic;
      else if (!strcmp(cap, "avx2") && best == Isa::Avx512) best = Isa::Avx2;
    }
    return best;
  }();
  return isa;
}

}  // namespace cpu
}  // namespace fg
