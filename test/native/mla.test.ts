// DeepSeek-V2 on the CPU backend: multi-head latent attention (the engine attends in latent space
// over cached [latent | k_pe] rows; the float64 reference up-projects per-head keys and values as
// transformers does), dense first layers, shared experts, group-limited routing, the routed
// scale, and a KV pool that holds one latent row per token and layer. Chunk invariance of the
// same specs is in chunking.test.ts.
import { describe, expect, test } from "bun:test";
import type { ModelSpec } from "../../src/native/modelSpec";
import { FastgenError, NativeEngine } from "../../src/native";
import {
  buildEngine, DEEPSEEK_LITE_LIKE, DEEPSEEK_V2_LIKE, makeBatch, maxAbsDiff, randomTokens, randomWeights, relErr, rng,
  tensorShapes, tinySpec,
} from "./helpers";
import { referenceLogits, type Weights } from "./reference";

const TOKENS = randomTokens(rng(7), 18, 97);
const BLOCKS = [5, 1, 8, 3, 0];  // block size 4: 20 positions

/** Logits at every position of TOKENS, prefilled in one pass: [18 * vocab]. */
function logitsOf(spec: ModelSpec, w: Weights): Float32Array {
  const engine = buildEngine(spec, w);
  const out = engine.step(makeBatch([{ tokens: TOKENS, context: 0, blocks: BLOCKS, rows: TOKENS.map((_, at) => ({ at })) }],
    { returnLogits: true }));
  engine.destroy();
  return out.logits!;
}

function expectMatchesReference(spec: ModelSpec, w: Weights) {
  const engine = buildEngine(spec, w);
  const ref = referenceLogits(spec, w, TOKENS);
  // a prompt of 11 in one pass, then one token per pass (decode reads the cached latent rows)
  const first = engine.step(makeBatch([{ tokens: TOKENS.slice(0, 11), context: 0, blocks: BLOCKS, wants: true }],
    { returnLogits: true }));
  expect(relErr(first.logits!, ref[10]!)).toBeLessThan(1e-5);
  for (let p = 11; p < TOKENS.length; p++) {
    const out = engine.step(makeBatch([{ tokens: [TOKENS[p]!], context: p, blocks: BLOCKS, wants: true }], { returnLogits: true }));
    expect(relErr(out.logits!, ref[p]!)).toBeLessThan(1e-5);
  }
  engine.destroy();
}

const mapped = (w: Weights, pick: (name: string) => boolean, f: (x: number) => number): Weights =>
  new Map([...w].map(([name, a]) => [name, pick(name) ? a.map(f) : a]));

describe("multi-head latent attention matches the float64 reference", () => {
  const cases: [string, Partial<ModelSpec>][] = [
    ["V2-Lite-like: q_proj, interleaved YaRN with mscale (softmax scale x mscale^2), dense layer 0, shared expert",
      DEEPSEEK_LITE_LIKE],
    ["V2-like: q_a / q_a_norm / q_b, plain RoPE, group-limited routing, routed scale 2", DEEPSEEK_V2_LIKE],
    ["MLA with rotate_half RoPE, renormalized routing, latent norm eps 1e-3, every layer MoE",
      { ...DEEPSEEK_LITE_LIKE, rope_interleaved: false, moe_renormalize: true, latent_norm_eps: 1e-3, dense_layers: [] }],
    ["MLA with a sliding window and an attention logit softcap", { ...DEEPSEEK_V2_LIKE, sliding_window: 5, attn_logit_softcap: 2 }],
    ["interleaved RoPE on standard (GQA) attention", { rope_interleaved: true, partial_rotary_factor: 0.5 }],
  ];
  for (const [name, over] of cases) {
    test(name, () => {
      const spec = tinySpec(over);
      expectMatchesReference(spec, randomWeights(spec, 31));
    });
  }
});

