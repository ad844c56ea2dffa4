// Bad input becomes a FastgenError naming the problem, and leaves the engine usable.
import { describe, expect, test } from "bun:test";
import { FastgenError, NativeEngine, cudaDeviceCount } from "../../src/native";
import { buildEngine, bytesOf, makeBatch, randomWeights, type SeqChunk, tinySpec } from "./helpers";

function thrown(fn: () => unknown): FastgenError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FastgenError);
    return e as FastgenError;
  }
  throw new Error("expected a FastgenError");
}

const spec = tinySpec();
const weights = randomWeights(spec, 8);

describe("engine creation and loading", () => {
  test("bad specs", () => {
    let e = thrown(() => NativeEngine.create(tinySpec({ rope_scaling: { type: "ntk-by-parts", factor: 2 } as never })));
    expect(e.code).toBe("unsupported");
    expect(e.message).toContain("ntk-by-parts");
    e = thrown(() => NativeEngine.create(tinySpec({ rope_scaling: { type: "dynamic", factor: 2 } as never })));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toContain("original_max_position_embeddings");
    e = thrown(() => NativeEngine.create(tinySpec({ rope_scaling: { type: "longrope", factors: [1], attention_factor: 1 } })));
    expect(e.message).toContain("rotary_dim / 2");
    e = thrown(() => NativeEngine.create(tinySpec({ layer_types: ["full"] })));
    expect(e.message).toContain("layer_types");
    e = thrown(() => NativeEngine.create(tinySpec({ shared_expert_intermediate_size: 8 })));
    expect(e.message).toContain("shared expert");
    e = thrown(() => NativeEngine.create(tinySpec({ norm: "layer", qk_norm: true })));
    expect(e.code).toBe("unsupported");
    e = thrown(() => NativeEngine.create(tinySpec({ mlp: "swiglu" as never })));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toContain("unknown mlp 'swiglu'");
    e = thrown(() => NativeEngine.create(tinySpec({ norm: "batch" as never })));
    expect(e.message).toContain("unknown norm 'batch'");
    e = thrown(() => NativeEngine.create(tinySpec({ num_kv_heads: 4 })));
    expect(e.message).toContain("num_kv_heads");
    e = thrown(() => NativeEngine.create(tinySpec({ norm_position: "post", layout: "parallel" })));
    expect(e.code).toBe("unsupported");
    expect(e.message).toContain("norm_position");
    e = thrown(() => NativeEngine.create(tinySpec({ num_experts: 2, num_experts_per_tok: 3 })));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toContain("num_experts_per_tok");
  });

  test("tensor_parallel: splits that do not divide, out-of-range counts, the CPU backend", () => {
    // tinySpec: 6 heads, 2 KV heads, intermediate 80
    let e = thrown(() => NativeEngine.create(tinySpec({ tensor_parallel: 4 })));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toContain("tensor_parallel 4 must divide num_heads (6)");
    e = thrown(() => NativeEngine.create(tinySpec({ tensor_parallel: 3 })));
    expect(e.message).toContain("num_kv_heads (2) must divide one another");
    e = thrown(() => NativeEngine.create(tinySpec({ tensor_parallel: 2, intermediate_size: 81 })));
    expect(e.message).toContain("must divide the MLP width (81)");
    e = thrown(() => NativeEngine.create(tinySpec({ tensor_parallel: 9 })));
    expect(e.message).toContain("tensor_parallel");
    e = thrown(() => NativeEngine.create(tinySpec({ tensor_parallel: 2 }), "cpu"));
    expect(e.code).toBe("unsupported");
    expect(e.message).toContain("needs the CUDA backend");
    // fewer KV heads than ranks is fine (each rank keeps one, replicated): only the backend refuses
    e = thrown(() => NativeEngine.create(tinySpec({ tensor_parallel: 6, num_kv_heads: 2, intermediate_size: 96 }), "cpu"));
    expect(e.message).toContain("needs the CUDA backend");
  });

  test.skipIf(cudaDeviceCount() > 0)("without a GPU, a CUDA engine is a clear error", () => {
    // "unsupported" from a CPU-only build, "device" from a CUDA build without a device.
    const e = thrown(() => NativeEngine.create(tinySpec(), "cuda"));
    expect(["unsupported", "device"]).toContain(e.code);
  });

  test("wrong shape, unknown name, missing tensors", () => {
    const engine = NativeEngine.create(spec);
    const q = weights.get("layers.0.q")!;
    let e = thrown(() => engine.loadTensor("layers.0.q", "F32", [48 * 48], bytesOf(q)));
    expect(e.code).toBe("invalid_argument");
    expect(e.message).toContain("layers.0.q");
    expect(e.message).toContain("expected shape [48, 48], got [2304]");
    e = thrown(() => engine.loadTensor("layers.0.q", "F32", [24, 96], bytesOf(q)));
    expect(e.message).toContain("got [24, 96]");
    e = thrown(() => engine.loadTensor("layers.9.q", "F32", [48, 48], bytesOf(q)));
    expect(e.code).toBe("not_found");
    expect(e.message).toContain("layers.9.q");
    e = thrown(() => engine.loadTensor("layers.0.q_bias", "F32", [48], bytesOf(q.subarray(0, 48))));
    expect(e.code).toBe("not_found");
    // Load all but two tensors: finalize names them.
    for (const [name, data] of weights)
      if (name !== "layers.1.down" && name !== "lm_head")
        engine.loadTensor(name, "F32", shapeOf(name), bytesOf(data));
    e = thrown(() => engine.finalize({ numBlocks: 8 }));
    expect(e.code).toBe("not_found");
    expect(e.message).toContain("layers.1.down");
    expect(e.message).toContain("lm_head");
    // Still usable: load the rest and run.
    engine.loadTensor("layers.1.down", "F32", shapeOf("layers.1.down"), bytesOf(weights.get("layers.1.down")!));
    engine.loadTensor("lm_head", "F32", shapeOf("lm_head"), bytesOf(weights.get("lm_head")!));
    const info = engine.finalize({ numBlocks: 8 });
    expect(info.numBlocks).toBe(8);
    expect(info.blockSize).toBe(16);
    expect(engine.step(makeBatch([{ tokens: [1, 2], context: 0, blocks: [0], wants: true }])).ids[0]).toBeGreaterThanOrEqual(0);
    engine.destroy();
  });

  test("f16 and bf16 weights convert to the same model as f32", () => {
    const a = buildEngine(spec, weights);
    const b = NativeEngine.create(spec);
    let i = 0;
    for (const [name, data] of weights) {
      const dtype = i++ % 2 ? "BF16" : "F16";
      b.loadTensor(name, dtype, shapeOf(name), dtype === "BF16" ? toBf16(data) : toF16(data));
    }
    b.finalize({ numBlocks: 8, blockSize: 4 });
    const batch = makeBatch([{ tokens: [5, 6, 7], context: 0, blocks: [0], wants: true }], { returnLogits: true });
    const la = a.step(batch).logits!, lb = b.step(batch).logits!;
    let num = 0, den = 0;
    la.forEach((x, j) => { num += (x - lb[j]!) ** 2; den += x * x; });
    expect(Math.sqrt(num / den)).toBeLessThan(2e-2);  // half precision weights
    expect(Math.sqrt(num / den)).toBeGreaterThan(0);
    a.destroy();
    b.destroy();
  });

  test("kv pool sizing and destroy", () => {
    const engine = NativeEngine.create(spec);
    for (const [name, data] of weights) engine.loadTensor(name, "F32", shapeOf(name), bytesOf(data));
    // 2 layers x (K + V) x 16 tokens x 2 kv heads x 8 dims x 4 bytes = 4 KiB per block
    const info = engine.finalize({ maxKvBytes: 100 * 1024 });
    expect(info.numBlocks).toBe(25);
    expect(info.kvBytes).toBe(25 * 4096);
    expect(info.weightBytes).toBe([...weights.values()].reduce((n, a) => n + a.byteLength, 0));
    expect(info.backend).toBe("cpu");
    expect(info.numThreads).toBeGreaterThanOrEqual(1);
    expect(info.vocabSize).toBe(spec.vocab_size);
    expect(thrown(() => engine.finalize()).message).toContain("already finalized");
    engine.destroy();
    engine.destroy();  // idempotent
    expect(thrown(() => engine.info()).message).toContain("destroy");
  });
});

