// The FP8 KV cache on CUDA (issue #18 item 3, cuda/kv_fp8.cuh): K/V stored as E4M3 bytes,
// e4m3(x / scale) with per-layer scales, read back exactly by every attention kernel (the scales
// folded into the softmax scale and the output). The CPU backend, which keeps the same values as
// rounded fp32, is the reference.
//   encoder  one key per query (context 0), so each output row is its V row (MLA: its latent row)
//            as stored, times the scale: every value, ties to even, subnormals, saturation at
//            448 and of inf, must equal test/helpers/e4m3.ts's and the CPU's bit for bit, on the
//            narrow, wide and simple kernels and the latent one.
//   kernels  fg_paged_attention_fp8 / fg_mla_attention_fp8 against the CPU on the same fp32 caches
//            (both store the same E4M3, so only bf16 q / P / output rounding differs): every head
//            size (16..256 tensor cores, 40 the simple kernel), wide and narrow tiles, forced and
//            automatic key splits, windows, softcaps, GQA/MQA, scales far from 1 and saturating
//            ones. Relative error < 1e-2, as the bf16 kernels' (attention.test.ts), and under
//            half of what FP8 itself changes (the device reads what was stored, nothing near it).
//            Both again in a child process with FASTGEN_ATTN_FP8_DIRECT=1 (the register-direct
//            narrow kernel, cuda/attention_fp8_direct.cu).
//   engines  random models (head sizes 8..256, windows, a softcap, splits over a 700-token
//            context) and the fixtures llama-gqa, mistral-swa, gemma2, qwen3 and
//            deepseek-v2-lite (MLA), bf16 weights on both backends, with per-layer scales far from
//            1, through ragged passes (prompt chunks, decodes): CUDA fp8 against CPU fp8 logits.
//            K/V computed on the device differ from the CPU's by bf16 noise, and where a value
//            sits near an E4M3 rounding midpoint the two round it apart by one E4M3 step (6-12%):
//            a fraction ~ noise / step of the values, so that error's variance grows as
//            base x fp8 (base: the engines' bf16 error, CUDA bf16 KV vs CPU fp32 KV; fp8: what FP8
//            moves the CPU's logits). On the CPU, weight perturbations of 2^-8 and 2^-6 standing
//            in for the device's noise gave fp8-vs-fp8 errors with err^2 = base^2 + c base fp8,
//            c 0.5-1.7 over these models (the fixtures, whose logits FP8 moves by 2-15%, at
//            1.4-3x base). Bound: err < sqrt(base^2 + 3 base fp8) + 2e-3; greedy ids equal but at
//            near-ties (the CPU's top-2 gap under twice the largest logit difference); and FP8
//            moves the device's logits (against its own bf16 KV) by 0.5-2x what it moves the
//            CPU's (a device that ignored FP8 would move them by 0, a wrong scale by far more).
//            Single rows of the fixtures moved by up to 0.4 in that simulation, so a row only
//            has to stay under 0.6 (a broken read gives O(1)).
//   memory   the Llama-2-7B shape (2 layers): the same memory holds 2x the blocks, a block's bytes
//            halve exactly, and its decode logits stay near the bf16 KV engine's.
//   prefix   prefix caching with fp8 KV: a repeated prompt reads its cached FP8 blocks and
//            generates exactly what the uncached run does, in passes of the same shapes (ids
//            equal, top-5 logprobs within 1e-5, or twice what bf16 KV shows if it is not exact).
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { EngineCore } from "../../src/engine/engineCore";
import type { EngineOptions } from "../../src/engine/options";
import { openModelDir } from "../../src/model/load";
import { mlaAttention, NativeEngine, pagedAttention, type AttentionShape, type Backend, type KvConfig, type MlaAttentionShape } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";
import { batchOf, loadRandom, shapeSpec } from "../../bench/gpu/randomModel";
import { e4m3Round } from "../helpers/e4m3";
import { decodeValues } from "../helpers/safetensors-writer";
import { bytesOf, makeBatch, maxAbsDiff, randomTokens, randomWeights, relErr, rng, tensorShapes, tinySpec, type SeqChunk } from "../native/helpers";
import { hasGpu, randomArray, roundBf16, shuffledPagedBatch, top2 } from "./gpuHelpers";

const fixtureDir = (name: string) => join(import.meta.dir, "..", "fixtures", name);

/** Shuffled block tables for sequences of [context, tokens]; the batch and the block count. */
const layout = (seqs: [number, number][], bs: number) => shuffledPagedBatch(seqs, bs);