describe("MLA pieces", () => {
  test("the YaRN mscale multiplies the softmax scale by mscale(factor, mscale_all_dim)^2", () => {
    // With mscale == mscale_all_dim RoPE's own attention factor is 1: only the softmax scale changes.
    const spec = tinySpec(DEEPSEEK_LITE_LIKE), w = randomWeights(spec, 32);
    const m = 0.1 * 0.707 * Math.log(4) + 1;
    const explicit = logitsOf({ ...spec, attn_scale: (m * m) / Math.sqrt(12) }, w);
    expect(relErr(logitsOf(spec, w), explicit)).toBeLessThan(1e-6);
    expect(relErr(logitsOf({ ...spec, attn_scale: 1 / Math.sqrt(12) }, w), explicit)).toBeGreaterThan(1e-3);
  });

  test("kv_b's rows per head are [nope keys | values]: doubling either equals doubling q's nope part or o, exactly", () => {
    const spec = tinySpec({ ...DEEPSEEK_LITE_LIKE, num_layers: 1, dense_layers: [] }), w = randomWeights(spec, 33);
    const kvb = (keys: boolean) => (name: string, a: Float32Array) =>
      name.endsWith(".kv_b") ? a.map((x, i) => (Math.floor(i / 16) % 18 < 8) === keys ? 2 * x : x) : a;
    const qNope = (name: string, a: Float32Array) => (name.endsWith(".q") ? a.map((x, i) => (Math.floor(i / 48) % 12 < 8 ? 2 * x : x)) : a);
    const double = (name: string, a: Float32Array) => (name.endsWith(".o") ? a.map((x) => 2 * x) : a);
    const apply = (f: (name: string, a: Float32Array) => Float32Array) => new Map([...w].map(([n, a]) => [n, f(n, a)]));
    const keys = logitsOf(spec, apply(kvb(true))), values = logitsOf(spec, apply(kvb(false)));
    expect(maxAbsDiff(keys, logitsOf(spec, apply(qNope)))).toBe(0);
    expect(maxAbsDiff(values, logitsOf(spec, apply(double)))).toBe(0);
    expect(relErr(keys, logitsOf(spec, w))).toBeGreaterThan(1e-3);
  });

  test("moe_routed_scale 2 equals every expert's down projection times 2, exactly", () => {
    const spec = tinySpec({ ...DEEPSEEK_V2_LIKE, moe_routed_scale: 1 }), w = randomWeights(spec, 34);
    const scaled = logitsOf({ ...spec, moe_routed_scale: 2 }, w);
    expect(maxAbsDiff(scaled, logitsOf(spec, mapped(w, (n) => /experts\.\d+\.down$/.test(n), (x) => 2 * x)))).toBe(0);
    expect(maxAbsDiff(scaled, logitsOf(spec, w))).toBeGreaterThan(1e-3);
  });

  test("group-limited routing: all groups allowed is plain top-k; one group of two is not", () => {
    const spec = tinySpec(DEEPSEEK_V2_LIKE), w = randomWeights(spec, 35);
    const greedy = { ...spec, moe_num_groups: 1, moe_topk_groups: 1 };
    expect(maxAbsDiff(logitsOf({ ...spec, moe_topk_groups: 2 }, w), logitsOf(greedy, w))).toBe(0);
    expect(relErr(logitsOf(spec, w), logitsOf(greedy, w))).toBeGreaterThan(1e-3);
  });

  test("dense_layers: those layers have gate/up/down, the others router, experts and the shared expert", () => {
    const names = [...tensorShapes(tinySpec(DEEPSEEK_V2_LIKE)).keys()];
    const layer = (i: number) => names.filter((n) => n.startsWith(`layers.${i}.`)).map((n) => n.slice(`layers.${i}.`.length));
    expect(layer(0).sort()).toEqual(["attn_norm", "down", "gate", "kv_a", "kv_a_norm", "kv_b", "mlp_norm", "o", "q_a", "q_a_norm", "q_b", "up"]);
    expect(layer(1)).toContain("router");
    expect(layer(1)).toContain("experts.3.down");
    expect(layer(1)).toContain("shared_expert.up");
    expect(layer(1)).not.toContain("gate");
    const shapes = tensorShapes(tinySpec(DEEPSEEK_V2_LIKE));
    expect(shapes.get("layers.1.kv_a")).toEqual([16 + 4, 48]);
    expect(shapes.get("layers.1.kv_b")).toEqual([4 * (8 + 10), 16]);
    expect(shapes.get("layers.1.q_b")).toEqual([4 * 12, 20]);
    expect(shapes.get("layers.1.o")).toEqual([48, 4 * 10]);
    expect(shapes.has("layers.1.q")).toBe(false);
    expect(tensorShapes(tinySpec(DEEPSEEK_LITE_LIKE)).get("layers.1.q")).toEqual([4 * 12, 48]);
  });
});

