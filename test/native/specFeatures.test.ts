// The second-wave spec fields (Gemma 2/3, Qwen3, Qwen2/3-MoE, Phi-3, YaRN) on the CPU backend, by
// identities that hold only when a field is applied as transformers applies it: a neutral value
// changes nothing, a value that another part of the model can absorb gives the same logits, and
// a value that matters changes them. forward.test.ts checks the same fields against the float64
// reference.
import { describe, expect, test } from "bun:test";
import type { ModelSpec } from "../../src/native/modelSpec";
import { buildEngine, makeBatch, maxAbsDiff, randomTokens, randomWeights, relErr, rng, tensorShapes, tinySpec } from "./helpers";
import { referenceLogits, type Weights } from "./reference";

const TOKENS = randomTokens(rng(41), 20, 97);
const SAME = 1e-5, DIFFERENT = 1e-3;

/** Logits at every position of TOKENS, prefilled in one pass: [20 * vocab]. */
function logitsOf(spec: ModelSpec, w: Weights): Float32Array {
  const engine = buildEngine(spec, w);
  const batch = makeBatch([{ tokens: TOKENS, context: 0, blocks: [3, 0, 7, 1, 5], rows: TOKENS.map((_, at) => ({ at })) }],
    { returnLogits: true });
  const logits = engine.step(batch).logits!;
  engine.destroy();
  return logits;
}

/** w with the named tensors mapped elementwise (fp32). */
function mapped(w: Weights, pick: (name: string) => boolean, f: (x: number) => number): Weights {
  return new Map([...w].map(([name, a]) => [name, pick(name) ? a.map(f) : a]));
}

/** w without the tensors that spec `to` has no use for (the same model without a part). */
function subset(w: Weights, to: ModelSpec): Weights {
  const keep = tensorShapes(to);
  return new Map([...w].filter(([name]) => keep.has(name)));
}

const isNorm = (name: string) => /norm$/.test(name);

describe("norms", () => {
  test("norm_weight_offset 1 with weights w - 1 equals offset 0 with w, for every RMSNorm", () => {
    // attn_norm, post_attn_norm, mlp_norm, post_mlp_norm, q_norm, k_norm, final_norm
    const plain = tinySpec({ qk_norm: true, sandwich_norms: true });
    const gemma = { ...plain, norm_weight_offset: 1 };
    const w = randomWeights(plain, 3);
    const base = logitsOf(plain, w);
    expect(relErr(logitsOf(gemma, mapped(w, isNorm, (x) => x - 1)), base)).toBeLessThan(SAME);
    expect(relErr(logitsOf(gemma, w), base)).toBeGreaterThan(DIFFERENT);
  });

  test("qk_norm: unit weights change the model, and make it blind to the scale of the q/k projections", () => {
    const spec = tinySpec({ qk_norm: true, norm_eps: 1e-12 });
    const none = { ...spec, qk_norm: false };
    const w = mapped(randomWeights(spec, 4), (n) => /[qk]_norm$/.test(n), () => 1);
    const base = logitsOf(spec, w);
    expect(relErr(base, logitsOf(none, subset(w, none)))).toBeGreaterThan(DIFFERENT);
    const q = (n: string) => /\.q$/.test(n), k = (n: string) => /\.k$/.test(n);
    const scaled = mapped(mapped(w, q, (x) => 3.7 * x), k, (x) => 0.25 * x);
    expect(relErr(logitsOf(spec, scaled), base)).toBeLessThan(SAME);
    // Without the norms the same scaling sharpens the softmax.
    expect(relErr(logitsOf(none, subset(scaled, none)), logitsOf(none, subset(w, none)))).toBeGreaterThan(DIFFERENT);
  });

  test("sandwich_norms: each sublayer's output is normalized, so scaling o and down changes nothing", () => {
    const spec = tinySpec({ sandwich_norms: true, norm_weight_offset: 1, norm_eps: 1e-12 });
    const w = randomWeights(spec, 5);
    const outs = (n: string) => /\.(o|down)$/.test(n);
    expect(relErr(logitsOf(spec, mapped(w, outs, (x) => 6 * x)), logitsOf(spec, w))).toBeLessThan(SAME);
    const pre = tinySpec({ norm_eps: 1e-12 });
    const wp = subset(w, pre);
    expect(relErr(logitsOf(pre, mapped(wp, outs, (x) => 6 * x)), logitsOf(pre, wp))).toBeGreaterThan(DIFFERENT);
  });
});

