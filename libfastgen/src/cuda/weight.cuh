// A linear layer's weight on the device, as the forward pass hands it to a GEMM: {pointer, dtype,
// scales}. The attention and MLP / expert projections are Weights; embeddings, the LM head and the
// router stay plain bf16 pointers (they are never FP8).
//
//   bf16   p: [N, K] bf16 row-major (nn.Linear.weight)
//   fp8    p: [N, K] E4M3 row-major, scales: [N, nkb] fp32 row-major, nkb = ceil(K / kblock):
//            w[n, k] = e4m3(p[n, k]) * scales[n, k / kblock]
//          kblock = K is one scale per output channel (a per-tensor scale is that scale repeated);
//          kblock < K (a multiple of 16) keeps a checkpoint's 128 x 128 blocks exactly, each
//          block's scale repeated over its rows, so every row carries its own K-segment scales.
// input_scale: the checkpoint's static activation scale for the W8A8 GEMMs (0: per token,
// dynamic). CPU twin: core/fp8.h (the weight store dequantizes the same layout).
#pragma once
#include <stdint.h>

namespace fgcu {

enum WeightDtype : int32_t { kWeightNone = 0, kWeightBf16 = 1, kWeightFp8 = 2 };

struct Weight {
  void *p = nullptr;
  int32_t dtype = kWeightNone;  // kWeightNone until its first part is loaded (load.cu)
  int32_t kblock = 0;           // fp8: K elements per scale
  float *scales = nullptr;      // fp8: [N, ceil(K / kblock)]
  float input_scale = 0.f;      // fp8: static activation scale, 0 = dynamic per token
  bool weight_only = false;     // fp8: activations stay bf16 (never the W8A8 cuBLASLt path)
  bool fp8() const { return dtype == kWeightFp8; }
  // fp8: scale columns per row
  int nkb(int K) const { return kblock > 0 ? (K + kblock - 1) / kblock : 1; }
};

}  // namespace fgcu
