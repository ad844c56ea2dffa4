/** Tiny random models and ragged batches for the native tests. */
import type { ModelSpec } from "../../src/native/modelSpec";
import { expectedTensors } from "../../src/model/weights";
import { NativeEngine, type KvConfig, type StepBatch } from "../../src/native";
import type { Weights } from "./reference";

/** mulberry32: a seeded PRNG in [0, 1). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A small llama-like spec; override any field. */
export function tinySpec(over: Partial<ModelSpec> = {}): ModelSpec {
  return {
    arch: "llama", vocab_size: 97, hidden_size: 48, intermediate_size: 80, num_layers: 2,
    num_heads: 6, num_kv_heads: 2, head_dim: 8, max_position_embeddings: 512, norm: "rms",
    norm_eps: 1e-5, positions: "rope", rope_theta: 10000, partial_rotary_factor: 1,
    rope_scaling: null, sliding_window: 0, qkv_bias: false, o_bias: false, mlp_bias: false,
    lm_head_bias: false, mlp: "gated_silu", layout: "sequential", tie_word_embeddings: false,
    ...over,
  };
}

/**
 * DeepSeek-V2-Lite-shaped overrides of tinySpec: latent attention without q compression (4 heads,
 * nope 8 + rope 4, v 10, latent 16), interleaved YaRN with mscale, layer 0 dense and the others
 * 4 experts top-2 unrenormalized plus an ungated shared expert.
 */
export const DEEPSEEK_LITE_LIKE: Partial<ModelSpec> = {
  arch: "deepseek_v2", attention: "mla", num_layers: 3, num_heads: 4, num_kv_heads: 1, head_dim: 12,
  kv_lora_rank: 16, q_lora_rank: 0, qk_nope_head_dim: 8, qk_rope_head_dim: 4, v_head_dim: 10, rope_interleaved: true,
  rope_scaling: { type: "yarn", factor: 4, original_max_position_embeddings: 8, mscale: 0.707, mscale_all_dim: 0.707 },
  num_experts: 4, num_experts_per_tok: 2, moe_intermediate_size: 16, moe_renormalize: false,
  shared_expert_intermediate_size: 16, dense_layers: [0],
};

/** DeepSeek-V2-shaped: q compression (q_lora_rank 20), 2 groups of 2 experts with the best 1 competing, scale 2. */
export const DEEPSEEK_V2_LIKE: Partial<ModelSpec> = {
  ...DEEPSEEK_LITE_LIKE, q_lora_rank: 20, rope_scaling: null, moe_num_groups: 2, moe_topk_groups: 1,
  moe_routed_scale: 2, shared_expert_intermediate_size: 32,
};

/**
 * Every tensor the spec needs (canonical names of fastgen.h) with its shape: the loader's list,
 * which the engine's own list then checks (an unknown name or a missing tensor fails the test).
 */
export function tensorShapes(s: ModelSpec): Map<string, number[]> {
  return expectedTensors(s);
}

/** Random weights: Linear ~ U with variance 1/fan_in, norms near 1, small biases, unit embeddings. */
export function randomWeights(s: ModelSpec, seed: number): Weights {
  const r = rng(seed);
  const w: Weights = new Map();
  for (const [name, shape] of tensorShapes(s)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const a = new Float32Array(n);
    const isNorm = /norm$/.test(name);
    const scale = name === "embed" ? Math.sqrt(3) : shape.length === 2 ? Math.sqrt(3 / shape[1]!) : 0.1;
    for (let i = 0; i < n; i++) a[i] = (isNorm ? 1 : 0) + (2 * r() - 1) * scale;
    w.set(name, a);
  }
  return w;
}