/** n values spanning E4M3's binades at this scale: subnormals, normals, and some past 448 (saturating). */
function spread(n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (Math.random() < 0.5 ? -1 : 1) * 2 ** (Math.random() * 21 - 11) * (1 + Math.random()) * scale);
}

// ---- the encoder, exactly ------------------------------------------------------------------

// Multiples of a power-of-two scale (x / scale exact) that E4M3 rounds at an edge: ties to even
// (1.0625 -> 1, 1.1875 -> 1.25, 15.5 -> 16, 432 -> 448), subnormal ties (2^-10 -> 0, 3 2^-10 ->
// 2^-8), the normal / subnormal boundary, and saturation (449, 464, 1e30, inf -> 448).
const CORNERS = [1.0625, 1.1875, 15.5, 2 ** -10, 3 * 2 ** -10, 5 * 2 ** -10, 7 * 2 ** -10, 2 ** -9, 2 ** -6,
  2 ** -6 - 2 ** -10, 2 ** -12, 0.1, 1 / 3, 2, 3.75, 100, 240, 416, 432, 447, 448, 449, 463, 464, 465, 1000, 1e30, Infinity];

/** n values: the corners times scale with both signs, then random ones over every binade (some saturating). */
function cornerValues(n: number, scale: number): Float32Array {
  const spreadVals = spread(n, scale);
  return Float32Array.from({ length: n }, (_, i) => (i < 2 * CORNERS.length ? (i % 2 ? -1 : 1) * CORNERS[i >> 1]! * scale : spreadVals[i]!));
}

/** Positions where `got` is not exactly `want` (NaN never equal; +0 and -0 equal). */
function mismatches(got: ArrayLike<number>, want: ArrayLike<number>, n: number): number[] {
  const bad: number[] = [];
  for (let i = 0; i < n; i++) if (!(got[i] === want[i])) bad.push(i);
  return bad;
}

describe.skipIf(!hasGpu)("FP8 KV encoder: stored values bit for bit", () => {
  // [num_heads, num_kv_heads, head_dim]: narrow tiles (group 1), wide ones (32 rows of one key),
  // head size 256, and the simple kernel (40)
  for (const [nh, nkv, hd] of [[2, 2, 128], [32, 1, 128], [2, 2, 16], [8, 1, 256], [2, 2, 40]] as const) {
    test(`paged ${nh}/${nkv} heads, hd ${hd}: each query's one key gives back its V row as stored`, () => {
      const S = 64, bs = 16, vScale = 2 ** -3, kScale = 0.5;
      const chunks: SeqChunk[] = Array.from({ length: S }, (_, s) => ({ tokens: [1], context: 0, blocks: [s] }));
      const batch = makeBatch(chunks);
      const shape: AttentionShape = { numHeads: nh, numKvHeads: nkv, headDim: hd, blockSize: bs, numBlocks: S, window: 0, kvFp8: { kScale, vScale } };
      const n = S * bs * nkv * hd;
      const q = roundBf16(randomArray(S * nh * hd)), k = randomArray(n);
      // slot 0 of block s holds sequence s's only position: put the corner values there first
      const corner = cornerValues(S * nkv * hd, vScale), v = randomArray(n);
      for (let s = 0; s < S; s++) v.set(corner.subarray(s * nkv * hd, (s + 1) * nkv * hd), s * bs * nkv * hd);
      const want = new Float32Array(S * nh * hd);
      for (let s = 0; s < S; s++)
        for (let h = 0; h < nh; h++)
          for (let d = 0; d < hd; d++) want[(s * nh + h) * hd + d] = e4m3Round(v[(s * bs * nkv + Math.floor(h / (nh / nkv))) * hd + d]!, vScale);
      const cpu = pagedAttention("cpu", batch, q, k, v, shape), gpu = pagedAttention("cuda", batch, q, k, v, shape);
      const badCpu = mismatches(cpu, want, want.length), badGpu = mismatches(gpu, want, want.length);
      console.log(`fp8 encoder paged ${nh}/${nkv}/${hd}: ${want.length} values, CPU mismatches ${badCpu.length}, CUDA mismatches ${badGpu.length}` +
        (badGpu.length ? ` (first: got ${gpu[badGpu[0]!]}, want ${want[badGpu[0]!]})` : ""));
      expect(badCpu).toEqual([]);
      expect(badGpu).toEqual([]);
    });
  }

  for (const [nh, latent, rope] of [[4, 32, 8], [16, 512, 64]] as const) {
    test(`latent ${nh} heads, ${latent} + ${rope}: each query's one row gives back its latent part as stored`, () => {
      const S = 32, bs = 16, D = latent + rope, kvScale = 2 ** -2;
      const batch = makeBatch(Array.from({ length: S }, (_, s) => ({ tokens: [1], context: 0, blocks: [s] })));
      const shape: MlaAttentionShape = { numHeads: nh, latent, rope, blockSize: bs, numBlocks: S, window: 0, scale: 0.1, kvFp8: { kvScale } };
      const corner = cornerValues(S * D, kvScale), cache = randomArray(S * bs * D);
      for (let s = 0; s < S; s++) cache.set(corner.subarray(s * D, (s + 1) * D), s * bs * D);
      const q = roundBf16(randomArray(S * nh * D));
      const want = new Float32Array(S * nh * latent);
      for (let s = 0; s < S; s++)
        for (let h = 0; h < nh; h++)
          for (let c = 0; c < latent; c++) want[(s * nh + h) * latent + c] = e4m3Round(cache[s * bs * D + c]!, kvScale);
      const cpu = mlaAttention("cpu", batch, q, cache, shape), gpu = mlaAttention("cuda", batch, q, cache, shape);
      const badCpu = mismatches(cpu, want, want.length), badGpu = mismatches(gpu, want, want.length);
      console.log(`fp8 encoder latent ${nh}/${latent}/${rope}: ${want.length} values, CPU mismatches ${badCpu.length}, CUDA mismatches ${badGpu.length}`);
      expect(badCpu).toEqual([]);
      expect(badGpu).toEqual([]);
    });
  }
});

