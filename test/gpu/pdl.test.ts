// The decode chain's launch knobs on the device (issue #24 item 5): programmatic dependent launch
// (FASTGEN_PDL), the RMSNorm folded into the qkv and gated MLP GEMVs (FASTGEN_NORM_FOLD,
// libfastgen/src/cuda/rms_fold.cuh) and the o weights' L2 prefetch (FASTGEN_PREFETCH_O). Each setting runs test/gpu/decodeChain.ts's scenario in its
// own process (knobs are read once a process): six tiny model families (llama with the narrow
// and the wide one-token GEMV, one layer at the 7B width, qwen3 with q/k norms, a model with
// biases where only some norms fold, a gemma2 sandwich model on the old path), a prefill pass,
// then decode passes at batch 1, 2, 4, 8, 3 and 16, each shape eager, captured and replayed as a
// CUDA graph (step.cu replays every decode-only step when graphs are on; a capture that failed
// with PDL edges fails the step).
//   - PDL on and off: bit-identical logits (PDL moves only when blocks start; a kernel that read
//     its input before griddepcontrol.wait would show here as a difference or run-to-run noise);
//   - folding on and off: bit-identical (the folded GEMVs rebuild exactly the bf16 x norm_rows
//     writes and run the same kernel), also through the small-M kernel at one token
//     (FASTGEN_GEMV_SMALL_AT_1=1), at batch 2-8 with 16 and 32 rows a warp (FASTGEN_GEMV_ROWS=32:
//     the 7B shapes' tiling), and with x of 8 tokens at hidden 4096 (66 KB of shared memory);
//   - graphs off (eager) equals graphs on (replayed with PDL edges), and FASTGEN_PREFETCH_O (o's
//     weights pulled into L2 by the RoPE kernel: a hint) changes nothing;
//   - decode attention's key splits (3 forced at every decode, some of them empty at short
//     contexts) merged by the last CTA of each tile (FASTGEN_ATTN_MERGE_IN_KERNEL=1,
//     cuda/attn_splits.cuh) equal the combine kernel's merge, replayed graphs included (the
//     counters set themselves back to zero);
//   - decode with RoPE and the K/V write in the qkv GEMV's epilogue (FASTGEN_QKV_ROPE=1 or 2: at
//     batch 1 rope.cu qkv_gemv_rope, at 2-16 and FP8's sizes the small-M kernel's; qwen3's q/k
//     norms keep the RoPE kernel) equals the RoPE kernel,
//     with the norm's scale deferred into the GEMVs too (FASTGEN_NORM_DEFER=16), whose chain, not
//     bit-identical to the plain one, is held against the CPU like the folded one;
//   - the deferred norm at batch 2-16 (bf16) and 1-16 (FP8, --quantization fp8 with the small-M
//     kernel at every decode size): the o and down GEMVs write the next norm's x and its partial
//     sums (rms_fold.cuh DeferredNorm), graphs and PDL equal eager without, and the chain stays
//     within the CPU tolerance of the plain one (bf16: the CPU itself; FP8: the plain FP8 chain,
//     whose prefill runs W8A8 on cuBLASLt as the deferred one does);
//   - the small-M kernel's blocks looping over row tiles (FASTGEN_GEMV_PERSIST: a grid of the
//     resident blocks, or 3 blocks for every tile) equal one block a tile, bf16 and FP8, with the
//     deferred norm's partial sums written per tile; and with the weights staged through shared
//     memory by cp.async (FASTGEN_GEMV_STAGED) instead of registers;
//   - and against the CPU backend (fp32 reference, same bf16-rounded weights): logits within the
//     2e-2 relative of test/gpu/engine.test.ts, greedy ids equal up to near-ties.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { maxAbsDiff, relErr } from "../native/helpers";
import { FAMILIES, familyModel, runChain, type ChainRun } from "./decodeChain";
import { hasGpu, top2 } from "./gpuHelpers";

