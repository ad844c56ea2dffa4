// exp without a libm call, so loops over it vectorize (Cephes expf: range reduction by ln 2 and
// a degree-6 polynomial; ~1 ulp on [-87, 88], 0 below).
#pragma once
#include <cstdint>
#include <cstring>

namespace fg {
namespace cpu {

inline float fast_exp(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447505531f;
  const bool under = x < lo;
  x = x > hi ? hi : (x < lo ? lo : x);
  const float n = __builtin_floorf(x * 1.44269504088896341f + 0.5f);
  float r = x - n * 0.693359375f;
  r = r - n * -2.12194440e-4f;
  float y = 1.9875691500e-4f;
  y = y * r + 1.3981999507e-3f;
  y = y * r + 8.3334519073e-3f;
  y = y * r + 4.1665795894e-2f;
  y = y * r + 1.6666665459e-1f;
  y = y * r + 5.0000001201e-1f;
  y = y * (r * r) + r + 1.0f;
  const int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, 4);
  return under ? 0.0f : y * scale;
}

}  // namespace cpu
}  // namespace fg
