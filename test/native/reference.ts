/**
 * Naive reference forward pass of the generic decoder (fastgen.h spec), in float64 with plain
 * loops: one sequence, no KV cache, every position recomputed. The CPU backend is checked
 * against this; it follows transformers' modeling code (rotate_half or interleaved RoPE and its
 * scalings (referenceRope.ts), exact-erf and tanh GELU, parallel layout as in Phi/Falcon, OPT's
 * learned positions, post-norm and project_in/out, Mixtral's and Qwen2-MoE's routing and shared
 * expert, Qwen3's q/k norms, Gemma 2/3's (1 + w) norms, sandwich norms, embedding scale, softcaps,
 * per-layer sliding/full attention, and DeepSeek-V2's latent attention with per-head keys and
 * values up-projected from the latent (not the engine's absorbed form), dense first layers and
 * group-limited routing).
 */
import type { ModelSpec } from "../../src/native/modelSpec";
import { mscaleOf, ropeFreqs, type RopeFreqs } from "./referenceRope";

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
 * Rotates each head of v (heads x head_dim) in place, the rot dims from `offset` on: dim i pairs
 * with dim i + rot/2 (rotate_half), or interleaved 2i with 2i + 1 (the complex form of
 * transformers' DeepseekV2: (x_2i + i x_2i+1) e^(i pos f_i)); cos and sin times the attention
 * factor (transformers: cos = cos * attention_scaling).
 */
function rope(v: Float64Array, heads: number, headDim: number, pos: number, { inv, attentionFactor }: RopeFreqs,
  interleaved = false, offset = 0) {
  const half = inv.length;
  for (let h = 0; h < heads; h++) {
    const o = h * headDim + offset;
    for (let i = 0; i < half; i++) {
      const c = Math.cos(pos * inv[i]!) * attentionFactor, s = Math.sin(pos * inv[i]!) * attentionFactor;
      const a = interleaved ? o + 2 * i : o + i, b = interleaved ? a + 1 : a + half;
      const x1 = v[a]!, x2 = v[b]!;
      v[a] = x1 * c - x2 * s;
      v[b] = x2 * c + x1 * s;
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

/** DeepSeek's group_limited_greedy: the experts form `num` groups, of which the `top` with the best expert compete. */
export interface RouteGroups {
  num: number;
  top: number;
}

/**
 * Top-k experts by softmax probability (ties: lower id), weights renormalized to sum 1, or
 * (renormalize false, Qwen2-MoE) the softmax over all experts as it is; times `scale`
 * (DeepSeek's routed_scaling_factor). With groups, as transformers' DeepseekV2Moe: the
 * probabilities of experts outside the best groups are masked to 0 before the top-k.
 */
export function referenceRoute(logits: ArrayLike<number>, k: number, renormalize = true, groups?: RouteGroups,
  scale = 1): { ids: number[]; weights: number[] } {
  const mx = Math.max(...Array.from(logits));
  const p = Array.from(logits, (l) => Math.exp(l - mx));
  const total = p.reduce((s, v) => s + v, 0);
  let masked = p;
  if (groups && groups.num > 1) {
    const size = p.length / groups.num;
    const best = Array.from({ length: groups.num }, (_, g) => Math.max(...p.slice(g * size, (g + 1) * size)));
    const chosen = best.map((_, g) => g).sort((a, b) => best[b]! - best[a]! || a - b).slice(0, groups.top);
    masked = p.map((v, e) => (chosen.includes(Math.floor(e / size)) ? v : 0));
  }
  const order = masked.map((_, e) => e).sort((a, b) => masked[b]! - masked[a]! || a - b);
  const ids = order.slice(0, k);
  const sum = renormalize ? ids.reduce((s, e) => s + p[e]!, 0) : total;
  return { ids, weights: ids.map((e) => (p[e]! / sum) * scale) };
}

/**
 * The layer's feed-forward: the dense MLP, or a mixture of experts (width moe_intermediate_size)
 * plus, as Qwen2-MoE, a shared expert times sigmoid(x . shared_expert_gate) (DeepSeek: ungated).
 * Layers in dense_layers keep the dense MLP in a MoE model.
 */
function ffn(spec: ModelSpec, w: Weights, p: string, x: Float64Array, layer: number): Float64Array {
  const E = spec.num_experts ?? 0;
  if (E === 0 || spec.dense_layers?.includes(layer)) return mlp(spec, w, p, x);
  const groups = { num: spec.moe_num_groups ?? 1, top: spec.moe_topk_groups ?? spec.moe_num_groups ?? 1 };
  const { ids, weights } = referenceRoute(linear(x, w.get(p + "router")!, undefined, E), spec.num_experts_per_tok!,
    spec.moe_renormalize ?? true, groups, spec.moe_routed_scale ?? 1);
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

/** The attention inputs of one layer: q [t][heads * qd], k [t][kvHeads * qd], v [t][kvHeads * vd]. */
interface Qkv {
  q: Float64Array[];
  k: Float64Array[];
  v: Float64Array[];
  qd: number;
  vd: number;
  kvHeads: number;
}

/**
 * DeepSeek-V2's attention inputs as transformers computes them: q per head [nope | rope], and per
 * head keys [W_uk c | k_pe] and values W_uv c up-projected from the normalized latent c (kv_b's
 * rows per head: nope key rows, then v rows); q_pe and k_pe rotate by RoPE.
 */
function mlaQkv(spec: ModelSpec, w: Weights, p: string, x: Float64Array[], freqs: RopeFreqs,
  round: (x: number) => number = (v) => v): Qkv {
  const nh = spec.num_heads, L = spec.kv_lora_rank!, R = spec.qk_rope_head_dim!, dn = spec.qk_nope_head_dim!;
  const dv = spec.v_head_dim!, QL = spec.q_lora_rank ?? 0, dq = dn + R, interleaved = spec.rope_interleaved ?? false;
  const latent = { ...spec, norm_eps: spec.latent_norm_eps ?? 1e-6 };
  const get = (name: string) => w.get(p + name)!;
  const q = x.map((r, t) => {
    const v = QL
      ? linear(norm(latent, linear(r, get("q_a"), undefined, QL), get("q_a_norm"), undefined), get("q_b"), undefined, nh * dq)
      : linear(r, get("q"), undefined, nh * dq);
    rope(v, nh, dq, t, freqs, interleaved, dn);
    return v;
  });
  const k: Float64Array[] = [], v: Float64Array[] = [];
  x.forEach((r, t) => {
    const a = linear(r, get("kv_a"), undefined, L + R);
    const c = norm(latent, a.slice(0, L), get("kv_a_norm"), undefined).map(round);  // what the cache row keeps
    const kpe = a.slice(L);
    rope(kpe, 1, R, t, freqs, interleaved);
    kpe.forEach((v, i) => (kpe[i] = round(v)));
    const up = linear(c, get("kv_b"), undefined, nh * (dn + dv));
    const kt = new Float64Array(nh * dq), vt = new Float64Array(nh * dv);
    for (let h = 0; h < nh; h++) {
      const o = h * (dn + dv);
      kt.set(up.subarray(o, o + dn), h * dq);
      kt.set(kpe, h * dq + dn);
      vt.set(up.subarray(o + dn, o + dn + dv), h * dv);
    }
    k.push(kt);
    v.push(vt);
  });
  return { q, k, v, qd: dq, vd: dv, kvHeads: nh };
}

/** The softmax scale: attn_scale, else 1 / sqrt(q/k head dim), for MLA times yarn's mscale(factor, mscale_all_dim)^2. */
function softmaxScale(spec: ModelSpec): number {
  if (spec.attn_scale) return spec.attn_scale;
  const rs = spec.rope_scaling, s = 1 / Math.sqrt(spec.head_dim);
  if (spec.attention !== "mla" || rs?.type !== "yarn" || !rs.mscale_all_dim) return s;
  const m = mscaleOf(rs.factor, rs.mscale_all_dim);
  return s * m * m;
}

/**
 * Logits at every position of `tokens` (positions 0..n-1): [n][vocab]. kvRound(x, layer, "k" | "v"),
 * when given, is applied to each K (after RoPE) and V value: what a KV cache of another dtype keeps.
 */
export function referenceLogits(spec: ModelSpec, w: Weights, tokens: number[],
  kvRound?: (x: number, layer: number, which: "k" | "v") => number): Float64Array[] {
  const H = spec.hidden_size, nh = spec.num_heads, nkv = spec.num_kv_heads, hd = spec.head_dim;
  const D = spec.embed_dim ?? H, rope_ = spec.positions === "rope";
  const scale = softmaxScale(spec);
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
    const standardQkv = (x: Float64Array[]): Qkv => {
      const project = (name: string, heads: number, rotate: boolean) => x.map((r, t) => {
        let v = linear(r, w.get(p + name)!, w.get(p + name + "_bias"), heads * hd);
        if (rotate && spec.qk_norm) v = norm(spec, v, w.get(`${p}${name}_norm`)!, undefined);
        if (rotate && rope_) rope(v, heads, hd, t, freqs, spec.rope_interleaved ?? false);
        return v;
      });
      return { q: project("q", nh, true), k: project("k", nkv, true), v: project("v", nkv, false), qd: hd, vd: hd, kvHeads: nkv };
    };
    const attention = (x: Float64Array[]): Float64Array[] => {
      const mla = spec.attention === "mla";
      const { q, k, v, qd, vd, kvHeads } = mla
        ? mlaQkv(spec, w, p, x, freqs, kvRound ? (v) => kvRound(v, l, "k") : undefined)
        : standardQkv(x);
      if (kvRound && !mla) for (const [kv, which] of [[k, "k"], [v, "v"]] as const) kv.forEach((r) => r.forEach((x, i) => (r[i] = kvRound(x, l, which))));
      const group = nh / kvHeads;
      return q.map((qt, t) => {
        const o = new Float64Array(nh * vd);
        for (let head = 0; head < nh; head++) {
          const kvh = Math.floor(head / group);
          const js: number[] = [];
          for (let j = 0; j <= t; j++) if (!window || t - j < window) js.push(j);
          const scores = js.map((j) => {
            let s = 0;
            for (let d = 0; d < qd; d++) s += qt[head * qd + d]! * k[j]![kvh * qd + d]!;
            return softcap(s * scale, spec.attn_logit_softcap);  // Gemma 2: scale, cap, then the mask
          });
          const mx = Math.max(...scores);
          const e = scores.map((s) => Math.exp(s - mx));
          const sum = e.reduce((a, b) => a + b, 0);
          js.forEach((j, idx) => {
            for (let d = 0; d < vd; d++) o[head * vd + d] = o[head * vd + d]! + (e[idx]! / sum) * v[j]![kvh * vd + d]!;
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
      h = add(add(h, attention(x)), xm.map((r) => ffn(spec, w, p, r, l)));
    } else if (spec.norm_position === "post") {
      h = add(h, attention(h)).map(normOf(p + "attn_norm"));
      h = add(h, h.map((r) => ffn(spec, w, p, r, l))).map(normOf(p + "mlp_norm"));
    } else if (spec.sandwich_norms) {
      // Gemma 2/3: input_layernorm, post_attention_layernorm, pre_ and post_feedforward_layernorm
      h = add(h, attention(h.map(normOf(p + "attn_norm"))).map(normOf(p + "post_attn_norm")));
      h = add(h, h.map((r) => normOf(p + "post_mlp_norm")(ffn(spec, w, p, normOf(p + "mlp_norm")(r), l))));
    } else {
      h = add(h, attention(h.map(normOf(p + "attn_norm"))));
      h = add(h, h.map((r) => ffn(spec, w, p, normOf(p + "mlp_norm")(r), l)));
    }
  }
  const head = spec.tie_word_embeddings ? embed : w.get("lm_head")!;
  return h.map((r) => {
    let x = spec.final_norm ?? true ? normOf("final_norm")(r) : r;
    if (D !== H) x = linear(x, w.get("embed_proj_out")!, undefined, D);
    return linear(x, head, w.get("lm_head_bias"), spec.vocab_size).map((v) => softcap(v, spec.final_logit_softcap));
  });
}