describe("the KV pool of an MLA model", () => {
  test("a block holds [kv_lora_rank + qk_rope_head_dim] per token and layer, one plane", () => {
    const spec = tinySpec(DEEPSEEK_LITE_LIKE), w = randomWeights(spec, 36);
    const perBlock = 3 * 4 * (16 + 4) * 4;  // layers x block size x row x fp32
    const engine = buildEngine(spec, w, { blockSize: 4, maxKvBytes: 100 * perBlock + 17 });
    const info = engine.info();
    expect(info.numBlocks).toBe(100);
    expect(info.kvBytes).toBe(100 * perBlock);
    engine.destroy();
    // The same heads as standard attention would cache 2 x 4 heads x 12 dims per token and layer.
    const standard = tinySpec({ num_layers: 3, num_heads: 4, num_kv_heads: 4, head_dim: 12 });
    const e2 = buildEngine(standard, randomWeights(standard, 36), { blockSize: 4, maxKvBytes: 100 * perBlock + 17 });
    expect(e2.info().numBlocks).toBe(Math.floor((100 * perBlock + 17) / (3 * 4 * 2 * 48 * 4)));
    e2.destroy();
  });

  test("sequences in neighbouring blocks keep their own latent rows", () => {
    // Two sequences interleaved block by block give each the logits it has alone.
    const spec = tinySpec(DEEPSEEK_V2_LIKE), w = randomWeights(spec, 37);
    const a = TOKENS.slice(0, 9), b = TOKENS.slice(9, 17);
    const alone = (tokens: number[], blocks: number[]) => {
      const e = buildEngine(spec, w);
      const out = e.step(makeBatch([{ tokens, context: 0, blocks, wants: true }], { returnLogits: true })).logits!;
      e.destroy();
      return out;
    };
    const e = buildEngine(spec, w);
    const both = e.step(makeBatch([{ tokens: a, context: 0, blocks: [0, 2, 4], wants: true },
      { tokens: b, context: 0, blocks: [1, 3], wants: true }], { returnLogits: true })).logits!;
    e.destroy();
    expect(maxAbsDiff(both.subarray(0, 97), alone(a, [9, 10, 11]))).toBeLessThan(1e-5);
    expect(maxAbsDiff(both.subarray(97), alone(b, [12, 13]))).toBeLessThan(1e-5);
  });
});

describe("MLA specs the engine refuses", () => {
  const refused = (over: Partial<ModelSpec>, backend: "cpu" | "cuda" = "cpu"): FastgenError => {
    try {
      NativeEngine.create(tinySpec(over), backend).destroy();
    } catch (e) {
      expect(e).toBeInstanceOf(FastgenError);
      return e as FastgenError;
    }
    throw new Error("expected a FastgenError");
  };

  test("inconsistent or unsupported MLA fields", () => {
    expect(refused({ ...DEEPSEEK_LITE_LIKE, num_kv_heads: 4 }).message).toContain("num_kv_heads 1");
    expect(refused({ ...DEEPSEEK_LITE_LIKE, head_dim: 8 }).message).toContain("qk_nope_head_dim + qk_rope_head_dim = 12");
    expect(refused({ ...DEEPSEEK_LITE_LIKE, qk_norm: true }).code).toBe("unsupported");
    expect(refused({ ...DEEPSEEK_LITE_LIKE, partial_rotary_factor: 0.5 }).message).toContain("partial_rotary_factor");
    expect(refused({ ...DEEPSEEK_LITE_LIKE, kv_lora_rank: undefined }).message).toContain("kv_lora_rank");
    expect(refused({ attention: "latent" as never }).message).toContain("unknown attention 'latent'");
  });

  test("dense_layers and routing groups that do not fit", () => {
    expect(refused({ dense_layers: [0] }).message).toContain("dense_layers needs num_experts");
    expect(refused({ ...DEEPSEEK_LITE_LIKE, dense_layers: [3] }).message).toContain("dense_layers[]");
    expect(refused({ ...DEEPSEEK_LITE_LIKE, dense_layers: [0, 0] }).message).toContain("twice");
    expect(refused({ ...DEEPSEEK_V2_LIKE, moe_num_groups: 3 }).message).toContain("must divide num_experts");
    // top-2 from one group of 1 expert
    expect(refused({ ...DEEPSEEK_V2_LIKE, moe_num_groups: 4, moe_topk_groups: 1 }).message).toContain("num_experts_per_tok");
  });

  test("the CUDA backend refuses MLA at tensor_parallel > 1, and widths its kernels do not take, at creation", () => {
    // before any device work: the same answer with or without a GPU (a CPU-only build says unsupported too)
    const lite = { ...DEEPSEEK_LITE_LIKE, kv_lora_rank: 12 };  // a 16-wide cache row
    let e = refused({ ...lite, tensor_parallel: 2 }, "cuda");
    expect(e.code).toBe("unsupported");
    expect(e.message).toMatch(/mla|CUDA/);
    e = refused(DEEPSEEK_LITE_LIKE, "cuda");  // latent 16 + rope 4: rows of 20 values, not a multiple of 8
    expect(e.code).toBe("unsupported");
    e = refused({ ...lite, kv_lora_rank: 1020 }, "cuda");  // latent over 512
    expect(e.code).toBe("unsupported");
  });
});