// Settings, each one child process. FASTGEN_NORM_FOLD=8: every decode batch up to 8 folds.
// FP8: the models quantized at load, every decode size (1-16) on the small-M kernel.
const FP8 = { DECODE_CHAIN_QUANTIZATION: "fp8", FASTGEN_FP8_GEMV_MAX_M: "0", FASTGEN_FP8_SMALL_MAX_M: "16" };
const RUNS: Record<string, Record<string, string>> = {
  base: { FASTGEN_PDL: "0", FASTGEN_NORM_FOLD: "0" },
  pdl: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0" },
  fold: { FASTGEN_PDL: "0", FASTGEN_NORM_FOLD: "8" },
  both: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "8" },
  eager: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "8", FASTGEN_CUDA_GRAPHS: "0" },
  prefetch: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "8", FASTGEN_PREFETCH_O: "1" },
  small1: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_GEMV_SMALL_AT_1: "1" },
  small1Fold: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "8", FASTGEN_GEMV_SMALL_AT_1: "1" },
  rows32: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_GEMV_ROWS: "32" },
  rows32Fold: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "8", FASTGEN_GEMV_ROWS: "32" },
  splits3: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_ATTN_SPLITS: "3", FASTGEN_ATTN_MERGE_IN_KERNEL: "1" },
  splits3Kernel: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_ATTN_SPLITS: "3", FASTGEN_ATTN_MERGE_IN_KERNEL: "0" },
  ropeOff: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_QKV_ROPE: "0" },
  ropeGemv: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_QKV_ROPE: "1" },
  ropeGemvEarly: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_QKV_ROPE: "2" },
  ropeGemvEager: { FASTGEN_PDL: "0", FASTGEN_NORM_FOLD: "0", FASTGEN_QKV_ROPE: "1", FASTGEN_CUDA_GRAPHS: "0" },
  defer: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "16", FASTGEN_QKV_ROPE: "0" },
  deferRope: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "16", FASTGEN_QKV_ROPE: "1" },
  deferRopeEager: { FASTGEN_PDL: "0", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "16", FASTGEN_QKV_ROPE: "1", FASTGEN_CUDA_GRAPHS: "0" },
  fp8: { ...FP8, FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "0" },
  fp8Defer: { ...FP8, FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "16" },
  fp8DeferEager: { ...FP8, FASTGEN_PDL: "0", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "16", FASTGEN_CUDA_GRAPHS: "0" },
  fp8RopeOff: { ...FP8, FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "0", FASTGEN_QKV_ROPE: "0" },
  fp8RopeSmall: { ...FP8, FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "0", FASTGEN_QKV_ROPE: "3" },
  ropeSmall: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_QKV_ROPE: "3" },
  persist: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_GEMV_PERSIST: "1" },
  persist3: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_GEMV_PERSIST: "3" },
  staged: { FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_GEMV_STAGED: "1" },
  fp8Staged: { ...FP8, FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "0", FASTGEN_GEMV_STAGED: "1" },
  fp8Persist: { ...FP8, FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "0", FASTGEN_GEMV_PERSIST: "1" },
  fp8DeferPersist3: { ...FP8, FASTGEN_PDL: "1", FASTGEN_NORM_FOLD: "0", FASTGEN_NORM_DEFER: "16", FASTGEN_GEMV_PERSIST: "3" },
};
// FASTGEN_QKV_ROPE=3 (RoPE in the small-M kernel's epilogue): bit-identical on the CPU model of
// CUDA (test/cudaEmu/ropeSmallHarness.cpp) but not on an H100 (stop 27, device-wave19-h100.md
// call 2: runs of one setting differed from each other), so todo until that is understood.
const TODO_IDENTICAL: [string, string, string][] = [
  ["ropeGemv", "ropeSmall", "RoPE and the K/V write in the small-M qkv GEMV at 2-16 tokens vs the RoPE kernel"],
  ["fp8RopeOff", "fp8RopeSmall", "FP8: RoPE and the K/V write in the small-M qkv GEMV at every decode size vs the RoPE kernel"],
];
// [a, b, what]: pairs that must agree bit for bit.
const IDENTICAL: [string, string, string][] = [
  ["base", "pdl", "PDL on vs off"],
  ["fold", "both", "PDL on vs off, norms folded"],
  ["base", "fold", "norms folded vs not"],
  ["pdl", "both", "norms folded vs not, PDL on"],
  ["both", "eager", "graphs replayed vs eager"],
  ["both", "prefetch", "o weights prefetched into L2 by the RoPE kernel vs not"],
  ["small1", "small1Fold", "norms folded vs not, small-M kernel at one token"],
  ["rows32", "rows32Fold", "norms folded vs not, small-M kernel with 32 rows a warp"],
  ["splits3", "splits3Kernel", "3 key splits merged by the attention kernel's last CTA vs by the combine kernel"],
  ["ropeOff", "ropeGemv", "RoPE and the K/V write in the qkv GEMV at batch 1 vs the RoPE kernel"],
  ["ropeOff", "ropeGemvEarly", "RoPE in the qkv GEMV, attention let in at its start, vs the RoPE kernel"],
  ["ropeOff", "ropeGemvEager", "RoPE in the qkv GEMV without PDL or graphs vs the RoPE kernel"],
  ["defer", "deferRope", "deferred norm: RoPE in the qkv GEMV vs the RoPE kernel"],
  ["deferRope", "deferRopeEager", "deferred norm and RoPE in the qkv GEMV: graphs and PDL vs eager without"],
  ["fp8Defer", "fp8DeferEager", "FP8, deferred norm in the small-M kernels: graphs and PDL vs eager without"],
  ["pdl", "persist", "small-M kernel: a grid of the resident blocks looping over row tiles vs a block a tile"],
  ["pdl", "persist3", "small-M kernel: 3 blocks looping over every row tile vs a block a tile"],
  ["fp8", "fp8Persist", "FP8 small-M kernel: resident blocks looping over row tiles vs a block a tile"],
  ["pdl", "staged", "small-M kernel: weights staged through shared memory (cp.async) vs registers"],
  ["fp8", "fp8Staged", "FP8 small-M kernel: weights staged through shared memory (cp.async) vs registers"],
  ["fp8Defer", "fp8DeferPersist3", "FP8, deferred norm: 3 blocks looping over every row tile vs a block a tile"],
];

