import { describe, expect, test } from "bun:test";
import { ModelConfigError } from "./configFields";
import { readRope, type RopeContext } from "./ropeConfig";

const ctx: RopeContext = { maxPositions: 40960, headDim: 128, theta: 10000 };

function expectError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelConfigError);
  expect((err as Error).message).toMatch(pattern);
}

/** Increasing divisors as Phi-3's lists have them: 1 at the fast end, larger for slow frequencies. */
const ramp = (n: number, top: number) => Array.from({ length: n }, (_, i) => 1 + ((top - 1) * i) / (n - 1));

describe("readRope: yarn", () => {
  test("Qwen3's documented rope_scaling: factor as given, 4 x 32768 positions served", () => {
    const cfg = { rope_theta: 1e6, rope_scaling: { rope_type: "yarn", factor: 4.0, original_max_position_embeddings: 32768 } };
    expect(readRope(cfg, ctx)).toEqual({
      theta: 1e6,
      partialRotaryFactor: 1,
      scaling: { type: "yarn", factor: 4, original_max_position_embeddings: 32768 },
      maxPositions: 131072,
    });
  });

  test("optional fields pass through; 0 betas mean the defaults; original defaults to max_position_embeddings", () => {
    const r = readRope(
      { rope_scaling: { type: "yarn", factor: 40, beta_fast: 0, beta_slow: 1, mscale: 0.707, mscale_all_dim: 0.707, truncate: false } },
      { ...ctx, maxPositions: 4096 },
    );
    expect(r.scaling).toEqual({
      type: "yarn", factor: 40, original_max_position_embeddings: 4096, beta_slow: 1, truncate: false, mscale: 0.707, mscale_all_dim: 0.707,
    });
    expect(r.maxPositions).toBe(163840);
    const af = readRope({ rope_scaling: { type: "yarn", factor: 2, attention_factor: 1.1 } }, ctx).scaling;
    expect(af).toMatchObject({ attention_factor: 1.1 });
  });

  test("transformers v5 rope_parameters; factor absent: max / original", () => {
    const v5 = readRope({ rope_parameters: { rope_type: "yarn", rope_theta: 1e6, factor: 4, original_max_position_embeddings: 32768 } }, ctx);
    expect(v5.theta).toBe(1e6);
    expect(v5.scaling).toEqual({ type: "yarn", factor: 4, original_max_position_embeddings: 32768 });
    const implicit = readRope({ rope_scaling: { type: "yarn", original_max_position_embeddings: 4096 } }, { ...ctx, maxPositions: 16384 });
    expect(implicit.scaling).toMatchObject({ factor: 4 });
    expect(implicit.maxPositions).toBe(16384);
    expectError(() => readRope({ rope_scaling: { type: "yarn" } }, ctx), /missing required field rope_scaling\.factor/);
  });
});

describe("readRope: dynamic", () => {
  test("factor x max_position_embeddings (vLLM's served length), original as written", () => {
    const r = readRope({ rope_scaling: { type: "dynamic", factor: 2 } }, { ...ctx, maxPositions: 4096 });
    expect(r.scaling).toEqual({ type: "dynamic", factor: 2, original_max_position_embeddings: 4096 });
    expect(r.maxPositions).toBe(8192);
    const o = readRope({ rope_parameters: { rope_type: "dynamic", factor: 2, original_max_position_embeddings: 2048 } }, ctx);
    expect(o.scaling).toEqual({ type: "dynamic", factor: 2, original_max_position_embeddings: 2048 });
    expect(o.maxPositions).toBe(40960);
  });
});