// ---- kernels against the CPU ----------------------------------------------------------------

interface PagedCase {
  name: string;
  heads: [number, number, number];  // num_heads, num_kv_heads, head_dim
  blockSize: number;
  seqs: [number, number][];          // per sequence: [context, tokens in this pass]
  window?: number;
  splits?: number;
  softcap?: number;
  kScale?: number;                   // default 0.01 (|k| up to 1 stored up to 100)
  vScale?: number;                   // default 0.5
  kMag?: number;                     // |k| up to this (default 1)
}

const PAGED: PagedCase[] = [
  { name: "decodes, GQA 4:1, hd 128, contexts 0..1500", heads: [8, 2, 128], blockSize: 16, seqs: [[0, 1], [16, 1], [300, 1], [1500, 1]] },
  { name: "chunk of 45 after 37 (wide, 128 rows), block 7, with decodes", heads: [8, 2, 128], blockSize: 7, seqs: [[37, 45], [100, 1], [0, 13], [250, 1]] },
  { name: "prefill 300, MHA hd 64 (wide, 4 chunks a key row)", heads: [4, 4, 64], blockSize: 16, seqs: [[0, 300]] },
  { name: "sliding window 24, chunk + decodes, hd 64", heads: [8, 2, 64], blockSize: 8, window: 24, seqs: [[40, 30], [90, 1], [5, 1]] },
  { name: "narrow tile of 4 tokens (group 4: 16 rows, causal inside the tile) after 200, hd 128", heads: [8, 2, 128], blockSize: 16, seqs: [[200, 4], [37, 1]] },
  { name: "3 forced key splits, hd 128", heads: [8, 2, 128], blockSize: 16, splits: 3, seqs: [[700, 1], [33, 1], [0, 1]] },
  { name: "automatic splits: one decode at 4000, GQA 32/8", heads: [32, 8, 128], blockSize: 16, seqs: [[4000, 1]] },
  { name: "splits with a sliding window 100, hd 64", heads: [8, 2, 64], blockSize: 16, window: 100, splits: 4, seqs: [[900, 1], [60, 1]] },
  { name: "MQA hd 256 (64-row wide pieces)", heads: [8, 1, 256], blockSize: 16, seqs: [[50, 20], [200, 1]] },
  { name: "hd 80 (5 chunks a key row: a partial round)", heads: [32, 32, 80], blockSize: 16, seqs: [[20, 40], [77, 1]] },
  { name: "hd 96, group 8", heads: [16, 2, 96], blockSize: 16, seqs: [[129, 1], [64, 3]] },
  { name: "hd 32, chunk + decode", heads: [8, 2, 32], blockSize: 16, seqs: [[10, 40], [300, 1]] },
  { name: "hd 16 (fixture size): 64 chunks a tile, half the threads", heads: [4, 2, 16], blockSize: 4, seqs: [[9, 7], [3, 1], [0, 40]] },
  { name: "hd 40: the simple kernel", heads: [4, 2, 40], blockSize: 8, seqs: [[30, 9], [70, 1]] },
  { name: "softcap 5, hd 16 (Gemma 2 fixture size)", heads: [4, 2, 16], blockSize: 8, softcap: 5, kMag: 8, seqs: [[20, 30], [60, 1]] },
  { name: "softcap 30, hd 128, wide + 2 forced splits", heads: [8, 2, 128], blockSize: 16, softcap: 30, kMag: 6, splits: 2, seqs: [[0, 200], [1200, 1]] },
  { name: "softcap 20, hd 40 (simple kernel)", heads: [4, 2, 40], blockSize: 8, softcap: 20, kMag: 6, seqs: [[30, 9], [70, 1]] },
  { name: "saturating K: |k / k_scale| up to 1000", heads: [8, 2, 128], blockSize: 16, kScale: 1 / 1000, seqs: [[60, 20], [500, 1]] },
  { name: "scales 1 (the default)", heads: [8, 2, 64], blockSize: 16, kScale: 1, vScale: 1, seqs: [[60, 20], [500, 1]] },
];

