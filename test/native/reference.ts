/**
 * Naive reference forward pass of the generic decoder (fastgen.h spec), in float64 with plain
 * loops: one sequence, no KV cache, every position recomputed. The CPU backend is checked
 * against this; it follows transformers' modeling code (rotate_half RoPE, llama3 scaling,
 * exact-erf GELU, parallel layout as in Phi/GPT-J).
 */
import type { ModelSpec } from "../../src/model/spec";

export type Weights = Map<string, Float32Array>;

function linear(x: Float64Array, w: Float32Array, bias: Float32Array | undefined, out: number): Float64Array {
  const inp = x.length;
  const y = new Float64Array(out);
  for (let o = 0; o < out; o++) {
    let s = bias ? bias[o]! : 0;
    for (let i = 0; i < inp; i++) s += x[i]! * w[o * inp + i]!;
    y[o] = s;
  }
  return y;
}

function norm(spec: ModelSpec, x: Float64Array, w: Float32Array, b: Float32Array | undefined): Float64Array {
  const n = x.length;
  const y = new Float64Array(n);
  if (spec.norm === "rms") {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[i]! * x[i]!;
    const scale = 1 / Math.sqrt(ss / n + spec.norm_eps);
    for (let i = 0; i < n; i++) y[i] = x[i]! * scale * w[i]!;
  } else {
    let mean = 0;
    for (let i = 0; i < n; i++) mean += x[i]!;
    mean /= n;
    let v = 0;
    for (let i = 0; i < n; i++) v += (x[i]! - mean) ** 2;
    const scale = 1 / Math.sqrt(v / n + spec.norm_eps);
    for (let i = 0; i < n; i++) y[i] = (x[i]! - mean) * scale * w[i]! + (b ? b[i]! : 0);
  }
  return y;
}

/** erf to ~1e-13: Taylor series for |x| < 3, erfc continued fraction beyond. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = ax, sum = ax;
    for (let n = 1; n < 200; n++) {
      term *= (-ax * ax) / n;
      const t = term / (2 * n + 1);
      sum += t;
      if (Math.abs(t) < 1e-17) break;
    }
    return Math.sign(x) * (2 / Math.sqrt(Math.PI)) * sum;
  }
  let f = ax;
  for (let n = 80; n >= 1; n--) f = ax + n / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return Math.sign(x) * (1 - erfc);
}

const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const silu = (x: number) => x / (1 + Math.exp(-x));

/** RoPE inverse frequencies after scaling (transformers' rope init functions). */
export function invFreq(spec: ModelSpec): number[] {
  const rot = Math.floor(spec.head_dim * spec.partial_rotary_factor);
  const inv: number[] = [];
  for (let i = 0; i < rot / 2; i++) inv.push(1 / spec.rope_theta ** ((2 * i) / rot));
  const rs = spec.rope_scaling;
  if (rs?.type === "linear") return inv.map((f) => f / rs.factor);
  if (rs?.type === "llama3") {
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
  return inv;
}

/** Rotates each head of v (heads x head_dim) in place: dim i pairs with dim i + rot/2. */
function rope(v: Float64Array, heads: number, headDim: number, pos: number, inv: number[]) {
  const half = inv.length;
  for (let h = 0; h < heads; h++) {
    const o = h * headDim;
    for (let i = 0; i < half; i++) {
      const c = Math.cos(pos * inv[i]!), s = Math.sin(pos * inv[i]!);
      const x1 = v[o + i]!, x2 = v[o + i + half]!;
      v[o + i] = x1 * c - x2 * s;
      v[o + i + half] = x2 * c + x1 * s;
    }
  }
}

function mlp(spec: ModelSpec, w: Weights, p: string, x: Float64Array): Float64Array {
  const I = spec.intermediate_size, H = spec.hidden_size;
  const up = linear(x, w.get(p + "up")!, w.get(p + "up_bias"), I);
  if (spec.mlp === "gated_silu" || spec.mlp === "gated_gelu") {
    const gate = linear(x, w.get(p + "gate")!, w.get(p + "gate_bias"), I);
    const act = spec.mlp === "gated_silu" ? silu : gelu;
    for (let i = 0; i < I; i++) up[i] = act(gate[i]!) * up[i]!;
  } else {
    for (let i = 0; i < I; i++) up[i] = spec.mlp === "gelu" ? gelu(up[i]!) : Math.max(0, up[i]!);
  }
  return linear(up, w.get(p + "down")!, w.get(p + "down_bias"), H);
}

/** Logits at every position of `tokens` (positions 0..n-1): [n][vocab]. */
export function referenceLogits(spec: ModelSpec, w: Weights, tokens: number[]): Float64Array[] {
  const H = spec.hidden_size, nh = spec.num_heads, nkv = spec.num_kv_heads, hd = spec.head_dim;
  const group = nh / nkv, T = tokens.length, inv = invFreq(spec);
  const embed = w.get("embed")!;
  let h = tokens.map((t) => Float64Array.from(embed.subarray(t * H, (t + 1) * H)));
  for (let l = 0; l < spec.num_layers; l++) {
    const p = `layers.${l}.`;
    const x = h.map((r) => norm(spec, r, w.get(p + "attn_norm")!, w.get(p + "attn_norm_bias")));
    const q = x.map((r, t) => {
      const v = linear(r, w.get(p + "q")!, w.get(p + "q_bias"), nh * hd);
      rope(v, nh, hd, t, inv);
      return v;
    });
    const k = x.map((r, t) => {
      const v = linear(r, w.get(p + "k")!, w.get(p + "k_bias"), nkv * hd);
      rope(v, nkv, hd, t, inv);
      return v;
    });
    const v = x.map((r) => linear(r, w.get(p + "v")!, w.get(p + "v_bias"), nkv * hd));
    const attnOut = q.map((qt, t) => {
      const o = new Float64Array(nh * hd);
      for (let head = 0; head < nh; head++) {
        const kvh = Math.floor(head / group);
        const js: number[] = [];
        for (let j = 0; j <= t; j++) if (!spec.sliding_window || t - j < spec.sliding_window) js.push(j);
        const scores = js.map((j) => {
          let s = 0;
          for (let d = 0; d < hd; d++) s += qt[head * hd + d]! * k[j]![kvh * hd + d]!;
          return s / Math.sqrt(hd);
        });
        const mx = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - mx));
        const sum = e.reduce((a, b) => a + b, 0);
        js.forEach((j, idx) => {
          for (let d = 0; d < hd; d++) o[head * hd + d] = o[head * hd + d]! + (e[idx]! / sum) * v[j]![kvh * hd + d]!;
        });
      }
      return linear(o, w.get(p + "o")!, w.get(p + "o_bias"), H);
    });
    if (spec.layout === "parallel") {
      h = h.map((r, t) => {
        const m = mlp(spec, w, p, x[t]!);
        return r.map((val, i) => val + attnOut[t]![i]! + m[i]!);
      });
    } else {
      h = h.map((r, t) => r.map((val, i) => val + attnOut[t]![i]!));
      h = h.map((r) => {
        const m = mlp(spec, w, p, norm(spec, r, w.get(p + "mlp_norm")!, w.get(p + "mlp_norm_bias")));
        return r.map((val, i) => val + m[i]!);
      });
    }
  }
  const head = spec.tie_word_embeddings ? embed : w.get("lm_head")!;
  return h.map((r) => linear(norm(spec, r, w.get("final_norm")!, w.get("final_norm_bias")), head,
    w.get("lm_head_bias"), spec.vocab_size));
}
