// FP8 E4M3 in libfastgen (issue #18): the codec against known bit patterns and against the
// independent TypeScript twin (test/helpers/e4m3.ts); quantized weights (fg_engine_load_quantized_tensor
// and the spec's "quantization": "fp8") giving exactly the logits of their dequantized fp32 weights;
// the FP8 KV cache on the CPU against the float64 reference with K/V rounded through E4M3.
import { describe, expect, test } from "bun:test";
import { FastgenError, NativeEngine, dequantizeFp8, quantizeFp8 } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";
import { dequantizeBlocks, e4m3Round, e4m3ToF32, f32ToE4m3, quantizeBlocks } from "../helpers/e4m3";
import { decodeValues, encodeValues } from "../helpers/safetensors-writer";
import {
  buildEngine, bytesOf, DEEPSEEK_LITE_LIKE, makeBatch, randomTokens, randomWeights, relErr, rng, tensorShapes, tinySpec,
} from "./helpers";
import { referenceLogits, type Weights } from "./reference";

const LINEAR = /(^|\.)(q|k|v|o|gate|up|down)$/;

function thrown(fn: () => unknown): FastgenError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FastgenError);
    return e as FastgenError;
  }
  throw new Error("expected a FastgenError");
}

/** Logits of every prompt position, one pass. */
function promptLogits(e: NativeEngine, tokens: number[]): Float32Array {
  const blocks = Array.from({ length: Math.ceil(tokens.length / 4) }, (_, i) => i);
  const rows = tokens.map((_, at) => ({ at }));
  return e.step(makeBatch([{ tokens, context: 0, blocks, rows }], { returnLogits: true })).logits!;
}

describe("E4M3 codec (TypeScript twin)", () => {
  test("known bit patterns decode exactly", () => {
    expect(e4m3ToF32(0x7e)).toBe(448);
    expect(e4m3ToF32(0xfe)).toBe(-448);
    expect(e4m3ToF32(0x08)).toBe(2 ** -6);
    expect(e4m3ToF32(0x07)).toBe(7 * 2 ** -9);
    expect(e4m3ToF32(0x01)).toBe(2 ** -9);
    expect(e4m3ToF32(0x38)).toBe(1);
    expect(e4m3ToF32(0x3a)).toBe(1.25);
    expect(Object.is(e4m3ToF32(0x80), -0)).toBe(true);
    expect(e4m3ToF32(0x7f)).toBeNaN();
    expect(e4m3ToF32(0xff)).toBeNaN();
    expect(e4m3ToF32(0x78)).toBe(256);  // e = 15 is a normal binade: only m = 7 is NaN
  });

  test("encoding rounds to nearest even, saturates, and keeps NaN", () => {
    expect(f32ToE4m3(448)).toBe(0x7e);
    expect(f32ToE4m3(460)).toBe(0x7e);
    expect(f32ToE4m3(1e9)).toBe(0x7e);
    expect(f32ToE4m3(Infinity)).toBe(0x7e);
    expect(f32ToE4m3(-Infinity)).toBe(0xfe);
    expect(f32ToE4m3(NaN)).toBe(0x7f);
    expect(f32ToE4m3(1.0625)).toBe(0x38);   // tie between 1 (m 0) and 1.125 (m 1): even
    expect(f32ToE4m3(1.1875)).toBe(0x3a);   // tie between 1.125 (m 1) and 1.25 (m 2): even
    expect(f32ToE4m3(1.07)).toBe(0x39);
    expect(f32ToE4m3(2 ** -10)).toBe(0x00); // half the smallest subnormal: even is 0
    expect(f32ToE4m3(3 * 2 ** -10)).toBe(0x02);
    expect(f32ToE4m3(2 ** -9)).toBe(0x01);
    expect(f32ToE4m3(15.5 * 2 ** -10)).toBe(0x08);  // rounds up into the smallest normal
    expect(f32ToE4m3(-(2 ** -6))).toBe(0x88);
    expect(f32ToE4m3(-0)).toBe(0x80);
    expect(f32ToE4m3(416 + 15.9)).toBe(0x7d);  // below the 432 midpoint
    expect(f32ToE4m3(432)).toBe(0x7e);          // the midpoint of 416 and 448: even (m 6)
  });

  test("every non-NaN byte survives decode -> encode", () => {
    for (let b = 0; b < 256; b++) if ((b & 0x7f) !== 0x7f) expect(f32ToE4m3(e4m3ToF32(b))).toBe(b);
  });
});