function runPaged(c: PagedCase) {
  const [nh, nkv, hd] = c.heads;
  const { batch, numBlocks } = layout(c.seqs, c.blockSize);
  const T = batch.tokenIds.length, n = numBlocks * c.blockSize * nkv * hd, on = T * nh * hd;
  const base: AttentionShape = { numHeads: nh, numKvHeads: nkv, headDim: hd, blockSize: c.blockSize, numBlocks, window: c.window ?? 0, splits: c.splits };
  const shape: AttentionShape = { ...base, softcap: c.softcap, kvFp8: { kScale: c.kScale ?? 0.01, vScale: c.vScale ?? 0.5 } };
  const q = roundBf16(randomArray(T * nh * hd)), k = randomArray(n, c.kMag ?? 1), v = randomArray(n);
  const ref = pagedAttention("cpu", batch, q, k, v, shape), out = pagedAttention("cuda", batch, q, k, v, shape);
  const err = relErr(out.subarray(0, on), ref.subarray(0, on));
  // what FP8 changes: the CPU on the unrounded caches (no softcap there: fg_paged_attention has none)
  const effect = c.softcap ? NaN : relErr(ref.subarray(0, on), pagedAttention("cpu", batch, q, k, v, base).subarray(0, on));
  console.log(`fp8 kv attention ${c.name}: rel err ${err.toExponential(2)}${c.softcap ? "" : ` (FP8 itself moves it ${effect.toExponential(2)})`}`);
  expect(out.subarray(0, on).some(Number.isNaN)).toBe(false);
  expect(err).toBeLessThan(1e-2);
  if (!c.softcap) expect(err).toBeLessThan(0.5 * effect);
}

interface MlaCase { name: string; dims: [number, number, number]; blockSize: number; seqs: [number, number][]; window?: number; softcap?: number; splits?: number; kvScale?: number }

const MLA: MlaCase[] = [
  { name: "V2-Lite widths: decodes at contexts 0..1500", dims: [16, 512, 64], blockSize: 16, seqs: [[0, 1], [16, 1], [300, 1], [1500, 1]] },
  { name: "V2-Lite widths: chunk of 45 after 37, block 7, with decodes", dims: [16, 512, 64], blockSize: 7, seqs: [[37, 45], [100, 1], [0, 13]] },
  { name: "V2-Lite widths: one long decode, automatic splits", dims: [16, 512, 64], blockSize: 64, seqs: [[5000, 1]] },
  { name: "fixture widths 32 + 8 (40-byte rows: 8-byte copies), block 4", dims: [4, 32, 8], blockSize: 4, seqs: [[9, 7], [3, 1], [0, 20]] },
  { name: "20 heads, a partial head group, 128 + 32", dims: [20, 128, 32], blockSize: 5, seqs: [[61, 1], [10, 40]] },
  { name: "window 24 with a chunk and decodes", dims: [16, 256, 64], blockSize: 8, window: 24, seqs: [[40, 30], [90, 1], [5, 1]] },
  { name: "window 100, 4 forced splits", dims: [16, 512, 64], blockSize: 16, window: 100, splits: 4, seqs: [[900, 1], [60, 1]] },
  { name: "softcap 2, scale 1 (saturating rows)", dims: [4, 64, 16], blockSize: 16, softcap: 2, kvScale: 2 ** -9, seqs: [[30, 12], [70, 1]] },
];

