#include "cpu/norm.h"

#include <cmath>

#include "cpu/thread_pool.h"

namespace fg {
namespace cpu {

NormParams norm_params(const ModelSpec &s) {
  return {s.norm, (float)s.norm_eps, (float)s.norm_weight_offset};
}

void norm(const NormParams &p, const float *x, const float *w, const float *b, float *out,
          int64_t rows, int64_t cols) {
  // Statistics in double: cheap at these sizes and independent of summation order.
  auto row = [&](int64_t r) {
    const float *xr = x + r * cols;
    float *o = out + r * cols;
    if (p.kind == NormKind::Rms) {
      double ss = 0;
      for (int64_t i = 0; i < cols; i++) ss += (double)xr[i] * xr[i];
      const float scale = (float)(1.0 / std::sqrt(ss / cols + p.eps));
      // (offset + w) rounded to fp32 first, as Gemma's (1.0 + weight.float()); offset 0 is exact.
      for (int64_t i = 0; i < cols; i++) o[i] = xr[i] * scale * (p.weight_offset + w[i]);
    } else {
      double sum = 0;
      for (int64_t i = 0; i < cols; i++) sum += xr[i];
      const double mean = sum / cols;
      double var = 0;
      for (int64_t i = 0; i < cols; i++) var += (xr[i] - mean) * (xr[i] - mean);
      const float scale = (float)(1.0 / std::sqrt(var / cols + p.eps));
      const float meanf = (float)mean;
      for (int64_t i = 0; i < cols; i++)
        o[i] = (xr[i] - meanf) * scale * w[i] + (b ? b[i] : 0.0f);
    }
  };
  const int64_t per_task = 16;
  parallel_for((rows + per_task - 1) / per_task, [&](int64_t t) {
    for (int64_t r = t * per_task; r < rows && r < (t + 1) * per_task; r++) row(r);
  });
}

}  // namespace cpu
}  // namespace fg