export function bytesOf(a: Float32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Creates, loads and finalizes an engine. */
export function buildEngine(s: ModelSpec, w: Weights, kv: KvConfig = { numBlocks: 256, blockSize: 4 }): NativeEngine {
  const e = NativeEngine.create(s);
  const shapes = tensorShapes(s);
  for (const [name, data] of w) e.loadTensor(name, "F32", shapes.get(name)!, bytesOf(data));
  e.finalize(kv);
  return e;
}

/** A sample row of a chunk: its token (index within the chunk), a target to score, a mask. */
export interface RowSpec {
  at: number;
  target?: number;  // absent: sampled
  mask?: number;    // index into the batch's masks
}

/** One sequence's part of a pass. */
export interface SeqChunk {
  tokens: number[];
  context: number;   // tokens already in the KV cache
  blocks: number[];  // its whole block table
  rows?: RowSpec[];  // explicit sample rows, in token order
  wants?: boolean;   // a sampled row at the last token (after `rows`)
  mask?: number;     // the mask of that row
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  seed?: bigint;
  penaltyIds?: number[];
  presence?: number;
  frequency?: number;
  repetition?: number;
  bias?: [number, number][];
}

/**
 * A StepBatch with positions context..context+n-1 for each chunk, and its sample rows; masks
 * ([numMasks * ceil(vocab / 32)] words) are those rows' `mask` indices refer to.
 */
export function makeBatch(chunks: SeqChunk[], opts: { numLogprobs?: number; returnLogits?: boolean; masks?: Uint32Array } = {}): StepBatch {
  const tokens: number[] = [], positions: number[] = [], cu = [0], blockIndptr = [0], blocks: number[] = [];
  const rowIndptr = [0], rowTokens: number[] = [], rowTargets: number[] = [], rowMasks: number[] = [];
  const penIndptr = [0], penIds: number[] = [], biasIndptr = [0], biasIds: number[] = [], biasVals: number[] = [];
  for (const c of chunks) {
    const rows = [...(c.rows ?? []), ...(c.wants ? [{ at: c.tokens.length - 1, mask: c.mask }] : [])];
    for (const r of rows) {
      rowTokens.push(tokens.length + r.at);
      rowTargets.push(r.target ?? -1);
      rowMasks.push(r.mask ?? -1);
    }
    rowIndptr.push(rowTokens.length);
    c.tokens.forEach((t, i) => {
      tokens.push(t);
      positions.push(c.context + i);
    });
    cu.push(tokens.length);
    blocks.push(...c.blocks);
    blockIndptr.push(blocks.length);
    penIds.push(...(c.penaltyIds ?? []));
    penIndptr.push(penIds.length);
    for (const [id, v] of c.bias ?? []) {
      biasIds.push(id);
      biasVals.push(v);
    }
    biasIndptr.push(biasIds.length);
  }
  return {
    tokenIds: Int32Array.from(tokens),
    positions: Int32Array.from(positions),
    cuSeqlens: Int32Array.from(cu),
    contextLens: Int32Array.from(chunks, (c) => c.context),
    blockIndptr: Int32Array.from(blockIndptr),
    blockIndices: Int32Array.from(blocks),
    rowIndptr: Int32Array.from(rowIndptr),
    rowTokens: Int32Array.from(rowTokens),
    rowTargets: Int32Array.from(rowTargets),
    ...(opts.masks ? { rowMasks: Int32Array.from(rowMasks), masks: opts.masks } : {}),
    temperature: Float32Array.from(chunks, (c) => c.temperature ?? 0),
    topP: Float32Array.from(chunks, (c) => c.topP ?? 1),
    topK: Int32Array.from(chunks, (c) => c.topK ?? 0),
    minP: Float32Array.from(chunks, (c) => c.minP ?? 0),
    seed: BigUint64Array.from(chunks, (c) => c.seed ?? 0n),
    presencePenalty: Float32Array.from(chunks, (c) => c.presence ?? 0),
    frequencyPenalty: Float32Array.from(chunks, (c) => c.frequency ?? 0),
    repetitionPenalty: Float32Array.from(chunks, (c) => c.repetition ?? 1),
    penaltyIndptr: Int32Array.from(penIndptr),
    penaltyIds: Int32Array.from(penIds),
    logitBiasIndptr: Int32Array.from(biasIndptr),
    logitBiasIds: Int32Array.from(biasIds),
    logitBiasValues: Float32Array.from(biasVals),
    numLogprobs: opts.numLogprobs ?? 0,
    returnLogits: opts.returnLogits ?? false,
  };
}

/** ‖a − b‖ / ‖b‖ */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < b.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** Random tokens in [0, vocab). */
export function randomTokens(r: () => number, n: number, vocab: number): number[] {
  return Array.from({ length: n }, () => Math.floor(r() * vocab));
}