function runMla(c: MlaCase) {
  const [nh, latent, rope] = c.dims;
  const D = latent + rope;
  const { batch, numBlocks } = layout(c.seqs, c.blockSize);
  const T = batch.tokenIds.length, on = T * nh * latent;
  const base: MlaAttentionShape = { numHeads: nh, latent, rope, blockSize: c.blockSize, numBlocks, window: c.window ?? 0,
    scale: 1 / Math.sqrt(3 * rope), softcap: c.softcap ?? 0, splits: c.splits };
  const shape = { ...base, kvFp8: { kvScale: c.kvScale ?? 0.02 } };
  const q = roundBf16(randomArray(T * nh * D)), cache = randomArray(numBlocks * c.blockSize * D);
  const ref = mlaAttention("cpu", batch, q, cache, shape), out = mlaAttention("cuda", batch, q, cache, shape);
  const err = relErr(out.subarray(0, on), ref.subarray(0, on));
  const effect = relErr(ref.subarray(0, on), mlaAttention("cpu", batch, q, cache, base).subarray(0, on));
  console.log(`fp8 kv latent attention ${c.name}: rel err ${err.toExponential(2)} (FP8 itself moves it ${effect.toExponential(2)})`);
  expect(out.subarray(0, on).some(Number.isNaN)).toBe(false);
  expect(err).toBeLessThan(1e-2);
  expect(err).toBeLessThan(0.5 * effect);
}

describe.skipIf(!hasGpu)("FP8 KV attention kernels vs the CPU", () => {
  for (const c of PAGED) test(c.name, () => runPaged(c), 60_000);
  for (const c of MLA) test(`latent: ${c.name}`, () => runMla(c), 60_000);
});

// The encoder and kernel cases again with FASTGEN_ATTN_FP8_DIRECT=1 (narrow tiles at head_dim
// 32/64/96/128 load E4M3 straight into registers: cuda/attention_fp8_direct.cu), in a child
// process (libfastgen reads its knobs once a process). Same bounds: the same products and sums
// in another order, and each stored value widened exactly (the encoder cases, bit for bit).
describe.skipIf(!hasGpu || process.env.FASTGEN_FP8KV_AB_CHILD === "1")("FP8 KV kernels, FASTGEN_ATTN_FP8_DIRECT=1 (child process)", () => {
  test("encoder and kernel cases", () => {
    const r = Bun.spawnSync([process.execPath, "test", "--timeout", "120000", import.meta.path, "-t",
      "FP8 KV encoder: stored values|FP8 KV attention kernels vs the CPU"], {
      env: { ...process.env, FASTGEN_ATTN_FP8_DIRECT: "1", FASTGEN_FP8KV_AB_CHILD: "1" }, stdout: "pipe", stderr: "pipe",
    });
    const out = r.stdout.toString() + r.stderr.toString();
    for (const line of out.split("\n")) if (/^fp8 |\(fail\)|error:|^ *\d+ (pass|fail)/.test(line)) console.log(`[FP8_DIRECT=1] ${line}`);
    expect(r.exitCode).toBe(0);
    expect(out).toMatch(/\b[1-9]\d* pass/);
  }, 300_000);
});

// ---- engines against the CPU ----------------------------------------------------------------

/** A model's tensors: name, shape, values (bf16-rounded, so both backends hold the same weights). */
type Tensors = { name: string; shape: number[]; data: Float32Array }[];

function randomModel(spec: ModelSpec, seed: number): Tensors {
  const shapes = tensorShapes(spec);
  return [...randomWeights(spec, seed)].map(([name, data]) => ({ name, shape: shapes.get(name)!, data: roundBf16(data) }));
}

function fixtureModel(name: string): { spec: ModelSpec; tensors: Tensors } {
  const model = openModelDir(fixtureDir(name));
  const tensors: Tensors = [];
  for (const t of model.tensors()) tensors.push({ name: t.name, shape: t.shape, data: roundBf16(decodeValues(t.dtype, t.data)) });
  model.close();
  return { spec: model.spec, tensors };
}

function engineOf(backend: Backend, spec: ModelSpec, tensors: Tensors, kv: KvConfig): NativeEngine {
  const e = NativeEngine.create(spec, backend);
  try {
    for (const t of tensors) e.loadTensor(t.name, "F32", t.shape, bytesOf(t.data));
    e.finalize(kv);
  } catch (err) {
    e.destroy();
    throw err;
  }
  return e;
}

/** Per-layer scales far from 1, alternating, so a scale applied to the wrong layer or plane shows. */
function scalesOf(layers: number) {
  return {
    kScales: Float32Array.from({ length: layers }, (_, l) => (l % 2 ? 0.3 : 0.04)),
    vScales: Float32Array.from({ length: layers }, (_, l) => (l % 2 ? 0.015 : 0.6)),
  };
}