describe("readRope: longrope (Phi-3)", () => {
  // microsoft/Phi-3-mini-128k-instruct: head_dim 96 -> 48 factors; 4096 pretraining positions.
  const short = ramp(48, 2.5), long = ramp(48, 64.8);
  const phi128k = { original_max_position_embeddings: 4096, rope_scaling: { type: "su", short_factor: short, long_factor: long } };
  const phiCtx: RopeContext = { maxPositions: 131072, headDim: 96, longropeAliases: true };
  const attention = Math.sqrt(1 + Math.log(32) / Math.log(4096));

  test("long factors when the served context exceeds the original; short within it", () => {
    expect(readRope(phi128k, phiCtx).scaling).toEqual({ type: "longrope", factors: long, attention_factor: attention });
    expect(readRope(phi128k, { ...phiCtx, servedLength: 4096 }).scaling).toEqual({ type: "longrope", factors: short, attention_factor: attention });
    expect(readRope(phi128k, { ...phiCtx, servedLength: 8192 }).scaling).toMatchObject({ factors: long });
    expect(readRope(phi128k, phiCtx).maxPositions).toBe(131072);
  });

  test("'su' and 'yarn' are LongRoPE only where the architecture says so", () => {
    const yarnNamed = { ...phi128k, rope_scaling: { ...phi128k.rope_scaling, type: "yarn" } };
    expect(readRope(yarnNamed, phiCtx).scaling).toMatchObject({ type: "longrope" });
    expectError(() => readRope(phi128k, { ...phiCtx, longropeAliases: false }), /unsupported rope scaling "su"/);
  });

  test("attention_factor and factor as given; original inside rope_parameters", () => {
    const given = { rope_scaling: { ...phi128k.rope_scaling, type: "longrope", attention_factor: 1.2 }, original_max_position_embeddings: 4096 };
    expect(readRope(given, phiCtx).scaling).toMatchObject({ attention_factor: 1.2 });
    const v5 = { rope_parameters: { rope_type: "longrope", short_factor: short, long_factor: long, original_max_position_embeddings: 4096, factor: 8 } };
    expect(readRope(v5, phiCtx).scaling).toMatchObject({ attention_factor: Math.sqrt(1 + Math.log(8) / Math.log(4096)) });
    // no scaling beyond the original: factor 1, attention factor 1
    expect(readRope({ ...phi128k, original_max_position_embeddings: 131072 }, phiCtx).scaling).toMatchObject({ factors: short, attention_factor: 1 });
  });

  test("lists must match the rotary dims (partial rotary halves them)", () => {
    // Phi-4-mini: head_dim 128, partial_rotary_factor 0.75 -> 96 rotary dims, 48 factors
    expect(readRope({ ...phi128k, partial_rotary_factor: 0.75 }, { ...phiCtx, headDim: 128 }).partialRotaryFactor).toBe(0.75);
    expectError(() => readRope(phi128k, { ...phiCtx, headDim: 128 }), /long_factor must be a list of 64 positive numbers/);
    expectError(() => readRope({ ...phi128k, rope_scaling: { type: "longrope", short_factor: short } }, phiCtx), /missing required field rope_scaling\.long_factor/);
  });
});

describe("readRope: per-layer-type rope_parameters (transformers 5)", () => {
  const gemma3 = {
    rope_parameters: {
      full_attention: { rope_type: "linear", factor: 8.0, rope_theta: 1e6 },
      sliding_attention: { rope_type: "default", rope_theta: 10000.0 },
    },
  };

  test("full layers give the scaling, sliding layers their base (where the architecture has one)", () => {
    expect(readRope(gemma3, { ...ctx, slidingBase: true })).toEqual({
      theta: 1e6, partialRotaryFactor: 1, scaling: { type: "linear", factor: 8 }, maxPositions: 40960, slidingTheta: 10000,
    });
  });

  test("elsewhere the two must agree; scaled sliding layers and other layer types are refused", () => {
    expectError(() => readRope({ ...gemma3, model_type: "qwen3" }, ctx), /sliding and full layers different RoPE, which model_type "qwen3"/);
    const same = { rope_parameters: { full_attention: { rope_type: "default", rope_theta: 1e6 }, sliding_attention: { rope_type: "default", rope_theta: 1e6 } } };
    expect(readRope(same, ctx)).toEqual({ theta: 1e6, partialRotaryFactor: 1, scaling: null, maxPositions: 40960 });
    const scaledSliding = { rope_parameters: { ...gemma3.rope_parameters, sliding_attention: { rope_type: "linear", factor: 2 } } };
    expectError(() => readRope(scaledSliding, { ...ctx, slidingBase: true }), /RoPE scaling on sliding layers/);
    expectError(() => readRope({ rope_parameters: { chunked_attention: { rope_type: "default" } } }, ctx), /unsupported layer type "chunked_attention"/);
    // only sliding layers: their dict is the model's
    expect(readRope({ rope_parameters: { sliding_attention: { rope_type: "default", rope_theta: 5e5 } } }, ctx).theta).toBe(5e5);
  });
});
