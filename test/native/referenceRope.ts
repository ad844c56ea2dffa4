/**
 * RoPE frequencies of the float64 reference (reference.ts), written from transformers'
 * modeling_rope_utils (linear, llama3, yarn, longrope) and vLLM's static dynamic-NTK (the form
 * the spec chose), not from core/rope_freq.cpp, so the engine's tables are checked against a
 * second reading of the same formulas.
 */
import type { ModelSpec } from "../../src/native/modelSpec";

export interface RopeFreqs {
  inv: number[];            // [rotary_dim / 2]
  attentionFactor: number;  // cos and sin are multiplied by it (yarn, longrope)
}

const plain = (base: number, dim: number) => Array.from({ length: dim / 2 }, (_, i) => 1 / base ** ((2 * i) / dim));

function llama3(rs: Extract<ModelSpec["rope_scaling"], { type: "llama3" }>, inv: number[]): number[] {
  const lowWavelen = rs.original_max_position_embeddings / rs.low_freq_factor;
  const highWavelen = rs.original_max_position_embeddings / rs.high_freq_factor;
  return inv.map((f) => {
    const wavelen = (2 * Math.PI) / f;
    if (wavelen > lowWavelen) return f / rs.factor;
    if (wavelen < highWavelen) return f;
    const smooth = (rs.original_max_position_embeddings / wavelen - rs.low_freq_factor) /
      (rs.high_freq_factor - rs.low_freq_factor);
    return ((1 - smooth) * f) / rs.factor + smooth * f;
  });
}

/** transformers' get_mscale in _compute_yarn_parameters. */
export const mscaleOf = (scale: number, m = 1) => (scale <= 1 ? 1 : 0.1 * m * Math.log(scale) + 1);

/** transformers' _compute_yarn_parameters (find_correction_range, linear_ramp_factor). */
function yarn(rs: Extract<ModelSpec["rope_scaling"], { type: "yarn" }>, base: number, dim: number): RopeFreqs {
  const orig = rs.original_max_position_embeddings;
  const correctionDim = (rotations: number) => (dim * Math.log(orig / (rotations * 2 * Math.PI))) / (2 * Math.log(base));
  let low = correctionDim(rs.beta_fast ?? 32), high = correctionDim(rs.beta_slow ?? 1);
  if (rs.truncate ?? true) [low, high] = [Math.floor(low), Math.ceil(high)];
  [low, high] = [Math.max(low, 0), Math.min(high, dim - 1)];
  if (low === high) high += 0.001;
  const inv = plain(base, dim).map((extrapolation, i) => {
    const interpolation = extrapolation / rs.factor;
    const extrapolationFactor = 1 - Math.min(1, Math.max(0, (i - low) / (high - low)));
    return interpolation * (1 - extrapolationFactor) + extrapolation * extrapolationFactor;
  });
  const attentionFactor = rs.attention_factor ??
    (rs.mscale && rs.mscale_all_dim ? mscaleOf(rs.factor, rs.mscale) / mscaleOf(rs.factor, rs.mscale_all_dim) : mscaleOf(rs.factor));
  return { inv, attentionFactor };
}

/** A full layer's frequencies (sliding = false), or a sliding layer's. */
export function ropeFreqs(spec: ModelSpec, sliding = false): RopeFreqs {
  // MLA rotates only the decoupled key part (transformers' DeepseekV2 sets head_dim = qk_rope_head_dim).
  const dim = spec.attention === "mla" ? spec.qk_rope_head_dim! : Math.floor(spec.head_dim * spec.partial_rotary_factor);
  if (sliding && spec.sliding_rope_theta) return { inv: plain(spec.sliding_rope_theta, dim), attentionFactor: 1 };
  const rs = spec.rope_scaling, base = spec.rope_theta;
  switch (rs?.type) {
    case "linear": return { inv: plain(base, dim).map((f) => f / rs.factor), attentionFactor: 1 };
    case "llama3": return { inv: llama3(rs, plain(base, dim)), attentionFactor: 1 };
    case "yarn": return yarn(rs, base, dim);
    case "dynamic": {
      // vLLM's DynamicNTKScalingRotaryEmbedding: the base for max_len = factor x the original.
      const maxLen = rs.original_max_position_embeddings * rs.factor;
      const b = base * ((rs.factor * maxLen) / rs.original_max_position_embeddings - (rs.factor - 1)) ** (dim / (dim - 2));
      return { inv: plain(b, dim), attentionFactor: 1 };
    }
    case "longrope": return { inv: plain(base, dim).map((f, i) => f / rs.factors[i]!), attentionFactor: rs.attention_factor };
    default: return { inv: plain(base, dim), attentionFactor: 1 };
  }
}