describe("libfastgen's E4M3 (fg_dequantize, fg_quantize_fp8) against the twin", () => {
  test("all 256 bytes decode alike", () => {
    const q = Uint8Array.from({ length: 256 }, (_, i) => i);
    const out = dequantizeFp8(q, 16, 16, Float32Array.of(1), 0, 0);
    for (let b = 0; b < 256; b++) {
      if (Number.isNaN(e4m3ToF32(b))) expect(out[b]).toBeNaN();
      else expect(out[b]).toBe(e4m3ToF32(b));
    }
  });

  test("per-row quantization is bit-identical, ties and subnormals included", () => {
    // amax 448: scale 1, so the row's bytes are e4m3 of the values themselves
    const row = [448, 1.0625, 1.1875, 2 ** -10, 3 * 2 ** -10, -448, 0, 2 ** -9, 432, -1.07];
    const { q, scales } = quantizeFp8(Float32Array.from(row), 1, row.length);
    expect(scales[0]).toBe(1);
    expect([...q]).toEqual([0x7e, 0x38, 0x3a, 0x00, 0x02, 0xfe, 0x00, 0x01, 0x7e, 0xb9]);

    const r = rng(18);
    const rows = 37, cols = 53;
    const w = Float32Array.from({ length: rows * cols }, () => (2 * r() - 1) * 10 ** (4 * r() - 3));
    w.fill(0, 5 * cols, 6 * cols);  // an all-zero row: scale 1
    const ours = quantizeFp8(w, rows, cols);
    const twin = quantizeBlocks(w, rows, cols, 1, cols);
    expect(ours.scales).toEqual(twin.scales);
    expect(ours.scales[5]).toBe(1);
    expect(ours.q).toEqual(twin.q);
  });

  test("block layouts dequantize alike, partial edge blocks included", () => {
    const r = rng(7);
    const rows = 29, cols = 45;
    const w = Float32Array.from({ length: rows * cols }, () => 2 * r() - 1);
    for (const [bm, bn, blockRows, blockCols] of [[rows, cols, 0, 0], [1, cols, 1, 0], [8, 16, 8, 16], [128, 128, 128, 128]]) {
      const qz = quantizeBlocks(w, rows, cols, bm!, bn!);
      expect(dequantizeFp8(qz.q, rows, cols, qz.scales, blockRows!, blockCols!)).toEqual(dequantizeBlocks(qz, rows, cols));
    }
  });

  test("bad arguments are refused", () => {
    const q = new Uint8Array(6);
    expect(() => dequantizeFp8(q, 2, 3, Float32Array.of(1, 1, 1), 1, 0)).toThrow("3 scales for [2, 3] in blocks of [1, 3] (want 2)");
    expect(() => dequantizeFp8(q, 2, 3, Float32Array.of(1, -1), 1, 0)).toThrow("scale 1 is -1");
    expect(() => dequantizeFp8(q, 2, 3, Float32Array.of(NaN), 0, 0)).toThrow("finite");
    expect(() => dequantizeFp8(q, 2, 3, Float32Array.of(1), -1, 0)).toThrow("block sizes must be >= 0");
    expect(() => quantizeFp8(Float32Array.of(1, Infinity, 2, 3), 2, 2)).toThrow("row 0 holds a value that is not finite");
    expect(() => quantizeFp8(Float32Array.of(1, 2, NaN, 3), 2, 2)).toThrow("row 1");
  });
});

