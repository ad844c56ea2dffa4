// FP8 E4M3 on the host: the codec, the scale layout of a quantized weight (fastgen.h
// fg_engine_load_quantized_tensor), and the conversions the weight store and the CPU KV cache
// make. The CPU backend is the reference for FP8: it keeps every weight as the fp32 value the
// checkpoint means (weight-only semantics), so these functions are exact by construction.
//
// E4M3 (OCP FP8, PyTorch float8_e4m3fn): s eeee mmm, exponent bias 7, no infinities.
//   normal     e = 1..15:  (-1)^s (1 + m/8) 2^(e-7)      largest 0x7e = 448
//   subnormal  e = 0:      (-1)^s (m/8) 2^-6             smallest 0x01 = 2^-9
//   NaN        0x7f, 0xff (e = 15, m = 7)
#pragma once
#include <cstdint>

#include "core/tensor_kinds.h"

namespace fg {

// Exact (a table of the 256 values).
float e4m3_to_f32(uint8_t b);
// Round to nearest, ties to even; |x| > 448 and +-inf saturate to +-448 (0x7e / 0xfe), as the
// CUDA __NV_SATFINITE conversions do; NaN gives 0x7f / 0xff.
uint8_t f32_to_e4m3(float x);

// The scales of a quantized weight [rows, cols]: one fp32 scale per [block_rows, block_cols]
// block of a grid laid row-major,
//   w[r, c] = e4m3(q[r, c]) * data[(r / block_rows) * ceil(cols / block_cols) + c / block_cols]
// (the product in fp32). A block size of 0 stands for the whole dimension: per tensor (0, 0),
// per output channel (1, 0), DeepSeek-V3 / Qwen3-FP8 blocks (128, 128). Scales multiply, whatever
// the checkpoint calls them (weight_scale, weight_scale_inv).
struct WeightScales {
  const float *data = nullptr;
  uint64_t count = 0;
  int64_t block_rows = 0, block_cols = 0;
};

// s with block sizes resolved (0 -> the dimension); throws INVALID_ARGUMENT naming `name` when
// block sizes are negative, count is not the grid's size, or a scale is negative or not finite.
WeightScales check_scales(const char *name, int64_t rows, int64_t cols, WeightScales s);
// out: [rows, cols] fp32 = the weight q and s mean; s as check_scales returned it.
void dequantize_e4m3(const uint8_t *q, int64_t rows, int64_t cols, const WeightScales &s, float *out);
// Per output channel, what "quantization": "fp8" does at load: scales[r] = amax(|row r|) / 448
// (1 when that is 0), q[r, c] = e4m3(w[r, c] / scales[r]) (the quotient in fp32). src: [rows,
// cols] of dtype F32, F16 or BF16; throws INVALID_ARGUMENT naming `name` for a non-finite value.
void quantize_e4m3_rows(const char *name, int32_t dtype, const void *src, int64_t rows, int64_t cols,
                        uint8_t *q, float *scales);
// x[i] = e4m3(x[i] / scale) * scale: the value an FP8 KV cache with this scale keeps.
void e4m3_round(float *x, int64_t n, float scale);

// The tensor kinds an engine may hold in FP8: the linear weights of attention (MLA's q_a, kv_a and q_b too) and of the
// MLP / experts / shared expert. Any other tensor loaded quantized is dequantized at load.
bool fp8_capable(fg_tensor_kind kind);

}  // namespace fg
