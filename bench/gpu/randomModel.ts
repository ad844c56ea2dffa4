/**
 * Random bf16 models of real shapes for the CUDA benches (no download), loaded straight into a
 * NativeEngine, plus the ragged batches and the step timer the benches share. Weights come from
 * one seeded pool, so two engines loaded with the same seed hold the same model (TP=1 vs TP=2).
 */
import type { ModelSpec } from "../../src/native/modelSpec";
import { expectedTensors } from "../../src/model/weights";
import type { NativeEngine, StepBatch } from "../../src/native";

const BASE = {
  arch: "llama", max_position_embeddings: 8192, norm: "rms", norm_eps: 1e-5, positions: "rope", rope_theta: 10000,
  partial_rotary_factor: 1, rope_scaling: null, sliding_window: 0, qkv_bias: false, o_bias: false, mlp_bias: false,
  lm_head_bias: false, mlp: "gated_silu", layout: "sequential", tie_word_embeddings: false, head_dim: 128, vocab_size: 32000,
} as const;

/** Llama-2-7B, Llama-2-70B (GQA 64/8) and Mixtral-8x7B shapes; `layers` trims the depth. */
export function shapeSpec(shape: "7b" | "70b" | "mixtral", layers?: number): ModelSpec {
  const dims = {
    "7b": { hidden_size: 4096, intermediate_size: 11008, num_layers: 32, num_heads: 32, num_kv_heads: 32 },
    "70b": { hidden_size: 8192, intermediate_size: 28672, num_layers: 80, num_heads: 64, num_kv_heads: 8 },
    mixtral: { hidden_size: 4096, intermediate_size: 14336, num_layers: 32, num_heads: 32, num_kv_heads: 8, num_experts: 8, num_experts_per_tok: 2, arch: "mixtral" },
  }[shape];
  return { ...BASE, ...dims, ...(layers ? { num_layers: layers } : {}) } as ModelSpec;
}

/** xorshift32 in [0, 1). */
function rand(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

let pool: Uint16Array | null = null;
/** Random bf16 values: sign and 7 mantissa bits random, magnitude in [2^-10, 2^-6). */
function bf16Pool(n: number): Uint16Array {
  if (pool && pool.length >= n) return pool;
  const p = new Uint16Array(n);
  let x = 0x9e3779b9 | 0;
  for (let i = 0; i < n; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const r = x & 0xffff;
    p[i] = (r & 0x807f) | ((117 + ((r >>> 7) & 3)) << 7);
  }
  return (pool = p);
}

/**
 * Loads every tensor of `spec` into `e` (matrices bf16 from the pool at seeded offsets, vectors
 * f32 near 1). Returns the bytes of matrices a decode step streams (all but the embedding),
 * counting only the top-k experts' share of MoE layers.
 */
export function loadRandom(e: NativeEngine, spec: ModelSpec, seed = 1): number {
  const r = rand(seed);
  const biggest = Math.max(...[...expectedTensors(spec).values()].map((s) => s.reduce((a, b) => a * b, 1)));
  const p = bf16Pool(biggest + 8_000_000);
  let matBytes = 0;
  const E = spec.num_experts ?? 0, k = spec.num_experts_per_tok ?? 0;
  for (const [name, shape] of expectedTensors(spec)) {
    const n = shape.reduce((a, b) => a * b, 1);
    if (shape.length === 1) {
      const w = new Float32Array(n).map(() => 1 + (r() - 0.5) * 0.1);
      e.loadTensor(name, "F32", shape, new Uint8Array(w.buffer));
      continue;
    }
    const off = Math.floor(r() * (p.length - n));
    e.loadTensor(name, "BF16", shape, new Uint8Array(p.buffer, off * 2, n * 2));
    if (name === "embed") continue;
    matBytes += /\.experts\./.test(name) ? (n * 2 * k) / E : n * 2;
  }
  return matBytes;
}

/**
 * numSeqs sequences, each `chunk` tokens at context `ctx`, all sampling greedily (top-5 logprobs
 * optional). poolBlocks: block ids wrap around a pool that small (timing only: sequences then
 * share blocks, which changes no byte read but the K/V values).
 */
export function batchOf(spec: ModelSpec, numSeqs: number, chunk: number, ctx: number, blockSize: number,
  opts: { firstBlock?: number; tokens?: number[][]; numLogprobs?: number; poolBlocks?: number } = {}): StepBatch {
  const T = numSeqs * chunk, per = Math.ceil((ctx + chunk) / blockSize), first = opts.firstBlock ?? 0;
  const tokenIds = new Int32Array(T), positions = new Int32Array(T), cu = new Int32Array(numSeqs + 1);
  const blockIndptr = new Int32Array(numSeqs + 1), blockIndices = new Int32Array(numSeqs * per);
  for (let s = 0; s < numSeqs; s++) {
    for (let i = 0; i < chunk; i++) {
      tokenIds[s * chunk + i] = opts.tokens?.[s]?.[i] ?? (s * 7919 + i * 31) % spec.vocab_size;
      positions[s * chunk + i] = ctx + i;
    }
    cu[s + 1] = (s + 1) * chunk;
    for (let b = 0; b < per; b++) blockIndices[s * per + b] = (first + s * per + b) % (opts.poolBlocks ?? Infinity);
    blockIndptr[s + 1] = (s + 1) * per;
  }
  const f = (v: number) => new Float32Array(numSeqs).fill(v);
  return {
    tokenIds, positions, cuSeqlens: cu, contextLens: new Int32Array(numSeqs).fill(ctx), blockIndptr,
    blockIndices, rowIndptr: Int32Array.from({ length: numSeqs + 1 }, (_, s) => s),
    rowTokens: Int32Array.from({ length: numSeqs }, (_, s) => (s + 1) * chunk - 1), temperature: f(0), topP: f(1),
    topK: new Int32Array(numSeqs), minP: f(0), seed: new BigUint64Array(numSeqs), numLogprobs: opts.numLogprobs ?? 0,
  } as StepBatch;
}

/** Median wall time of `reps` steps after `warmup` (fg_step waits for its sampled tokens). */
export function timeSteps(e: NativeEngine, batch: StepBatch, reps: number, warmup = 2): number {
  for (let i = 0; i < warmup; i++) e.step(batch);
  const ms: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    e.step(batch);
    ms.push(performance.now() - t0);
  }
  ms.sort((a, b) => a - b);
  return ms[Math.floor(ms.length / 2)]!;
}

