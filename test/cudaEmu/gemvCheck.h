// What the GEMV harnesses (gemvHarness, gemvSmallHarness, fp8GemvSmallHarness) share: the
// double-precision reference of x [M, K] (bf16) times w [N, K] (as floats: bf16 values, or FP8
// dequantized) transposed, and the error bound each output is held to.
#pragma once
#include <cuda_bf16.h>
#include <math.h>
#include <stdio.h>

#include <algorithm>
#include <vector>

namespace gemv_check {

// dot[m * N + n] = sum_k x[m, k] w[n, k]; mag the same over |x w| (the scale of its rounding error).
struct Ref {
  std::vector<double> dot, mag;
};
inline Ref reference(const __nv_bfloat16 *x, const float *w, int M, int N, int K) {
  Ref r{std::vector<double>((size_t)M * N), std::vector<double>((size_t)M * N)};
  for (int m = 0; m < M; m++)
    for (int n = 0; n < N; n++) {
      double s = 0, a = 0;
      for (int k = 0; k < K; k++) {
        const double p = (double)__bfloat162float(x[(size_t)m * K + k]) * w[(size_t)n * K + k];
        s += p, a += fabs(p);
      }
      r.dot[(size_t)m * N + n] = s, r.mag[(size_t)m * N + n] = a;
    }
  return r;
}

// The gated MLP's activations: 0 silu, 1 gelu (erf), 2 gelu tanh.
inline double act(int kind, double x) {
  if (kind == 0) return x / (1.0 + exp(-x));
  if (kind == 1) return 0.5 * x * (1.0 + erf(x * 0.70710678118654752));
  return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
}

// The worst error over a case's outputs, as a share of each one's bound. Bounds: 1e-5 of the sum
// of |x w| for the fp32 sums (order and tensor-core adds), plus wrel of it where the kernel rounds
// each weight (FP8 K-block scales: 2^-8), plus 2^-8 of the value for a bf16 output.
struct Worst {
  double worst = 0;
  bool nan = false;
  void check(double got, double want, double allowed) {
    nan |= std::isnan(got);
    worst = std::max(worst, fabs(got - want) / allowed);
  }
  void plain(double got, double want, double mag, double wrel, bool bf16_out) {
    check(got, want, (1e-5 + wrel) * mag + (bf16_out ? fabs(want) * 0x1p-8 : 0.0) + 1e-6);
  }
  // act(gate) * up, written as bf16: the sums' errors carried through act (slope <= ~1.13) and the product.
  void gated(double got, int kind, double gate, double up, double mag_gate, double mag_up, double wrel) {
    const double want = act(kind, gate) * up;
    check(got, want, (1e-5 + wrel) * (mag_gate * fabs(up) * 1.2 + mag_up * (fabs(gate) + 1.0)) + fabs(want) * 0x1p-8 + 1e-6);
  }
  bool report(const char *name) const {
    const bool ok = !nan && worst <= 1.0;
    printf("%s %s: worst error %.3g of its bound%s\n", ok ? "ok" : "FAIL", name, worst, nan ? ", NaN in the output" : "");
    return ok;
  }
};

inline std::vector<float> floats(const std::vector<__nv_bfloat16> &v) {
  std::vector<float> f(v.size());
  for (size_t i = 0; i < v.size(); i++) f[i] = __bfloat162float(v[i]);
  return f;
}

}  // namespace gemv_check
