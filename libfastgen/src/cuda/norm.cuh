// Row norms of the decoder on the device. CPU twin: cpu/norm.cpp. Host functions launch on
// `stream` and return 0 or an fg_status with `err` set.
#pragma once
#include "cuda/common.cuh"

namespace fgcu {

enum NormOp { kNormRms = 0, kNormLayer = 1, kNormNone = 2 };

// For r in [0, R): src = h + (rows ? rows[r] : r) * H (fp32 residual row).
//   row = src + add_a + add_b        (biases still owed to the residual; each may be null)
//   if write_back: src = row         (the residual now holds them)
//   out[r] = norm(row) * w (+ b)     bf16 [R, H]; kNormNone: out = row
int norm_rows(float *h, const int *rows, int R, int H, const float *add_a, const float *add_b,
              bool write_back, NormOp op, const float *w, const float *b, float eps, bf16 *out,
              cudaStream_t stream, char *err);

// Post-norm (norm_position "post"): h[r] = norm(h[r] + add_a) * w (+ b) in place (fp32), and
// out[r] = the same in bf16.
int norm_rows_in_place(float *h, int R, int H, const float *add_a, NormOp op, const float *w, const float *b,
                       float eps, bf16 *out, cudaStream_t stream, char *err);

// Sandwich norms (Gemma 2/3), RMSNorm, for r in [0, R):
//   h[r] += rmsnorm(y[r] + bias) * w_post     y: fp32 [R, H], the sublayer's whole output (after
//                                             any all-reduce); bias may be null
//   out[r] = rmsnorm(h[r]) * w_next           bf16 [R, H], the next sublayer's input (w_next null: none)
int post_norm_add(float *h, const float *y, const float *bias, const float *w_post, const float *w_next, int R,
                  int H, float eps, bf16 *out, cudaStream_t stream, char *err);

}  // namespace fgcu