/** Loads w into an engine: linear weights through `linear` (quantized or not), the rest as F32. */
function engineWith(spec: ModelSpec, w: Weights, linear: (e: NativeEngine, name: string, shape: number[], data: Float32Array) => void,
  kv = {}) {
  const e = NativeEngine.create(spec);
  for (const [name, shape] of tensorShapes(spec)) {
    if (LINEAR.test(name)) linear(e, name, shape, w.get(name)!);
    else e.loadTensor(name, "F32", shape, bytesOf(w.get(name)!));
  }
  e.finalize({ numBlocks: 64, blockSize: 4, ...kv });
  return e;
}

describe("quantized weights on the CPU backend", () => {
  const specs: [string, ModelSpec][] = [
    ["llama GQA", tinySpec()],
    ["mixtral-like MoE with a shared expert", tinySpec({ arch: "mixtral", num_experts: 4, num_experts_per_tok: 2, shared_expert_intermediate_size: 24 })],
  ];
  const tokens = randomTokens(rng(3), 11, 97);

  for (const [label, spec] of specs) {
    test(`${label}: FP8 weights (per tensor, per channel, blocks) give exactly the logits of their dequantized fp32 weights`, () => {
      const w = randomWeights(spec, 21);
      for (const [bm, bn] of [[0, 0], [1, 0], [16, 32]] as const) {
        const dq = new Map(w);
        const fp8 = engineWith(spec, w, (e, name, [rows, cols], data) => {
          const qz = quantizeBlocks(data, rows!, cols!, bm || rows!, bn || cols!);
          dq.set(name, dequantizeBlocks(qz, rows!, cols!));
          e.loadTensor(name, "F8_E4M3", [rows!, cols!], qz.q, { values: qz.scales, blockRows: bm, blockCols: bn, inputScale: 0.5 });
        });
        const plain = buildEngine(spec, dq, { numBlocks: 64, blockSize: 4 });
        expect(promptLogits(fp8, tokens)).toEqual(promptLogits(plain, tokens));
        fp8.destroy();
        plain.destroy();
      }
    });

    test(`${label}: "quantization": "fp8" equals loading the quantize-dequantized weights (F32 and BF16 sources)`, () => {
      const w = randomWeights(spec, 22);
      const fromF32 = buildEngine({ ...spec, quantization: "fp8" }, w, { numBlocks: 64, blockSize: 4 });
      const qdq = new Map([...w].map(([name, a]) => {
        const shape = tensorShapes(spec).get(name)!;
        return [name, LINEAR.test(name) ? dequantizeBlocks(quantizeBlocks(a, shape[0]!, shape[1]!, 1, shape[1]!), shape[0]!, shape[1]!) : a];
      }));
      const reference = buildEngine(spec, qdq, { numBlocks: 64, blockSize: 4 });
      const unquantized = buildEngine(spec, w, { numBlocks: 64, blockSize: 4 });
      const ref = promptLogits(reference, tokens);
      expect(promptLogits(fromF32, tokens)).toEqual(ref);
      const drift = relErr(promptLogits(unquantized, tokens), ref);
      expect(drift).toBeGreaterThan(1e-4);  // it did quantize
      expect(drift).toBeLessThan(0.2);

      // BF16 weights widen exactly, so quantizing them equals quantizing their fp32 values
      const bf16 = new Map([...w].map(([n, a]) => [n, decodeValues("BF16", encodeValues("BF16", a))]));
      const fromBf16 = engineWith({ ...spec, quantization: "fp8" }, bf16, (e, name, shape, data) =>
        e.loadTensor(name, "BF16", shape, encodeValues("BF16", data)));
      const qdqBf16 = new Map([...bf16].map(([name, a]) => {
        const shape = tensorShapes(spec).get(name)!;
        return [name, LINEAR.test(name) ? dequantizeBlocks(quantizeBlocks(a, shape[0]!, shape[1]!, 1, shape[1]!), shape[0]!, shape[1]!) : a];
      }));
      const refBf16 = buildEngine(spec, qdqBf16, { numBlocks: 64, blockSize: 4 });
      expect(promptLogits(fromBf16, tokens)).toEqual(promptLogits(refBf16, tokens));
      for (const e of [fromF32, reference, unquantized, fromBf16, refBf16]) e.destroy();
    });
  }

  test("a matrix that is not FP8-capable (embed, lm_head) may come quantized: it is dequantized at load", () => {
    const spec = tinySpec();
    const w = randomWeights(spec, 5);
    const e = NativeEngine.create(spec);
    const dq = new Map(w);
    for (const [name, shape] of tensorShapes(spec)) {
      if (name === "embed" || name === "lm_head") {
        const qz = quantizeBlocks(w.get(name)!, shape[0]!, shape[1]!, 1, shape[1]!);
        dq.set(name, dequantizeBlocks(qz, shape[0]!, shape[1]!));
        e.loadTensor(name, "F8_E4M3", shape, qz.q, { values: qz.scales, blockRows: 1, blockCols: 0 });
      } else {
        e.loadTensor(name, "F32", shape, bytesOf(w.get(name)!));
      }
    }
    e.finalize({ numBlocks: 64, blockSize: 4 });
    const plain = buildEngine(spec, dq, { numBlocks: 64, blockSize: 4 });
    expect(promptLogits(e, tokens)).toEqual(promptLogits(plain, tokens));
    e.destroy();
    plain.destroy();
  });

  test("bad quantized loads are refused, naming the tensor, and leave the engine loadable", () => {
    const spec = tinySpec();
    const e = NativeEngine.create(spec);
    const q = new Uint8Array(48 * 48);
    const one = { values: Float32Array.of(1), blockRows: 0, blockCols: 0 };
    let err = thrown(() => e.loadTensor("layers.0.q", "F8_E4M3", [48, 48], q));
    expect(err.message).toContain("'layers.0.q': F8_E4M3 data needs its scales");
    err = thrown(() => e.loadTensor("layers.0.q", "F8_E4M3", [48, 48], q, { values: new Float32Array(47), blockRows: 1, blockCols: 0 }));
    expect(err.message).toContain("'layers.0.q': 47 scales for [48, 48] in blocks of [1, 48] (want 48)");
    err = thrown(() => e.loadTensor("layers.0.q", "F8_E4M3", [48, 48], q, { values: Float32Array.of(-2), blockRows: 0, blockCols: 0 }));
    expect(err.message).toContain("scale 0 is -2");
    err = thrown(() => e.loadTensor("layers.0.q", "F8_E4M3", [48, 48], q, { ...one, inputScale: NaN }));
    expect(err.message).toContain("input_scale must be finite");
    err = thrown(() => e.loadTensor("layers.0.q", "BF16", [48, 48], new Uint8Array(48 * 48 * 2), one));
    expect(err.message).toContain("dtype BF16; quantized weights are F8_E4M3");
    err = thrown(() => e.loadTensor("layers.0.attn_norm", "F8_E4M3", [48], new Uint8Array(48), one));
    expect(err.message).toContain("only matrices are quantized");
    err = thrown(() => e.loadTensor("layers.0.q", "F8_E4M3", [48, 47], new Uint8Array(48 * 47), one));
    expect(err.message).toContain("expected shape [48, 48], got [48, 47]");
    e.loadTensor("layers.0.q", "F8_E4M3", [48, 48], q, one);
    e.destroy();
    err = thrown(() => NativeEngine.create(tinySpec({ quantization: "int8" as never })));
    expect(err.code).toBe("unsupported");
    expect(err.message).toContain('quantization "int8" is not supported; supported: "none", "fp8"');
  });
});

