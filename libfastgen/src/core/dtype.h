// Host-side element types of fastgen.h's fg_dtype: sizes and exact widening to fp32.
#pragma once
#include <cstdint>
#include <cstring>

#include "core/fp8.h"
#include "fastgen.h"

namespace fg {

// Bytes per element; 0 for a value that is no fg_dtype.
inline size_t dtype_size(int32_t dtype) {
  switch (dtype) {
    case FG_F32: return 4;
    case FG_F16: case FG_BF16: return 2;
    case FG_F8_E4M3: return 1;
    default: return 0;
  }
}

inline const char *dtype_name(int32_t dtype) {
  switch (dtype) {
    case FG_F32: return "F32";
    case FG_F16: return "F16";
    case FG_BF16: return "BF16";
    case FG_F8_E4M3: return "F8_E4M3";
    default: return "?";
  }
}

inline float bf16_to_f32(uint16_t h) {
  const uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

inline float f16_to_f32(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF, bits;
  if (exp == 0x1F) {  // inf / nan
    bits = sign | 0x7F800000 | (mant << 13);
  } else if (exp != 0) {  // normal
    bits = sign | ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {  // zero
    bits = sign;
  } else {  // subnormal: renormalize
    int e = -1;
    do {
      e++;
      mant <<= 1;
    } while ((mant & 0x400) == 0);
    bits = sign | ((uint32_t)(112 - e) << 23) | ((mant & 0x3FF) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

// out[i] = src[i] as fp32 for n elements of dtype (every fg_dtype widens exactly).
inline void to_f32(int32_t dtype, const void *src, uint64_t n, float *out) {
  switch (dtype) {
    case FG_F32: memcpy(out, src, n * 4); break;
    case FG_F16: for (uint64_t i = 0; i < n; i++) out[i] = f16_to_f32(((const uint16_t *)src)[i]); break;
    case FG_BF16: for (uint64_t i = 0; i < n; i++) out[i] = bf16_to_f32(((const uint16_t *)src)[i]); break;
    case FG_F8_E4M3: for (uint64_t i = 0; i < n; i++) out[i] = e4m3_to_f32(((const uint8_t *)src)[i]); break;
  }
}

}  // namespace fg
