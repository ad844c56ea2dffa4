// CUDA latent attention (cuda/attention_mla.cu) against its CPU twin (cpu/attention.cpp as
// cpu/mla.cpp calls it: one shared [latent | rope] row per position as keys, its latent part as
// values) through fg_mla_attention, on fresh random bf16 inputs: DeepSeek-V2-Lite's widths (16
// heads, 512 + 64) and V2's (128 heads), the fixtures' (4 heads, 32 + 8), head counts that fill
// 1, 2 or 4 heads a warp and a partial last head group, decode tokens and prompt chunks at any
// context offset, odd block sizes, sliding windows, a logit softcap, forced and automatic key
// splits. Relative error ‖gpu − cpu‖ / ‖cpu‖ < 1e-2 (bf16 output). The default kernel is
// FASTGEN_MLA_KERNEL's (mma: the tensor-core one); the last describe runs these cases and
// fp8Kv.test.ts's latent ones again with the fp32 kernel (fma) and the tensor-core kernel's row
// counts forced (mma16, mma64: 16 or 64 query rows a CTA), each in a child process (libfastgen
// reads its knobs once a process).
import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import { mlaAttention, type MlaAttentionShape } from "../../src/native";
import { makeBatch, relErr, type SeqChunk } from "../native/helpers";
import { hasGpu, randomArray, roundBf16, shuffledPagedBatch } from "./gpuHelpers";

interface Case {
  name: string;
  dims: [number, number, number];  // num_heads, latent (kv_lora_rank), rope
  blockSize: number;
  window?: number;
  softcap?: number;
  splits?: number;
  seqs: [number, number][];        // per sequence: [context, tokens in this pass]
}

const CASES: Case[] = [
  { name: "V2-Lite widths: decodes at contexts 0..1500", dims: [16, 512, 64], blockSize: 16, seqs: [[0, 1], [16, 1], [300, 1], [1500, 1]] },
  { name: "V2-Lite widths: prompt chunk of 45 after 37, block 7, with decodes", dims: [16, 512, 64], blockSize: 7, seqs: [[37, 45], [100, 1], [0, 13]] },
  { name: "V2-Lite widths: one long decode, automatic splits", dims: [16, 512, 64], blockSize: 64, seqs: [[5000, 1]] },
  { name: "V2-Lite widths: forced 5 splits, decodes and a short chunk", dims: [16, 512, 64], blockSize: 16, splits: 5, seqs: [[700, 1], [33, 3], [0, 1]] },
  { name: "V2 widths: 128 heads (8 head groups)", dims: [128, 512, 64], blockSize: 16, seqs: [[200, 1], [40, 9]] },
  { name: "fixture widths: 4 heads, 32 + 8, block 4", dims: [4, 32, 8], blockSize: 4, seqs: [[9, 7], [3, 1], [0, 20]] },
  { name: "8 heads (2 a warp), latent 96 + 16, prefill of 150", dims: [8, 96, 16], blockSize: 16, seqs: [[0, 150]] },
  { name: "20 heads: a partial second head group, latent 128 + 32", dims: [20, 128, 32], blockSize: 5, seqs: [[61, 1], [10, 40]] },
  { name: "sliding window 24 with a chunk and decodes", dims: [16, 256, 64], blockSize: 8, window: 24, seqs: [[40, 30], [90, 1], [5, 1]] },
  { name: "window 100 with 4 forced splits", dims: [16, 512, 64], blockSize: 16, window: 100, splits: 4, seqs: [[900, 1], [60, 1]] },
  { name: "logit softcap 2", dims: [4, 64, 16], blockSize: 16, softcap: 2, seqs: [[30, 12], [70, 1]] },
];

function run(c: Case) {
  const [nh, latent, rope] = c.dims;
  const D = latent + rope, bs = c.blockSize;
  const { batch, numBlocks: totalBlocks } = shuffledPagedBatch(c.seqs, bs);
  const T = batch.tokenIds.length;
  // DeepSeek's scale: 1 / sqrt(qk_nope + rope), here with nope = 2 rope
  const shape: MlaAttentionShape = {
    numHeads: nh, latent, rope, blockSize: bs, numBlocks: totalBlocks, window: c.window ?? 0,
    scale: 1 / Math.sqrt(3 * rope), softcap: c.softcap ?? 0, splits: c.splits,
  };
  const q = roundBf16(randomArray(T * nh * D));
  const cache = roundBf16(randomArray(totalBlocks * bs * D));
  const ref = mlaAttention("cpu", batch, q, cache, shape);
  const out = mlaAttention("cuda", batch, q, cache, shape);
  const n = T * nh * latent;
  const err = relErr(out.subarray(0, n), ref.subarray(0, n));
  console.log(`mla attention ${c.name}: rel err ${err.toExponential(2)}`);
  expect(out.subarray(0, n).some(Number.isNaN)).toBe(false);
  expect(err).toBeLessThan(1e-2);
}