describe("FP8 KV cache on the CPU (kv_dtype FG_F8_E4M3)", () => {
  const spec = tinySpec();
  const w = randomWeights(spec, 9);
  const tokens = randomTokens(rng(4), 13, 97);

  /** Prefill 8 tokens in one pass, then decode the rest one by one (the cache is read back). */
  function run(kv: object): Float32Array[] {
    const e = buildEngine(spec, w, { numBlocks: 64, blockSize: 4, ...kv });
    const blocks = [0, 1, 2, 3];
    const out = [promptLogits(e, tokens.slice(0, 8))];
    for (let t = 8; t < tokens.length; t++)
      out.push(e.step(makeBatch([{ tokens: [tokens[t]!], context: t, blocks, wants: true }], { returnLogits: true })).logits!);
    e.destroy();
    return out;
  }
  const flat = (rows: (Float32Array | Float64Array)[]) => Float64Array.from(rows.flatMap((r) => [...r]));

  test("logits match the float64 reference with K and V rounded through E4M3, per-layer scales included", () => {
    const exact = flat(referenceLogits(spec, w, tokens));
    for (const scales of [null, { k: [0.05, 0.5], v: [0.01, 2] }]) {
      const kv = scales ? { kScales: Float32Array.from(scales.k), vScales: Float32Array.from(scales.v) } : {};
      const ref = flat(referenceLogits(spec, w, tokens, (x, layer, which) => e4m3Round(x, scales ? scales[which][layer]! : 1)));
      const ours = flat(run({ kvCacheDtype: "fp8", ...kv }));
      const err = relErr(ours, ref);
      expect(err).toBeLessThan(1e-5);
      expect(relErr(ours, exact)).toBeGreaterThan(100 * err);  // the rounding is what changed
    }
    const auto = flat(run({ kvCacheDtype: "auto" }));
    expect(relErr(auto, exact)).toBeLessThan(1e-5);
  });

  test("bad KV dtypes and scales are refused", () => {
    const e = NativeEngine.create(spec);
    for (const [name, shape] of tensorShapes(spec)) e.loadTensor(name, "F32", shape, bytesOf(w.get(name)!));
    expect(thrown(() => e.finalize({ numBlocks: 8, kvCacheDtype: "fp8", kScales: Float32Array.of(1, 0) })).message)
      .toContain("layer 1's K scale is 0 (must be finite and > 0)");
    expect(thrown(() => e.finalize({ numBlocks: 8, kvCacheDtype: "fp8", vScales: Float32Array.of(NaN, 1) })).message)
      .toContain("layer 0's V scale is nan");
    expect(thrown(() => e.finalize({ numBlocks: 8, kvCacheDtype: "fp8", kScales: Float32Array.of(1) })).message)
      .toContain("kScales has 1 entries, the model has 2 layers");
    expect(thrown(() => e.finalize({ numBlocks: 8, kvCacheDtype: "int8" as never })).message)
      .toBe('kvCacheDtype must be "auto" or "fp8", got "int8"');
    e.finalize({ numBlocks: 8, kvCacheDtype: "fp8" });  // still finalizable
    e.destroy();
  });
});