describe("batch validation", () => {
  const engine = buildEngine(spec, weights, { numBlocks: 16, blockSize: 4 });
  const good: SeqChunk = { tokens: [1, 2, 3, 4, 5], context: 0, blocks: [3, 4], wants: true };

  test("invalid batches throw and change nothing", () => {
    engine.step(makeBatch([good]));
    // Decoding position 5 reads positions 0..4 from the cache.
    const decode: SeqChunk = { tokens: [6], context: 5, blocks: [3, 4], wants: true };
    const before = engine.step(makeBatch([decode], { returnLogits: true })).logits!;
    // Each bad batch would overwrite positions 0..4 of blocks 3, 4 with other tokens.
    const bad: SeqChunk = { tokens: [9, 8, 7, 6, 5], context: 0, blocks: [3, 4], wants: true };
    const cases: [SeqChunk[], string, ((b: ReturnType<typeof makeBatch>) => void)?][] = [
      [[{ ...bad, blocks: [3] }], "does not cover"],
      [[{ ...bad, tokens: [1, 2, spec.vocab_size, 4, 5] }], "token_ids[2]"],
      [[{ ...bad, blocks: [3, 99] }], "block_indices[1] = 99"],
      [[bad], "positions[1] = 7", (b) => { b.positions[1] = 7; }],
      [[bad, good], "cu_seqlens", (b) => { b.cuSeqlens[1] = 6; b.cuSeqlens[2] = 3; }],
      [[{ ...bad, context: spec.max_position_embeddings - 2, blocks: Array(130).fill(1) }], "max_position_embeddings"],
      [[{ ...bad, temperature: -1 }], "temperature"],
      [[{ ...bad, penaltyIds: [-3] }], "penalty_ids[0]"],
      [[bad, { ...good, blocks: [5, 4] }], "sequences 0 and 1 both write KV block 4, slot 0"],
    ];
    for (const [chunks, msg, edit] of cases) {
      const batch = makeBatch(chunks);
      edit?.(batch);
      const e = thrown(() => engine.step(batch));
      expect(e.code).toBe("invalid_argument");
      expect(e.message).toContain(msg);
    }
    // Short arrays are caught before the call.
    const short = makeBatch([bad]);
    short.positions = short.positions.subarray(0, 2);
    expect(thrown(() => engine.step(short)).message).toContain("positions");
    // Nothing was written: the cached prompt still gives the same logits.
    const after = engine.step(makeBatch([decode], { returnLogits: true })).logits!;
    expect(Array.from(after)).toEqual(Array.from(before));
  });

  test("debugFailNextSteps fails exactly the next N steps", () => {
    engine.debugFailNextSteps(2);
    const batch = makeBatch([good]);
    expect(thrown(() => engine.step(batch)).code).toBe("internal");
    expect(thrown(() => engine.step(batch)).code).toBe("internal");
    expect(engine.step(batch).ids[0]).toBeGreaterThanOrEqual(0);
  });
});

