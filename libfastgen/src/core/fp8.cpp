#include "core/fp8.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/error.h"
#include "cpu/thread_pool.h"

namespace fg {
namespace {

struct E4m3Table {
  float v[256];
  E4m3Table() {
    for (int b = 0; b < 256; b++) {
      const int e = (b >> 3) & 15, m = b & 7;
      float x = e == 15 && m == 7 ? NAN : e == 0 ? std::ldexp((float)m, -9) : std::ldexp(1.0f + m / 8.0f, e - 7);
      v[b] = b & 0x80 ? -x : x;
    }
  }
};
const E4m3Table kE4m3;

// Rows per task of the row-parallel conversions.
const int64_t kRowsPerTask = 16;

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

float e4m3_to_f32(uint8_t b) { return kE4m3.v[b]; }

uint8_t f32_to_e4m3(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  const uint8_t sign = (u >> 24) & 0x80;
  uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7f;   // NaN
  if (a >= 0x43e00000u) return sign | 0x7e;  // >= 448 (and inf): saturate
  if (a < 0x3c800000u) {                     // below 2^-6: a multiple of 2^-9, ties to even
    float f;
    memcpy(&f, &a, 4);
    const float r = f * 512.0f;  // exact: in [0, 8)
    int q = (int)r;
    const float frac = r - (float)q;
    if (frac > 0.5f || (frac == 0.5f && (q & 1))) q++;
    return sign | (uint8_t)q;  // q == 8 is 0x08 = 2^-6, the smallest normal
  }
  a += 0x7ffffu + ((a >> 20) & 1);  // round the mantissa to 3 bits, ties to even
  const uint32_t e = (a >> 23) - 127 + 7;  // 1..15 (a < 448 before rounding, <= 448 after)
  return sign | (uint8_t)(e << 3) | (uint8_t)((a >> 20) & 7);
}

WeightScales check_scales(const char *name, int64_t rows, int64_t cols, WeightScales s) {
  if (s.block_rows < 0 || s.block_cols < 0)
    raise(FG_ERR_INVALID_ARGUMENT, "load_quantized_tensor '%s': block sizes must be >= 0, got [%lld, %lld]", name,
          (long long)s.block_rows, (long long)s.block_cols);
  if (s.block_rows == 0 || s.block_rows > rows) s.block_rows = rows;
  if (s.block_cols == 0 || s.block_cols > cols) s.block_cols = cols;
  const uint64_t want = (uint64_t)ceil_div(rows, s.block_rows) * (uint64_t)ceil_div(cols, s.block_cols);
  if (s.count != want)
    raise(FG_ERR_INVALID_ARGUMENT,
          "load_quantized_tensor '%s': %llu scales for [%lld, %lld] in blocks of [%lld, %lld] (want %llu)", name,
          (unsigned long long)s.count, (long long)rows, (long long)cols, (long long)s.block_rows,
          (long long)s.block_cols, (unsigned long long)want);
  if (!s.data) raise(FG_ERR_INVALID_ARGUMENT, "load_quantized_tensor '%s': null scales", name);
  for (uint64_t i = 0; i < s.count; i++)
    if (!(std::isfinite(s.data[i]) && s.data[i] >= 0))
      raise(FG_ERR_INVALID_ARGUMENT, "load_quantized_tensor '%s': scale %llu is %g (scales must be finite and >= 0)",
            name, (unsigned long long)i, (double)s.data[i]);
  return s;
}

void dequantize_e4m3(const uint8_t *q, int64_t rows, int64_t cols, const WeightScales &s, float *out) {
  const int64_t scale_cols = ceil_div(cols, s.block_cols);
  cpu::parallel_for(ceil_div(rows, kRowsPerTask), [&](int64_t task) {
    const int64_t r1 = std::min(rows, (task + 1) * kRowsPerTask);
    for (int64_t r = task * kRowsPerTask; r < r1; r++) {
      const float *row_scales = s.data + (r / s.block_rows) * scale_cols;
      for (int64_t c = 0; c < cols; c++)
        out[r * cols + c] = kE4m3.v[q[r * cols + c]] * row_scales[c / s.block_cols];
    }
  });
}

void quantize_e4m3_rows(const char *name, int32_t dtype, const void *src, int64_t rows, int64_t cols,
                        uint8_t *q, float *scales) {
  const size_t esize = dtype_size(dtype);
  if (dtype == FG_F8_E4M3 || esize == 0)
    raise(FG_ERR_INVALID_ARGUMENT, "quantize '%s': source dtype %d is not F32, F16 or BF16", name, dtype);
  std::atomic<int64_t> bad_row{-1};
  cpu::parallel_for(ceil_div(rows, kRowsPerTask), [&](int64_t task) {
    std::vector<float> w(cols);
    const int64_t r1 = std::min(rows, (task + 1) * kRowsPerTask);
    for (int64_t r = task * kRowsPerTask; r < r1; r++) {
      to_f32(dtype, (const char *)src + r * cols * esize, cols, w.data());
      float amax = 0;
      for (float x : w) amax = std::max(amax, std::fabs(x));  // NaN compares false: checked next
      bool finite = std::isfinite(amax);
      for (int64_t c = 0; c < cols && finite; c++) finite = !std::isnan(w[c]);
      if (!finite) {
        bad_row = r;
        continue;
      }
      float scale = amax / 448.0f;
      if (!(scale > 0)) scale = 1.0f;
      scales[r] = scale;
      for (int64_t c = 0; c < cols; c++) q[r * cols + c] = f32_to_e4m3(w[c] / scale);
    }
  });
  if (bad_row >= 0)
    raise(FG_ERR_INVALID_ARGUMENT, "quantize '%s' to fp8: row %lld holds a value that is not finite", name,
          (long long)bad_row.load());
}

void e4m3_round(float *x, int64_t n, float scale) {
  for (int64_t i = 0; i < n; i++) x[i] = kE4m3.v[f32_to_e4m3(x[i] / scale)] * scale;
}

bool fp8_capable(fg_tensor_kind kind) {
  switch (kind) {
    case FG_TENSOR_Q: case FG_TENSOR_K: case FG_TENSOR_V: case FG_TENSOR_O:
    case FG_TENSOR_GATE: case FG_TENSOR_UP: case FG_TENSOR_DOWN:
    case FG_TENSOR_EXPERT_GATE: case FG_TENSOR_EXPERT_UP: case FG_TENSOR_EXPERT_DOWN:
    case FG_TENSOR_SHARED_GATE: case FG_TENSOR_SHARED_UP: case FG_TENSOR_SHARED_DOWN:
    // MLA's down / up projections (kv_b stays bf16: it is split and absorbed); the CUDA backend
    // runs them weight-only (cuda/engine.cu rank_fp8_reserve): W8A8 drifted on deepseek-v2
    case FG_TENSOR_Q_A: case FG_TENSOR_KV_A: case FG_TENSOR_Q_B:
      return true;
    default:
      return false;
  }
}

}  // namespace fg