describe.skipIf(!hasGpu)("cuda latent attention vs cpu", () => {
  for (const c of CASES) test(c.name, () => run(c), 60_000);

  test("the same decode with 1, 3 and automatic key splits agrees within bf16 rounding", () => {
    const chunks: SeqChunk[] = [{ tokens: [1], context: 999, blocks: Array.from({ length: 63 }, (_, i) => 62 - i) }];
    const batch = makeBatch(chunks);
    const shape: MlaAttentionShape = { numHeads: 16, latent: 512, rope: 64, blockSize: 16, numBlocks: 63, window: 0, scale: 0.07 };
    const q = roundBf16(randomArray(16 * 576)), cache = roundBf16(randomArray(63 * 16 * 576));
    const one = mlaAttention("cuda", batch, q, cache, { ...shape, splits: 1 });
    for (const splits of [3, 0]) expect(relErr(mlaAttention("cuda", batch, q, cache, { ...shape, splits }), one)).toBeLessThan(1e-2);
  });
});

describe("the latent attention hook on the CPU", () => {
  test("matches a direct computation: keys are whole rows, values their latent part", () => {
    const nh = 2, latent = 8, rope = 4, D = latent + rope, bs = 4, scale = 0.3, window = 4;
    const blocks = [1, 0];  // positions 0..3 in block 1, 4..7 in block 0
    const batch = makeBatch([{ tokens: [1, 1, 1], context: 4, blocks }]);
    const q = randomArray(3 * nh * D), cache = randomArray(2 * bs * D);
    const out = mlaAttention("cpu", batch, q, cache, { numHeads: nh, latent, rope, blockSize: bs, numBlocks: 2, window, scale });
    const row = (p: number) => cache.subarray((blocks[Math.floor(p / bs)]! * bs + (p % bs)) * D, (blocks[Math.floor(p / bs)]! * bs + (p % bs) + 1) * D);
    for (let t = 0; t < 3; t++)
      for (let h = 0; h < nh; h++) {
        const pos = 4 + t, qv = q.subarray((t * nh + h) * D, (t * nh + h + 1) * D);
        const js = Array.from({ length: window }, (_, i) => pos - window + 1 + i).filter((j) => j >= 0);
        const s = js.map((j) => scale * row(j).reduce((a, k, d) => a + k * qv[d]!, 0));
        const mx = Math.max(...s), e = s.map((x) => Math.exp(x - mx)), sum = e.reduce((a, b) => a + b, 0);
        for (let c = 0; c < latent; c++) {
          const want = js.reduce((a, j, i) => a + (e[i]! / sum) * row(j)[c]!, 0);
          expect(out[(t * nh + h) * latent + c]!).toBeCloseTo(want, 5);
        }
      }
  });

  test("refuses a bad shape with a typed error", () => {
    const batch = makeBatch([{ tokens: [1], context: 0, blocks: [0] }]);
    const shape: MlaAttentionShape = { numHeads: 2, latent: 8, rope: 0, blockSize: 4, numBlocks: 1, window: 0, scale: 0 };
    expect(() => mlaAttention("cpu", batch, new Float32Array(16), new Float32Array(32), shape)).toThrow("bad arguments");
  });
});

const KERNEL_RUNS = ["fma", "mma16", "mma64"];
describe.skipIf(!hasGpu || process.env.FASTGEN_MLA_AB_CHILD === "1")("the latent attention kernels (child processes)", () => {
  for (const kernel of KERNEL_RUNS) {
    test(`FASTGEN_MLA_KERNEL=${kernel}`, () => {
      const r = Bun.spawnSync([process.execPath, "test", "--timeout", "120000", import.meta.path,
        join(import.meta.dir, "fp8Kv.test.ts"), "-t", "cuda latent attention vs cpu|latent: "], {
        env: { ...process.env, FASTGEN_MLA_KERNEL: kernel, FASTGEN_MLA_AB_CHILD: "1" }, stdout: "pipe", stderr: "pipe",
      });
      const out = r.stdout.toString() + r.stderr.toString();
      for (const line of out.split("\n")) if (/latent attention|\(fail\)|error:|^ *\d+ (pass|fail)/.test(line)) console.log(`[${kernel}] ${line}`);
      expect(r.exitCode).toBe(0);
      expect(out).toMatch(/\b[1-9]\d* pass/);
    }, 300_000);
  }
});
