// CUDA paged flash attention (cuda/attention.cu) against its CPU twin (cpu/attention.cpp) on fresh
// random bf16 inputs: decode tokens, prompt chunks that are not multiples of the block size,
// contexts crossing many blocks, GQA/MQA/MHA, sliding windows, forced key splits, and a head
// size only the fallback kernel runs. Relative error ‖gpu − cpu‖ / ‖cpu‖ < 1e-2.
import { describe, expect, test } from "bun:test";
import { pagedAttention, type AttentionShape } from "../../src/native";
import { relErr } from "../native/helpers";
import { hasGpu, randomArray, roundBf16, shuffledPagedBatch } from "./gpuHelpers";

interface Case {
  name: string;
  heads: [number, number, number];  // num_heads, num_kv_heads, head_dim
  blockSize: number;
  window?: number;
  splits?: number;
  seqs: [number, number][];          // per sequence: [context, tokens in this pass]
}

const CASES: Case[] = [
  { name: "decode, GQA 4:1, hd 128, contexts 0..1500", heads: [8, 2, 128], blockSize: 16, seqs: [[0, 1], [16, 1], [300, 1], [1500, 1]] },
  { name: "one token, hd 64, block 5", heads: [4, 4, 64], blockSize: 5, seqs: [[0, 1]] },
  { name: "prompt chunk of 45 after 37, odd block 7, mixed with decodes", heads: [8, 2, 128], blockSize: 7, seqs: [[37, 45], [100, 1], [0, 13], [250, 1]] },
  { name: "long prefill 300 tokens, MHA hd 64", heads: [4, 4, 64], blockSize: 16, seqs: [[0, 300]] },
  { name: "sliding window 24, chunk + decodes", heads: [8, 2, 64], blockSize: 8, window: 24, seqs: [[40, 30], [90, 1], [5, 1]] },
  { name: "forced 3 key splits on decodes", heads: [8, 2, 128], blockSize: 16, splits: 3, seqs: [[700, 1], [33, 1], [0, 1]] },
  { name: "auto splits: one long decode", heads: [32, 8, 128], blockSize: 16, seqs: [[4000, 1]] },
  { name: "splits with a sliding window", heads: [8, 2, 64], blockSize: 16, window: 100, splits: 4, seqs: [[900, 1], [60, 1]] },
  { name: "MQA hd 256", heads: [8, 1, 256], blockSize: 16, seqs: [[50, 20], [200, 1]] },
  { name: "phi-2 like hd 80", heads: [32, 32, 80], blockSize: 16, seqs: [[20, 40], [77, 1]] },
  { name: "hd 16 (fixture size), GQA 2:1", heads: [4, 2, 16], blockSize: 4, seqs: [[9, 7], [3, 1]] },
  { name: "hd 96, group 8 (decode rows 8)", heads: [16, 2, 96], blockSize: 16, seqs: [[129, 1], [64, 3]] },
  { name: "hd 40: fallback kernel", heads: [4, 2, 40], blockSize: 8, seqs: [[30, 9], [70, 1]] },
];

function run(c: Case) {
  const [nh, nkv, hd] = c.heads;
  const bs = c.blockSize;
  const { batch, numBlocks: totalBlocks } = shuffledPagedBatch(c.seqs, bs);
  const T = batch.tokenIds.length;
  const shape: AttentionShape = { numHeads: nh, numKvHeads: nkv, headDim: hd, blockSize: bs, numBlocks: totalBlocks, window: c.window ?? 0, splits: c.splits };
  const q = roundBf16(randomArray(T * nh * hd));
  const k = roundBf16(randomArray(totalBlocks * bs * nkv * hd));
  const v = roundBf16(randomArray(totalBlocks * bs * nkv * hd));
  const ref = pagedAttention("cpu", batch, q, k, v, shape);
  const out = pagedAttention("cuda", batch, q, k, v, shape);
  const err = relErr(out.subarray(0, T * nh * hd), ref.subarray(0, T * nh * hd));
  console.log(`attention ${c.name}: rel err ${err.toExponential(2)}`);
  expect(out.some(Number.isNaN)).toBe(false);
  expect(err).toBeLessThan(1e-2);
}

describe.skipIf(!hasGpu)("cuda paged attention vs cpu", () => {
  for (const c of CASES) test(c.name, () => run(c), 60_000);
});
