/**
 * Naive reference forward pass of the generic decoder (fastgen.h spec), in float64 with plain
 * loops: one sequence, no KV cache, every position recomputed. The CPU backend is checked
 * against this; it follows transformers' modeling code (rotate_half RoPE, llama3 scaling,
 * exact-erf and tanh GELU, parallel layout as in Phi/Falcon, OPT's learned positions, post-norm
 * and project_in/out, Mixtral's top-k routing).
 */
import type { ModelSpec } from "../../src/native/modelSpec";

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
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const silu = (x: number) => x / (1 + Math.exp(-x));
const relu = (x: number) => Math.max(0, x);
const ACT: Record<ModelSpec["mlp"], (x: number) => number> = {
  gated_silu: silu, gated_gelu: gelu, gated_gelu_tanh: geluTanh, gelu, gelu_tanh: geluTanh, relu,
};

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

/** One MLP (a dense layer's, or expert p = "layers.{i}.experts.{e}.") of x. */
function mlp(spec: ModelSpec, w: Weights, p: string, x: Float64Array): Float64Array {
  const I = spec.intermediate_size, H = spec.hidden_size, act = ACT[spec.mlp];
  const up = linear(x, w.get(p + "up")!, w.get(p + "up_bias"), I);
  if (spec.mlp.startsWith("gated_")) {
    const gate = linear(x, w.get(p + "gate")!, w.get(p + "gate_bias"), I);
    for (let i = 0; i < I; i++) up[i] = act(gate[i]!) * up[i]!;
  } else {
    for (let i = 0; i < I; i++) up[i] = act(up[i]!);
  }
  return linear(up, w.get(p + "down")!, w.get(p + "down_bias"), H);
}

/** Top-k experts by softmax probability (ties: lower id), weights renormalized to sum 1. */
export function referenceRoute(logits: ArrayLike<number>, k: number): { ids: number[]; weights: number[] } {
  const mx = Math.max(...Array.from(logits));
  const p = Array.from(logits, (l) => Math.exp(l - mx));
  const order = p.map((_, e) => e).sort((a, b) => p[b]! - p[a]! || a - b);
  const ids = order.slice(0, k);
  const sum = ids.reduce((s, e) => s + p[e]!, 0);
  return { ids, weights: ids.map((e) => p[e]! / sum) };
}

/** The layer's feed-forward: the dense MLP, or Mixtral's mixture of experts. */
function ffn(spec: ModelSpec, w: Weights, p: string, x: Float64Array): Float64Array {
  const E = spec.num_experts ?? 0;
  if (E === 0) return mlp(spec, w, p, x);
  const { ids, weights } = referenceRoute(linear(x, w.get(p + "router")!, undefined, E), spec.num_experts_per_tok!);
  const out = new Float64Array(spec.hidden_size);
  ids.forEach((e, j) => mlp(spec, w, `${p}experts.${e}.`, x).forEach((v, i) => (out[i] = out[i]! + weights[j]! * v)));
  return out;
}

/** Logits at every position of `tokens` (positions 0..n-1): [n][vocab]. */
export function referenceLogits(spec: ModelSpec, w: Weights, tokens: number[]): Float64Array[] {
  const H = spec.hidden_size, nh = spec.num_heads, nkv = spec.num_kv_heads, hd = spec.head_dim;
  const D = spec.embed_dim ?? H, rope_ = spec.positions === "rope";
  const group = nh / nkv, inv = rope_ ? invFreq(spec) : [];
  const embed = w.get("embed")!;
  let h = tokens.map((t, pos) => {
    let e: Float64Array = Float64Array.from(embed.subarray(t * D, (t + 1) * D));
    if (D !== H) e = linear(e, w.get("embed_proj_in")!, undefined, H);
    if (!rope_) e = e.map((v, i) => v + w.get("pos_embed")![pos * H + i]!);
    return e;
  });
  const normOf = (name: string) => (r: Float64Array) => norm(spec, r, w.get(name)!, w.get(name + "_bias"));
  for (let l = 0; l < spec.num_layers; l++) {
    const p = `layers.${l}.`;
    const attention = (x: Float64Array[]): Float64Array[] => {
      const project = (name: string, heads: number, rotate: boolean) => x.map((r, t) => {
        const v = linear(r, w.get(p + name)!, w.get(p + name + "_bias"), heads * hd);
        if (rotate && rope_) rope(v, heads, hd, t, inv);
        return v;
      });
      const q = project("q", nh, true), k = project("k", nkv, true), v = project("v", nkv, false);
      return q.map((qt, t) => {
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
    };
    const add = (a: Float64Array[], b: Float64Array[]): Float64Array[] => a.map((r, t) => r.map((val, i) => val + b[t]![i]!));
    if (spec.layout !== "sequential") {
      // h += attn(attn_norm(h)) + mlp(attn_norm(h) | mlp_norm(h))
      const x = h.map(normOf(p + "attn_norm"));
      const xm = spec.layout === "parallel_two_norms" ? h.map(normOf(p + "mlp_norm")) : x;
      h = add(add(h, attention(x)), xm.map((r) => ffn(spec, w, p, r)));
    } else if (spec.norm_position === "post") {
      h = add(h, attention(h)).map(normOf(p + "attn_norm"));
      h = add(h, h.map((r) => ffn(spec, w, p, r))).map(normOf(p + "mlp_norm"));
    } else {
      h = add(h, attention(h.map(normOf(p + "attn_norm"))));
      h = add(h, h.map((r) => ffn(spec, w, p, normOf(p + "mlp_norm")(r))));
    }
  }
  const head = spec.tie_word_embeddings ? embed : w.get("lm_head")!;
  return h.map((r) => {
    let x = spec.final_norm ?? true ? normOf("final_norm")(r) : r;
    if (D !== H) x = linear(x, w.get("embed_proj_out")!, undefined, D);
    return linear(x, head, w.get("lm_head_bias"), spec.vocab_size);
  });
}