interface EngineRun { name: string; ids: number[]; rows: { cpuAuto: Float32Array; cpuFp8: Float32Array; gpuAuto: Float32Array; gpuFp8: Float32Array }[] }

/**
 * Ragged passes on four engines of the same weights (CPU fp32 KV, CPU fp8, CUDA bf16 KV, CUDA fp8):
 * A prompt 37 then decodes, B 90 in chunks of 23, C 3 then decodes, and (long) D 700 in chunks
 * of 300 then decodes (its context past 512 brings key splits). Every engine continues from the
 * CPU fp8 engine's tokens, so all see the same sequences.
 */
function runEngines(name: string, spec: ModelSpec, tensors: Tensors, long: boolean): EngineRun {
  const bs = 5, kv: KvConfig = { numBlocks: 400, blockSize: bs };
  const fp8: KvConfig = { ...kv, kvCacheDtype: "fp8", ...scalesOf(spec.num_layers) };
  const engines = [engineOf("cpu", spec, tensors, kv), engineOf("cpu", spec, tensors, fp8), engineOf("cuda", spec, tensors, kv), engineOf("cuda", spec, tensors, fp8)];
  try {
    const r = rng(7), V = spec.vocab_size;
    const seqs = [[37, 37], [90, 23], [3, 3], ...(long ? [[700, 300]] : [])].map(([len, chunk]) => ({
      prompt: randomTokens(r, len!, V), chunk: chunk!, blocks: [] as number[], done: 0, out: [] as number[],
    }));
    let nextBlock = 0;
    const run: EngineRun = { name, ids: [], rows: [] };
    for (let pass = 0; pass < 12; pass++) {
      const chunks: SeqChunk[] = seqs.map((s) => {
        const all = [...s.prompt, ...s.out];
        const n = s.done < s.prompt.length ? Math.min(s.chunk, s.prompt.length - s.done) : 1;
        while (s.blocks.length * bs < s.done + n) s.blocks.push(nextBlock++);
        return { tokens: all.slice(s.done, s.done + n), context: s.done, blocks: [...s.blocks], wants: s.done + n >= s.prompt.length };
      });
      const batch = makeBatch(chunks, { returnLogits: true });
      const [ca, cf, ga, gf] = engines.map((e) => e.step(batch));
      chunks.forEach((c, i) => {
        const s = seqs[i]!;
        s.done += c.tokens.length;
        if (!c.wants) return;
        const row = batch.rowIndptr[i + 1]! - 1;
        const at = (o: typeof ca) => o!.logits!.slice(row * V, (row + 1) * V);
        run.rows.push({ cpuAuto: at(ca), cpuFp8: at(cf), gpuAuto: at(ga), gpuFp8: at(gf) });
        expect(gf!.ids[row]).toBe(top2(at(gf)).best);  // the device samples its own logits' argmax
        run.ids.push(gf!.ids[row]!);
        s.out.push(cf!.ids[row]!);
      });
    }
    return run;
  } finally {
    engines.forEach((e) => e.destroy());
  }
}

/** The bounds of the header, on a run's rows. */
function checkEngines(run: EngineRun) {
  const cat = (k: keyof EngineRun["rows"][0]) => Float32Array.from(run.rows.flatMap((r) => [...r[k]]));
  const cpuAuto = cat("cpuAuto"), cpuFp8 = cat("cpuFp8"), gpuAuto = cat("gpuAuto"), gpuFp8 = cat("gpuFp8");
  const dev = relErr(gpuFp8, cpuFp8), base = relErr(gpuAuto, cpuAuto);
  const cpuEffect = relErr(cpuFp8, cpuAuto), gpuEffect = relErr(gpuFp8, gpuAuto);
  let worstRow = 0, ties = 0;
  run.rows.forEach((r, i) => {
    worstRow = Math.max(worstRow, relErr(r.gpuFp8, r.cpuFp8));
    const want = top2(r.cpuFp8);
    if (run.ids[i] !== want.best) {
      ties++;
      expect(want.gap).toBeLessThan(2 * maxAbsDiff(r.gpuFp8, r.cpuFp8));  // a near-tie only
    }
  });
  const bound = Math.sqrt(base * base + 3 * base * cpuEffect) + 2e-3;
  console.log(`fp8 kv engine ${run.name}: CUDA fp8 vs CPU fp8 ${dev.toExponential(2)} (bound ${bound.toExponential(2)}; worst row ` +
    `${worstRow.toExponential(2)}), bf16 KV vs CPU fp32 ${base.toExponential(2)}; FP8 moves CPU logits ${cpuEffect.toExponential(2)}, ` +
    `CUDA's ${gpuEffect.toExponential(2)}; near-tie id swaps ${ties} of ${run.rows.length}`);
  expect(gpuFp8.some(Number.isNaN)).toBe(false);
  expect(dev).toBeLessThan(bound);
  expect(worstRow).toBeLessThan(0.6);
  expect(gpuEffect).toBeGreaterThan(0.5 * cpuEffect);
  expect(gpuEffect).toBeLessThan(2 * cpuEffect);
  expect(ties).toBeLessThanOrEqual(Math.ceil(run.rows.length / 4));
}