function shapeOf(name: string): number[] {
  const H = spec.hidden_size, I = spec.intermediate_size, V = spec.vocab_size;
  const qd = spec.num_heads * spec.head_dim, kvd = spec.num_kv_heads * spec.head_dim;
  const base = name.replace(/^layers\.\d+\./, "");
  const shapes: Record<string, number[]> = {
    embed: [V, H], lm_head: [V, H], final_norm: [H], attn_norm: [H], mlp_norm: [H],
    q: [qd, H], k: [kvd, H], v: [kvd, H], o: [H, qd], gate: [I, H], up: [I, H], down: [H, I],
  };
  return shapes[base]!;
}

function toBf16(a: Float32Array): Uint8Array {
  const u = new Uint32Array(a.buffer, a.byteOffset, a.length);
  return bytesOf16(Uint16Array.from(u, (x) => x >>> 16));
}

function toF16(a: Float32Array): Uint8Array {
  const out = new Uint16Array(a.length);
  const f = new Float32Array(1), u = new Uint32Array(f.buffer);
  a.forEach((x, i) => {
    f[0] = x;
    const bits = u[0]!;
    const sign = (bits >>> 16) & 0x8000;
    const exp = ((bits >>> 23) & 0xff) - 127 + 15;
    const mant = (bits >>> 13) & 0x3ff;
    out[i] = exp <= 0 ? sign : exp >= 31 ? sign | 0x7c00 : sign | (exp << 10) | mant;  // truncating; fine for tests
  });
  return bytesOf16(out);
}

function bytesOf16(a: Uint16Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
