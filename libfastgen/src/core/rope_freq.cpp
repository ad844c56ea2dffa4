// The scaling rules follow transformers' modeling_rope_utils (linear, llama3, yarn, longrope) and
// vLLM's static dynamic-NTK, so a checkpoint's config.json means the same thing here.
#include "core/rope_freq.h"

#include <algorithm>
#include <cmath>

namespace fg {
namespace {

std::vector<double> plain(double theta, int64_t dim) {
  std::vector<double> inv(dim / 2);
  for (int64_t i = 0; i < dim / 2; i++) inv[i] = 1.0 / std::pow(theta, (double)(2 * i) / (double)dim);
  return inv;
}

// Llama 3.1: long wavelengths are slowed by `factor`, short ones kept, and the band between
// interpolates smoothly.
void llama3(const RopeScaling &rs, std::vector<double> &inv) {
  const double old_ctx = rs.original_max_position_embeddings;
  const double low_freq_wavelen = old_ctx / rs.low_freq_factor;
  const double high_freq_wavelen = old_ctx / rs.high_freq_factor;
  for (double &f : inv) {
    const double wavelen = 2 * M_PI / f;
    if (wavelen > low_freq_wavelen) {
      f = f / rs.factor;
    } else if (wavelen >= high_freq_wavelen) {
      const double smooth =
          (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
      f = (1 - smooth) * f / rs.factor + smooth * f;
    }
  }
}

// YaRN: dimensions that turn fewer than beta_slow times over the original context are
// interpolated (divided by factor), those that turn more than beta_fast times are kept, and a
// linear ramp blends the band between; cos/sin are scaled by the attention factor.
double yarn(const RopeScaling &rs, double theta, int64_t dim, std::vector<double> &inv) {
  const double orig = rs.original_max_position_embeddings;
  auto correction_dim = [&](double rotations) {
    return (dim * std::log(orig / (rotations * 2 * M_PI))) / (2 * std::log(theta));
  };
  double low = correction_dim(rs.beta_fast), high = correction_dim(rs.beta_slow);
  if (rs.truncate) low = std::floor(low), high = std::ceil(high);
  low = std::max(low, 0.0), high = std::min(high, (double)(dim - 1));
  if (low == high) high += 0.001;  // no division by zero in the ramp
  for (size_t i = 0; i < inv.size(); i++) {
    const double ramp = std::min(1.0, std::max(0.0, ((double)i - low) / (high - low)));
    const double keep = 1 - ramp;  // share of the extrapolated (unscaled) frequency
    inv[i] = inv[i] / rs.factor * (1 - keep) + inv[i] * keep;
  }
  if (rs.attention_factor > 0) return rs.attention_factor;
  if (rs.mscale != 0 && rs.mscale_all_dim != 0)
    return yarn_mscale(rs.factor, rs.mscale) / yarn_mscale(rs.factor, rs.mscale_all_dim);
  return yarn_mscale(rs.factor, 1);
}

}  // namespace

RopeFreqs rope_freqs(const ModelSpec &s) {
  RopeFreqs r;
  if (!s.rope()) return r;
  const int64_t dim = s.rotary_dim;
  const RopeScaling &rs = s.rope_scaling;
  double theta = s.rope_theta;
  if (rs.kind == RopeScalingKind::Dynamic) {
    // vLLM's form: the NTK-aware base for a context of factor x the original length, fixed.
    const double max_len = rs.original_max_position_embeddings * rs.factor;
    theta *= std::pow(rs.factor * max_len / rs.original_max_position_embeddings - (rs.factor - 1),
                      (double)dim / (double)(dim - 2));
  }
  r.inv_freq = plain(theta, dim);
  switch (rs.kind) {
    case RopeScalingKind::Linear:
      for (double &f : r.inv_freq) f /= rs.factor;  // same as positions / factor
      break;
    case RopeScalingKind::Llama3: llama3(rs, r.inv_freq); break;
    case RopeScalingKind::Yarn: r.attention_factor = yarn(rs, theta, dim, r.inv_freq); break;
    case RopeScalingKind::LongRope:
      for (size_t i = 0; i < r.inv_freq.size(); i++) r.inv_freq[i] /= rs.factors[i];
      r.attention_factor = rs.attention_factor;
      break;
    case RopeScalingKind::None:
    case RopeScalingKind::Dynamic: break;
  }
  if (s.sliding_rope_theta > 0) r.sliding_inv_freq = plain(s.sliding_rope_theta, dim);
  return r;
}

}  // namespace fg