describe("scales and softcaps", () => {
  test("embed_scale s equals the embedding table multiplied by s (untied head), exactly in fp32", () => {
    const s = Math.fround(Math.sqrt(48));
    const spec = tinySpec();
    const w = randomWeights(spec, 6);
    const got = logitsOf({ ...spec, embed_scale: s }, w);
    expect(maxAbsDiff(got, logitsOf(spec, mapped(w, (n) => n === "embed", (x) => x * s)))).toBe(0);
    expect(relErr(got, logitsOf(spec, w))).toBeGreaterThan(DIFFERENT);
  });

  test("attn_scale: 1 / sqrt(head_dim) is the default; c / sqrt(head_dim) equals q weights times c", () => {
    const spec = tinySpec();
    const w = randomWeights(spec, 7);
    const base = logitsOf(spec, w);
    expect(maxAbsDiff(logitsOf({ ...spec, attn_scale: 1 / Math.sqrt(spec.head_dim) }, w), base)).toBe(0);
    const got = logitsOf({ ...spec, attn_scale: 2.5 / Math.sqrt(spec.head_dim) }, w);
    expect(relErr(got, logitsOf(spec, mapped(w, (n) => /\.q$/.test(n), (x) => 2.5 * x)))).toBeLessThan(SAME);
    expect(relErr(got, base)).toBeGreaterThan(DIFFERENT);
  });

  test("attn_logit_softcap: 1e9 is none; a small cap changes the logits as the float64 reference does", () => {
    const spec = tinySpec({ num_layers: 1 });
    const w = randomWeights(spec, 8);
    const base = logitsOf(spec, w);
    expect(relErr(logitsOf({ ...spec, attn_logit_softcap: 1e9 }, w), base)).toBeLessThan(1e-6);
    const capped = { ...spec, attn_logit_softcap: 0.5 };
    const got = logitsOf(capped, w);
    expect(relErr(got, base)).toBeGreaterThan(DIFFERENT);
    const ref = referenceLogits(capped, w, TOKENS);
    ref.forEach((row, t) => expect(relErr(got.subarray(t * 97, (t + 1) * 97), row)).toBeLessThan(1e-5));
  });

  test("final_logit_softcap c gives c * tanh(logits / c) of the uncapped run", () => {
    const spec = tinySpec();
    const w = randomWeights(spec, 9);
    const base = logitsOf(spec, w), c = 1.5;
    const got = logitsOf({ ...spec, final_logit_softcap: c }, w);
    expect(maxAbsDiff(got, base.map((x) => c * Math.tanh(x / c)))).toBeLessThan(1e-6);
    expect(maxAbsDiff(got, base)).toBeGreaterThan(0.1);
  });
});

describe("per-layer attention and rotation", () => {
  const windowed = tinySpec({ num_layers: 3, sliding_window: 5 });
  const w = randomWeights(windowed, 10);

  test("layer_types: all full is no window, all sliding is the plain sliding_window, a mix is neither", () => {
    const none = logitsOf({ ...windowed, sliding_window: 0 }, w), plain = logitsOf(windowed, w);
    expect(relErr(none, plain)).toBeGreaterThan(DIFFERENT);
    expect(maxAbsDiff(logitsOf({ ...windowed, layer_types: ["full", "full", "full"] }, w), none)).toBe(0);
    expect(maxAbsDiff(logitsOf({ ...windowed, layer_types: ["sliding", "sliding", "sliding"] }, w), plain)).toBe(0);
    const mixed = logitsOf({ ...windowed, layer_types: ["sliding", "full", "sliding"] }, w);
    expect(relErr(mixed, none)).toBeGreaterThan(DIFFERENT);
    expect(relErr(mixed, plain)).toBeGreaterThan(DIFFERENT);
  });

  test("sliding_rope_theta: equal to rope_theta changes nothing; another base only moves sliding layers", () => {
    const mixed: ModelSpec = { ...windowed, layer_types: ["sliding", "full", "sliding"] };
    const base = logitsOf(mixed, w);
    expect(maxAbsDiff(logitsOf({ ...mixed, sliding_rope_theta: mixed.rope_theta }, w), base)).toBe(0);
    expect(relErr(logitsOf({ ...mixed, sliding_rope_theta: 300 }, w), base)).toBeGreaterThan(DIFFERENT);
    const full: ModelSpec = { ...windowed, layer_types: ["full", "full", "full"] };
    expect(maxAbsDiff(logitsOf({ ...full, sliding_rope_theta: 300 }, w), logitsOf(full, w))).toBe(0);
  });

  test("sliding layers rotate at factor 1 while full layers keep the scaling's attention factor", () => {
    // Unit longrope factors with attention factor a, and sliding_rope_theta = rope_theta: sliding
    // and full layers rotate alike, and only the full ones may take the factor a.
    const a = 1.25, longrope = { type: "longrope" as const, factors: [1, 1, 1, 1], attention_factor: a };
    const mixed: ModelSpec = { ...windowed, sliding_window: 64, layer_types: ["sliding", "full", "sliding"] };
    const got = logitsOf({ ...mixed, rope_scaling: longrope, sliding_rope_theta: mixed.rope_theta }, w);
    const ref = referenceLogits({ ...mixed, rope_scaling: longrope, sliding_rope_theta: mixed.rope_theta }, w, TOKENS);
    ref.forEach((row, t) => expect(relErr(got.subarray(t * 97, (t + 1) * 97), row)).toBeLessThan(1e-5));
    expect(relErr(got, logitsOf({ ...mixed, rope_scaling: longrope }, w))).toBeGreaterThan(DIFFERENT);
  });
});