const BASE = { vocab_size: 1000, hidden_size: 256, intermediate_size: 512, num_heads: 8, num_kv_heads: 2, head_dim: 32, max_position_embeddings: 2048 };
const RANDOM: [string, Partial<ModelSpec>][] = [
  ["GQA 4:1, hd 128", { ...BASE, head_dim: 128 }],
  ["hd 64, window 16, qkv bias", { ...BASE, num_heads: 4, head_dim: 64, qkv_bias: true, sliding_window: 16 }],
  ["MHA hd 80", { ...BASE, num_heads: 4, num_kv_heads: 4, head_dim: 80 }],
  ["MQA hd 256, softcap 20, 3 layers", { ...BASE, num_heads: 4, num_kv_heads: 1, head_dim: 256, attn_logit_softcap: 20, num_layers: 3 }],
  ["GQA hd 32, 4 layers", { ...BASE, num_layers: 4 }],
  ["hd 8: the simple kernel", { max_position_embeddings: 2048 }],
];
const FIXTURES = ["llama-gqa", "mistral-swa", "gemma2", "qwen3", "deepseek-v2-lite"];

describe.skipIf(!hasGpu)("FP8 KV engines: CUDA vs the CPU reference", () => {
  RANDOM.forEach(([name, over], i) => {
    test(`random: ${name}`, () => {
      const spec = tinySpec(over);
      checkEngines(runEngines(name, spec, randomModel(spec, 300 + i), true));
    }, 120_000);
  });
  for (const name of FIXTURES) {
    test(`fixture: ${name}`, () => {
      const { spec, tensors } = fixtureModel(name);
      checkEngines(runEngines(name, spec, tensors, false));
    }, 120_000);
  }
});

// ---- memory ---------------------------------------------------------------------------------

describe.skipIf(!hasGpu)("FP8 KV memory", () => {
  test("the Llama-2-7B shape: twice the blocks in the same memory, half the bytes a block, logits near bf16 KV's", () => {
    const spec = shapeSpec("7b", 2);
    const runs = (["auto", "fp8"] as const).map((dtype) => {
      const e = NativeEngine.create(spec, "cuda");
      try {
        loadRandom(e, spec);
        const info = e.finalize({ memoryFraction: 0.5, kvCacheDtype: dtype });
        const bs = info.blockSize;
        e.step(batchOf(spec, 1, 200, 0, bs));  // a prompt, then a decode reading it
        const decode = e.step({ ...batchOf(spec, 1, 1, 200, bs), returnLogits: true }).logits!;
        return { info, decode };
      } finally {
        e.destroy();
      }
    });
    const [bf, f8] = runs as [typeof runs[0], typeof runs[0]];
    const perBlock = (i: typeof bf.info) => i.kvBytes / i.numBlocks;
    const err = relErr(f8.decode, bf.decode);
    console.log(`fp8 kv 7b x2 layers at memory_fraction 0.5: blocks bf16 ${bf.info.numBlocks} (${(bf.info.kvBytes / 2 ** 30).toFixed(2)} GiB), ` +
      `fp8 ${f8.info.numBlocks} (${(f8.info.kvBytes / 2 ** 30).toFixed(2)} GiB), ratio ${(f8.info.numBlocks / bf.info.numBlocks).toFixed(3)}; ` +
      `decode logits at ctx 200 vs bf16 KV ${err.toExponential(2)}`);
    expect(perBlock(f8.info)).toBe(perBlock(bf.info) / 2);
    expect(perBlock(bf.info)).toBe(2 * spec.num_layers * bf.info.blockSize * spec.num_kv_heads! * spec.head_dim! * 2);
    expect(f8.info.numBlocks / bf.info.numBlocks).toBeGreaterThan(1.95);
    expect(f8.info.numBlocks / bf.info.numBlocks).toBeLessThan(2.05);
    expect(f8.decode.some(Number.isNaN)).toBe(false);
    expect(err).toBeLessThan(0.15);
  }, 120_000);

  test("explicit num_blocks: the same blocks in half the bytes", () => {
    const spec = tinySpec({ head_dim: 16, num_heads: 4, num_kv_heads: 2 });
    const tensors = randomModel(spec, 5);
    const [bf, f8] = ([{}, { kvCacheDtype: "fp8" as const }] as KvConfig[]).map((over) => {
      const e = engineOf("cuda", spec, tensors, { numBlocks: 96, blockSize: 16, ...over });
      const info = e.info();
      e.destroy();
      return info;
    });
    expect(f8!.numBlocks).toBe(96);
    expect(f8!.kvBytes * 2).toBe(bf!.kvBytes);
  });
});