const dirs: Record<string, string> = {};
function runDir(name: string): string {
  if (dirs[name]) return dirs[name]!;
  const dir = mkdtempSync(join(tmpdir(), `fastgen-pdl-${name}-`));
  const r = Bun.spawnSync([process.execPath, join(import.meta.dir, "decodeChain.ts"), dir], {
    env: { ...process.env, ...RUNS[name] }, stdout: "pipe", stderr: "pipe",
  });
  if (r.exitCode !== 0) throw new Error(`decodeChain.ts under ${JSON.stringify(RUNS[name])} failed:\n${r.stderr.toString()}${r.stdout.toString()}`);
  return (dirs[name] = dir);
}
function load(name: string, family: number): ChainRun {
  const dir = runDir(name);
  const buf = readFileSync(join(dir, `${family}.f32`));
  return {
    logits: new Float32Array(buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength)),
    ids: JSON.parse(readFileSync(join(dir, `${family}.ids.json`), "utf8")),
  };
}

describe.skipIf(!hasGpu)("decode chain: PDL and the folded RMSNorm, bit for bit", () => {
  // Every family is compared and logged before anything is asserted: one device run tells all.
  for (const [a, b, what] of IDENTICAL) {
    test(`${what} (${a} vs ${b})`, () => {
      const bad: string[] = [];
      FAMILIES.forEach(([name], f) => {
        const x = load(a, f), y = load(b, f);
        let differ = 0;
        for (let i = 0; i < x.logits.length; i++) if (!Object.is(x.logits[i], y.logits[i])) differ++;
        const ids = x.ids.filter((id, i) => id !== y.ids[i]).length;
        console.log(`${what}: ${name}: ${differ} of ${x.logits.length} logits and ${ids} of ${x.ids.length} greedy ids differ (max |d| ${maxAbsDiff(x.logits, y.logits).toExponential(2)}, rel ${relErr(y.logits, x.logits).toExponential(2)})`);
        if (differ || ids || x.logits.length !== y.logits.length) bad.push(name);
      });
      expect(bad).toEqual([]);
    }, 240_000);
  }

  for (const [a, b, what] of TODO_IDENTICAL) test.todo(`${what} (${a} vs ${b})`, () => {});

  // Logits of `got` within the CPU tolerance of `ref` (test/gpu/engine.test.ts's 2e-2 relative),
  // greedy ids equal up to near-ties of ref; logged per family, asserted after all are seen.
  function closeTo(what: string, got: (f: number) => ChainRun, ref: (f: number) => ChainRun) {
    const bad: string[] = [];
    FAMILIES.forEach(([name], f) => {
      const g0 = got(f), r0 = ref(f);
      const V = familyModel(f).spec.vocab_size, rows = r0.ids.length;
      let worst = 0, ties = 0, farTies = 0, notArgmax = 0;
      for (let r = 0; r < rows; r++) {
        const g = g0.logits.subarray(r * V, (r + 1) * V), c = r0.logits.subarray(r * V, (r + 1) * V);
        worst = Math.max(worst, relErr(g, c));
        if (g0.ids[r] !== top2(g).best) notArgmax++;
        if (g0.ids[r] !== r0.ids[r]) {  // allowed only where ref's top-2 gap is within the error
          ties++;
          if (top2(c).gap >= 2 * maxAbsDiff(g, c)) farTies++;
        }
      }
      console.log(`${what}: ${name}: worst logits rel err ${worst.toExponential(2)} over ${rows} rows, near-tie id swaps ${ties}, other swaps ${farTies}, picks not the argmax ${notArgmax}`);
      if (g0.ids.length !== rows || !(worst < 2e-2) || farTies || notArgmax || ties > Math.ceil(rows / 20)) bad.push(name);
    });
    expect(bad).toEqual([]);
  }

  // "both": the folded chain (bit-identical to the plain one); "deferRope": the norm's scale deferred
  // (FASTGEN_NORM_DEFER: not bit-identical to the plain chain, so only close to the CPU).
  for (const run of ["both", "deferRope"])
    test(`${run === "both" ? "folded and PDL-launched" : "deferred-norm"} decode chain vs the CPU backend`, () => {
      closeTo(`${run} vs cpu`, (f) => load(run, f), (f) => runChain("cpu", f));
    }, 240_000);

  test("FP8, deferred norm in the small-M kernels vs the plain FP8 chain", () => {
    closeTo("fp8Defer vs fp8", (f) => load("fp8Defer", f), (f) => load("fp8", f));
  }, 240_000);

  test("cleanup", () => {
    for (const d of Object.values(dirs)) rmSync(d, { recursive: true, force: true });
  });
});