/**
 * Greedy generation of `steps` tokens for `prompts` (each its own blocks) through raw fg_step
 * calls: ids and top-5 [id, logprob] per step. The parity checks between engines use it.
 */
export function greedy(e: NativeEngine, spec: ModelSpec, prompts: number[][], steps: number, blockSize: number) {
  const maxLen = Math.max(...prompts.map((p) => p.length)) + steps;
  const per = Math.ceil(maxLen / blockSize);
  const seqs = prompts.map((p) => ({ tokens: [...p], ids: [] as number[], top: [] as [number, number][][] }));
  let ctx = seqs.map(() => 0);
  for (let step = 0; step <= steps - 1; step++) {
    const chunks = seqs.map((s, i) => s.tokens.slice(ctx[i]));
    const T = chunks.reduce((a, c) => a + c.length, 0);
    const tokenIds = new Int32Array(T), positions = new Int32Array(T), cu = new Int32Array(seqs.length + 1);
    let t = 0;
    chunks.forEach((c, i) => {
      c.forEach((id, j) => { tokenIds[t] = id; positions[t] = ctx[i]! + j; t++; });
      cu[i + 1] = t;
    });
    const n = seqs.length, f = (v: number) => new Float32Array(n).fill(v);
    const batch = {
      tokenIds, positions, cuSeqlens: cu, contextLens: Int32Array.from(ctx),
      blockIndptr: Int32Array.from({ length: n + 1 }, (_, i) => i * per),
      blockIndices: Int32Array.from({ length: n * per }, (_, i) => i),
      rowIndptr: Int32Array.from({ length: n + 1 }, (_, i) => i), rowTokens: cu.slice(1, n + 1).map((x) => x - 1),
      temperature: f(0), topP: f(1), topK: new Int32Array(n), minP: f(0),
      seed: new BigUint64Array(n), numLogprobs: 5,
    } as StepBatch;
    const out = e.step(batch);
    seqs.forEach((s, i) => {
      const id = out.ids[i]!;
      s.ids.push(id);
      s.tokens.push(id);
      s.top.push(Array.from({ length: 5 }, (_, k) => [out.topIds![i * 5 + k]!, out.topLogprobs![i * 5 + k]!]));
    });
    ctx = seqs.map((s) => s.tokens.length - 1);
  }
  return seqs.map(({ ids, top }) => ({ ids, top }));
}

/** Where two greedy runs first differ, and the worst top-5 logprob gap before it. */
export function compareGreedy(a: ReturnType<typeof greedy>, b: ReturnType<typeof greedy>) {
  let worst = 0, identical = 0, firstDiff: number[] = [];
  a.forEach((x, i) => {
    const y = b[i]!;
    let j = 0;
    while (j < x.ids.length && x.ids[j] === y.ids[j]) j++;
    if (j === x.ids.length) identical++;
    firstDiff.push(j);
    for (let k = 0; k < j; k++) {
      const m = new Map(y.top[k]!);
      for (const [id, lp] of x.top[k]!) {
        const o = m.get(id);
        if (o !== undefined) worst = Math.max(worst, Math.abs(o - lp));
      }
    }
  });
  return { identical, of: a.length, first_divergence: firstDiff, worst_top5_logprob_diff: worst };
}
