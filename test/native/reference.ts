/**
 * Naive reference forward pass of the generic decoder (fastgen.h spec), in float64 with plain
 * loops: one sequence, no KV cache, every position recomputed. The CPU backend is checked
 * against this; it follows transformers' modeling code (rotate_half RoPE and its scalings
 * (referenceRope.ts), exact-erf and tanh GELU, parallel layout as in Phi/Falcon, OPT's learned
 * positions, post-norm and project_in/out, Mixtral's and Qwen2-MoE's routing and shared expert,
 * Qwen3's q/k norms, Gemma 2/3's (1 + w) norms, sandwich norms, embedding scale, softcaps and
 * per-layer sliding/full attention).
 */
import type { ModelSpec } from "../../src/native/modelSpec";
import { ropeFreqs, type RopeFreqs } from "./referenceRope";

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

/** x: one row, or consecutive rows of w.length (the per-head q/k norms). */
function norm(spec: ModelSpec, x: Float64Array, w: Float32Array, b: Float32Array | undefined): Float64Array {
  if (x.length > w.length) {
    const y = new Float64Array(x.length);
    for (let o = 0; o < x.length; o += w.length) y.set(norm(spec, x.subarray(o, o + w.length), w, b), o);
    return y;
  }
  const n = x.length;
  const y = new Float64Array(n);
  if (spec.norm === "rms") {
    let ss = 0;
    for (let i = 0; i < n; i++) ss += x[i]! * x[i]!;
    const scale = 1 / Math.sqrt(ss / n + spec.norm_eps);
    const offset = spec.norm_weight_offset ?? 0;
    for (let i = 0; i < n; i++) y[i] = x[i]! * scale * (offset + w[i]!);
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

/**
 * Rotates each head of v (heads x head_dim) in place: dim i pairs with dim i + rot/2; cos and sin
 * times the attention factor (transformers: cos = cos * attention_scaling).
 */
function rope(v: Float64Array, heads: number, headDim: number, pos: number, { inv, attentionFactor }: RopeFreqs) {
  const half = inv.length;
  for (let h = 0; h < heads; h++) {
    const o = h * headDim;
    for (let i = 0; i < half; i++) {
      const c = Math.cos(pos * inv[i]!) * attentionFactor, s = Math.sin(pos * inv[i]!) * attentionFactor;
      const x1 = v[o + i]!, x2 = v[o + i + half]!;
      v[o + i] = x1 * c - x2 * s;
      v[o + i + half] = x2 * c + x1 * s;
    }
  }
}

/** One MLP of width I (a dense layer's, expert p = "layers.{i}.experts.{e}.", a shared one) of x. */
function mlp(spec: ModelSpec, w: Weights, p: string, x: Float64Array, I = spec.intermediate_size): Float64Array {
  const H = spec.hidden_size, act = ACT[spec.mlp];
  const up = linear(x, w.get(p + "up")!, w.get(p + "up_bias"), I);
  if (spec.mlp.startsWith("gated_")) {
    const gate = linear(x, w.get(p + "gate")!, w.get(p + "gate_bias"), I);
    for (let i = 0; i < I; i++) up[i] = act(gate[i]!) * up[i]!;
  } else {
    for (let i = 0; i < I; i++) up[i] = act(up[i]!);
  }
  return linear(up, w.get(p + "down")!, w.get(p + "down_bias"), H);
}

/**
 * Top-k experts by softmax probability (ties: lower id), weights renormalized to sum 1, or
 * (renormalize false, Qwen2-MoE) the softmax over all experts as it is.
 */
export function referenceRoute(logits: ArrayLike<number>, k: number, renormalize = true): { ids: number[]; weights: number[] } {
  const mx = Math.max(...Array.from(logits));
  const p = Array.from(logits, (l) => Math.exp(l - mx));
  const order = p.map((_, e) => e).sort((a, b) => p[b]! - p[a]! || a - b);
  const ids = order.slice(0, k);
  const sum = (renormalize ? ids : order).reduce((s, e) => s + p[e]!, 0);
  return { ids, weights: ids.map((e) => p[e]! / sum) };
}

/**
 * The layer's feed-forward: the dense MLP, or a mixture of experts (width moe_intermediate_size)
 * plus, as Qwen2-MoE, a shared expert times sigmoid(x . shared_expert_gate).
 */
function ffn(spec: ModelSpec, w: Weights, p: string, x: Float64Array): Float64Array {
  const E = spec.num_experts ?? 0;
  if (E === 0) return mlp(spec, w, p, x);
  const { ids, weights } = referenceRoute(linear(x, w.get(p + "router")!, undefined, E), spec.num_experts_per_tok!,
    spec.moe_renormalize ?? true);
  const out = new Float64Array(spec.hidden_size);
  const width = spec.moe_intermediate_size ?? spec.intermediate_size;
  ids.forEach((e, j) => mlp(spec, w, `${p}experts.${e}.`, x, width).forEach((v, i) => (out[i] = out[i]! + weights[j]! * v)));
  if (spec.shared_expert_intermediate_size) {
    const shared = mlp(spec, w, `${p}shared_expert.`, x, spec.shared_expert_intermediate_size);
    const gate = spec.shared_expert_gate ? 1 / (1 + Math.exp(-linear(x, w.get(p + "shared_expert_gate")!, undefined, 1)[0]!)) : 1;
    shared.forEach((v, i) => (out[i] = out[i]! + gate * v));
  }
  return out;
}

const softcap = (x: number, cap: number | undefined) => (cap ? cap * Math.tanh(x / cap) : x);
const isSliding = (spec: ModelSpec, l: number) =>
  spec.layer_types ? spec.layer_types[l] === "sliding" : spec.sliding_window > 0;

/**
 * Logits at every position of `tokens` (positions 0..n-1): [n][vocab]. kvRound(x, layer, "k" | "v"),
 * when given, is applied to each K (after RoPE) and V value: what a KV cache of another dtype keeps.
 */
export function referenceLogits(spec: ModelSpec, w: Weights, tokens: number[],
  kvRound?: (x: number, layer: number, which: "k" | "v") => number): Float64Array[] {
  const H = spec.hidden_size, nh = spec.num_heads, nkv = spec.num_kv_heads, hd = spec.head_dim;
  const D = spec.embed_dim ?? H, rope_ = spec.positions === "rope";
  const group = nh / nkv, scale = spec.attn_scale || 1 / Math.sqrt(hd);
  const embed = w.get("embed")!;
  let h = tokens.map((t, pos) => {
    let e: Float64Array = Float64Array.from(embed.subarray(t * D, (t + 1) * D), (v) => v * (spec.embed_scale ?? 1));
    if (D !== H) e = linear(e, w.get("embed_proj_in")!, undefined, H);
    if (!rope_) e = e.map((v, i) => v + w.get("pos_embed")![pos * H + i]!);
    return e;
  });
  const normOf = (name: string) => (r: Float64Array) => norm(spec, r, w.get(name)!, w.get(name + "_bias"));
  for (let l = 0; l < spec.num_layers; l++) {
    const p = `layers.${l}.`;
    const sliding = isSliding(spec, l), window = sliding ? spec.sliding_window : 0;
    const freqs = rope_ ? ropeFreqs(spec, sliding) : { inv: [], attentionFactor: 1 };
    const attention = (x: Float64Array[]): Float64Array[] => {
      const project = (name: string, heads: number, rotate: boolean) => x.map((r, t) => {
        let v = linear(r, w.get(p + name)!, w.get(p + name + "_bias"), heads * hd);
        if (rotate && spec.qk_norm) v = norm(spec, v, w.get(`${p}${name}_norm`)!, undefined);
        if (rotate && rope_) rope(v, heads, hd, t, freqs);
        return v;
      });
      const q = project("q", nh, true), k = project("k", nkv, true), v = project("v", nkv, false);
      if (kvRound) for (const [kv, which] of [[k, "k"], [v, "v"]] as const) kv.forEach((r) => r.forEach((x, i) => (r[i] = kvRound(x, l, which))));
      return q.map((qt, t) => {
        const o = new Float64Array(nh * hd);
        for (let head = 0; head < nh; head++) {
          const kvh = Math.floor(head / group);
          const js: number[] = [];
          for (let j = 0; j <= t; j++) if (!window || t - j < window) js.push(j);
          const scores = js.map((j) => {
            let s = 0;
            for (let d = 0; d < hd; d++) s += qt[head * hd + d]! * k[j]![kvh * hd + d]!;
            return softcap(s * scale, spec.attn_logit_softcap);  // Gemma 2: scale, cap, then the mask
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
    } else if (spec.sandwich_norms) {
      // Gemma 2/3: input_layernorm, post_attention_layernorm, pre_ and post_feedforward_layernorm
      h = add(h, attention(h.map(normOf(p + "attn_norm"))).map(normOf(p + "post_attn_norm")));
      h = add(h, h.map((r) => normOf(p + "post_mlp_norm")(ffn(spec, w, p, normOf(p + "mlp_norm")(r)))));
    } else {
      h = add(h, attention(h.map(normOf(p + "attn_norm"))));
      h = add(h, h.map((r) => ffn(spec, w, p, normOf(p + "mlp_norm")(r))));
    }
  }
  const head = spec.tie_word_embeddings ? embed : w.get("lm_head")!;
  return h.map((r) => {
    let x = spec.final_norm ?? true ? normOf("final_norm")(r) : r;
    if (D !== H) x = linear(x, w.get("embed_proj_out")!, undefined, D);
    return linear(x, head, w.get("lm_head_bias"), spec.vocab_size).map((v) => softcap(v, spec.final_logit_softcap));
  });
}