// ---- prefix caching ---------------------------------------------------------------------------

type Generated = { ids: number[]; top: [number, number][][]; cached: number };

/** Runs prompts one after another (each to completion) on `core`: greedy ids, top-5 per step, cached tokens. */
function generate(core: EngineCore, prompts: number[][], n: number): Generated[] {
  return prompts.map((p, i) => {
    const g: Generated = { ids: [], top: [], cached: -1 };
    core.addRequest(`r${i}`, p, { maxTokens: n, temperature: 0, logprobs: 5, ignoreEos: true });
    while (core.hasWork())
      for (const { deltas, error } of core.step()) {
        if (error) throw error;
        for (const d of deltas) {
          g.ids.push(...d.tokenIds);
          for (const lp of d.logprobs ?? []) g.top.push(lp.top);
          if (d.cachedTokens !== undefined) g.cached = Math.max(g.cached, d.cachedTokens);
        }
      }
    return g;
  });
}

/** Steps with the same ids, and the worst top-5 logprob difference over them. */
function compare(a: Generated, b: Generated) {
  let same = 0, worst = 0;
  while (same < a.ids.length && a.ids[same] === b.ids[same]) same++;
  for (let k = 0; k < same; k++) {
    const m = new Map(b.top[k]!);
    for (const [id, lp] of a.top[k]!) worst = Math.max(worst, m.has(id) ? Math.abs(m.get(id)! - lp) : Infinity);
  }
  return { same, of: a.ids.length, worst };
}

const cores: EngineCore[] = [];
afterAll(() => cores.forEach((c) => c.destroy()));

// A 100-token prompt with passes of at most 96 tokens: uncached it runs as 96 + 4 tokens, and
// repeated it finds 96 tokens (6 blocks of 16) cached and runs the last 4 alone. Every run then
// computes the same shapes on the same inputs, so it repeats the first bit for bit unless the
// cached blocks were read wrong; bf16 KV, run the same way, shows how exact the device is.
describe.skipIf(!hasGpu)("FP8 KV with prefix caching", () => {
  test("a repeated prompt reads its cached FP8 blocks and generates exactly what an uncached run does", async () => {
    const model = openModelDir(fixtureDir("llama-gqa"));
    model.close();
    const prompt = randomTokens(rng(21), 100, model.spec.vocab_size);
    const worst: Record<string, number> = {};
    for (const kvCacheDtype of ["auto", "fp8"] as const) {
      const opts: Partial<EngineOptions> = { backend: "cuda", kvCacheDtype, kvBlocks: 128, blockSize: 16, maxBatchTokens: 96 };
      const on = await EngineCore.load(fixtureDir("llama-gqa"), { ...opts, enablePrefixCaching: true });
      cores.push(on);
      const off = await EngineCore.load(fixtureDir("llama-gqa"), { ...opts, enablePrefixCaching: false });
      cores.push(off);
      const [first, second] = generate(on, [prompt, prompt], 16);
      const [plain] = generate(off, [prompt], 16);
      const hit = compare(second!, first!), vsOff = compare(second!, plain!);
      console.log(`prefix caching, ${kvCacheDtype} KV: cached tokens ${first!.cached} then ${second!.cached}; repeat vs first ` +
        `${hit.same}/${hit.of} ids (top-5 worst ${hit.worst.toExponential(2)}), vs uncached ${vsOff.same}/${vsOff.of} (${vsOff.worst.toExponential(2)})`);
      expect(first!.cached).toBe(0);
      expect(second!.cached).toBe(96);  // every full block before the last prompt token
      for (const c of [hit, vsOff]) expect(c.same).toBe(c.of);
      worst[kvCacheDtype] = Math.max(hit.worst, vsOff.worst);
    }
    expect(worst.fp8!).toBeLessThanOrEqual(Math.max(1e-5, 2 * worst.auto!));
  }, 180_000);
});