describe("FP8 KV cache with multi-head latent attention (the latent rows, at each layer's K scale)", () => {
  const spec = tinySpec(DEEPSEEK_LITE_LIKE);
  const w = randomWeights(spec, 9);
  const tokens = randomTokens(rng(4), 13, 97);
  const flat = (rows: (Float32Array | Float64Array)[]) => Float64Array.from(rows.flatMap((r) => [...r]));

  test("logits match the float64 reference with each cached [latent | k_pe] row rounded through E4M3", () => {
    const kScales = Array.from({ length: spec.num_layers }, (_, l) => [0.05, 0.5, 0.2][l % 3]!);
    const exact = flat(referenceLogits(spec, w, tokens));
    const ref = flat(referenceLogits(spec, w, tokens, (x, layer) => e4m3Round(x, kScales[layer]!)));
    const e = buildEngine(spec, w, { numBlocks: 64, blockSize: 4, kvCacheDtype: "fp8", kScales: Float32Array.from(kScales) });
    const blocks = [0, 1, 2, 3];
    const rows = [promptLogits(e, tokens.slice(0, 8))];
    for (let t = 8; t < tokens.length; t++)
      rows.push(e.step(makeBatch([{ tokens: [tokens[t]!], context: t, blocks, wants: true }], { returnLogits: true })).logits!);
    e.destroy();
    const ours = flat(rows);
    const err = relErr(ours, ref);
    expect(err).toBeLessThan(1e-5);
    expect(relErr(ours, exact)).toBeGreaterThan(100 * err);  // the rounding is what changed
  });
});