describe("rope scaling", () => {
  const spec = tinySpec();
  const w = randomWeights(spec, 11);
  const plain = logitsOf(spec, w);
  const ones = [1, 1, 1, 1];  // rotary_dim / 2 = 4

  test("longrope with unit factors and attention factor 1 is plain RoPE; factors f are linear scaling f", () => {
    expect(maxAbsDiff(logitsOf({ ...spec, rope_scaling: { type: "longrope", factors: ones, attention_factor: 1 } }, w), plain)).toBe(0);
    const linear = logitsOf({ ...spec, rope_scaling: { type: "linear", factor: 4 } }, w);
    expect(relErr(linear, plain)).toBeGreaterThan(DIFFERENT);
    const long4 = logitsOf({ ...spec, rope_scaling: { type: "longrope", factors: [4, 4, 4, 4], attention_factor: 1 } }, w);
    expect(maxAbsDiff(long4, linear)).toBe(0);
  });

  test("an attention factor a on cos and sin equals a softmax scale a^2 / sqrt(head_dim)", () => {
    const a = 1.3;
    const got = logitsOf({ ...spec, rope_scaling: { type: "longrope", factors: ones, attention_factor: a } }, w);
    expect(relErr(got, logitsOf({ ...spec, attn_scale: (a * a) / Math.sqrt(spec.head_dim) }, w))).toBeLessThan(SAME);
    expect(relErr(got, plain)).toBeGreaterThan(DIFFERENT);
  });

  test("yarn and dynamic with factor 1 are plain RoPE", () => {
    const yarn = logitsOf({ ...spec, rope_scaling: { type: "yarn", factor: 1, original_max_position_embeddings: 8 } }, w);
    expect(relErr(yarn, plain)).toBeLessThan(1e-6);
    const dynamic = logitsOf({ ...spec, rope_scaling: { type: "dynamic", factor: 1, original_max_position_embeddings: 8 } }, w);
    expect(relErr(dynamic, plain)).toBeLessThan(1e-6);
    const dynamic2 = logitsOf({ ...spec, rope_scaling: { type: "dynamic", factor: 2, original_max_position_embeddings: 8 } }, w);
    expect(relErr(dynamic2, plain)).toBeGreaterThan(DIFFERENT);
  });
});

describe("mixture of experts", () => {
  const moe = tinySpec({ arch: "qwen2_moe", num_experts: 4, num_experts_per_tok: 4, moe_intermediate_size: 24 });

  test("moe_renormalize false: top-k = E is the renormalized model (the softmax sums to 1), k < E is not", () => {
    const w = randomWeights(moe, 12);
    const all = logitsOf({ ...moe, moe_renormalize: false }, w);
    expect(relErr(all, logitsOf(moe, w))).toBeLessThan(1e-6);
    const top2 = { ...moe, num_experts_per_tok: 2 };
    expect(relErr(logitsOf({ ...top2, moe_renormalize: false }, w), logitsOf(top2, w))).toBeGreaterThan(DIFFERENT);
  });

  test("a shared expert with a zero down projection changes nothing, gated or not", () => {
    const top2 = { ...moe, num_experts_per_tok: 2, moe_renormalize: false };
    for (const gate of [false, true]) {
      const shared = { ...top2, shared_expert_intermediate_size: 40, shared_expert_gate: gate };
      const w = randomWeights(shared, 13);
      const without = logitsOf(top2, subset(w, top2));
      expect(maxAbsDiff(logitsOf(shared, mapped(w, (n) => n.endsWith("shared_expert.down"), () => 0)), without)).toBe(0);
      expect(relErr(logitsOf(shared, w), without)).toBeGreaterThan(DIFFERENT);
    }
  });

  test("the gated shared expert matches the reference and differs from the ungated one", () => {
    const shared = { ...moe, num_experts_per_tok: 2, shared_expert_intermediate_size: 40, shared_expert_gate: true };
    const w = randomWeights(shared, 14);
    const got = logitsOf(shared, w);
    referenceLogits(shared, w, TOKENS).forEach((row, t) => expect(relErr(got.subarray(t * 97, (t + 1) * 97), row)).toBeLessThan(1e-5));
    const ungated = { ...shared, shared_expert_gate: false };
    expect(relErr(got, logitsOf(ungated, subset(w, ungated)))).toBeGreaterThan(DIFFERENT);
  });
});
