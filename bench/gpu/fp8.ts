/**
 * FP8 weights on CUDA (issue #18) against bf16, on a Llama-2-7B-shaped model with random weights
 * made here: the bf16 engine, then the same weights quantized at load (the spec's "quantization":
 * "fp8", what --quantization fp8 sets), one after the other on the same GPU:
 *   decode b=1 ms/token vs the FP8 roofline (the bytes a decode step streams: E4M3 projections with
 *     their scales plus the bf16 LM head, over the copy bandwidth ceilings.py measured in the same
 *     run; targets >= 80% of it and >= 1.6x faster than bf16), and b = 2..16 (the GEMV's hand-over
 *     to cuBLASLt, FASTGEN_FP8_GEMV_MAX_M);
 *   decode batch 64 and 256 at ctx 512, tokens/s;
 *   prefill 2048 tokens, TFLOP/s vs the cuBLASLt FP8 GEMM ceiling (torch._scaled_mm 8192^3; target
 *     >= 60%) and the bf16 engine's;
 *   logits of the FP8 engine against the bf16 engine's (decode and prefill), as a sanity figure.
 *
 *   bun bench/gpu/fp8.ts <ceilings.json> <out-dir> [--quick] [--shape 7b|70b] [--layers N] [--fp8-only]
 *   --quick: decode b = 1..16 only, FP8 engine only, printed (FASTGEN_FP8_GEMV_MAX_M / _LT A/B runs);
 *   --shape 70b --fp8-only: the Llama-2-70B shape on one GPU (its bf16 weights, 128 GiB, fit no
 *   single H100/H200 beside a KV pool, so only the FP8 engine runs and the bf16 column is empty).
 * Steps are timed on the host around fg_step (it waits for the sampled tokens), as llama7b.ts does.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeEngine } from "../../src/native";
import { batchOf as batchOfSpec, loadRandom, shapeSpec, timeSteps } from "./randomModel";

const [ceilPath, outDir = "bench/results", ...flags] = process.argv.slice(2);
const quick = flags.includes("--quick"), fp8Only = flags.includes("--fp8-only");
const flag = (name: string) => { const i = flags.indexOf(name); return i >= 0 ? flags[i + 1] : undefined; };
const shape = (flag("--shape") ?? "7b") as "7b" | "70b";
const layersFlag = flag("--layers") ? Number(flag("--layers")) : undefined;
const ceil = ceilPath && existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
const knobs = ["FASTGEN_FP8_SMALL_MAX_M", "FASTGEN_FP8_GEMV_MAX_M", "FASTGEN_FP8_SMALL_KDEPTH", "FASTGEN_FP8_GEMV_DEPTH", "FASTGEN_FP8_LT", "FASTGEN_FP8_FAST_ACCUM", "FASTGEN_GEMV_PIPE", "FASTGEN_CUDA_GRAPHS", "FASTGEN_PREFETCH_O",
  "FASTGEN_PROFILE"]
  .filter((k) => process.env[k] !== undefined).map((k) => `${k}=${process.env[k]}`);
const label = knobs.join(",") || "default";

const spec = shapeSpec(shape, layersFlag);
const H = spec.hidden_size, I = spec.intermediate_size, L = spec.num_layers, V = spec.vocab_size;
const NH = spec.num_heads, KVD = spec.num_kv_heads * spec.head_dim!;
const qkvRows = NH * spec.head_dim! + 2 * KVD;
const projElems = L * (qkvRows * H + H * NH * spec.head_dim! + 3 * H * I), projRows = L * (qkvRows + H + 2 * I + H);
// bytes a decode step streams: every projection once (E4M3 + an fp32 scale a row) and the LM head
const fp8StepBytes = projElems + 4 * projRows + V * H * 2;
const bw = ceil.copy_bw_GBps ? ceil.copy_bw_GBps * 1e9 : NaN;

interface Figures {
  load_s: number; weight_gib: number; kv_blocks: number;
  decode_b1_ms: number; decode_small: Record<number, number>; decode_batch: Record<number, { ms: number; tok_s: number }>;
  prefill_2048?: { ms: number; tflops: number };
  logits?: { decode: Float32Array; prefill: Float32Array };
}

function measure(quantized: boolean): Figures {
  const t0 = performance.now();
  const e = NativeEngine.create({ ...spec, ...(quantized ? { quantization: "fp8" as const } : {}) }, "cuda");
  try {
    loadRandom(e, spec);
    const info = e.finalize({});
    const load_s = (performance.now() - t0) / 1000;
    const bs = info.blockSize, pool = info.numBlocks;
    const batch = (n: number, chunk: number, ctx: number, first = 0) => batchOfSpec(spec, n, chunk, ctx, bs, { poolBlocks: pool, firstBlock: first });
    const f: Figures = { load_s, weight_gib: info.weightBytes / 2 ** 30, kv_blocks: pool, decode_b1_ms: 0, decode_small: {}, decode_batch: {} };
    f.decode_b1_ms = timeSteps(e, batch(1, 1, 128), 30, 3);
    for (const b of [2, 4, 8, 16]) f.decode_small[b] = timeSteps(e, batch(b, 1, 128), 15, 2);
    console.log(`[${quantized ? "fp8" : "bf16"}] loaded in ${load_s.toFixed(1)} s, weights ${f.weight_gib.toFixed(2)} GiB, ` +
      `decode b=1 ${f.decode_b1_ms.toFixed(3)} ms; b=2..16 ${Object.values(f.decode_small).map((x) => x.toFixed(3)).join(" / ")} ms`);
    if (quick) return f;
    for (const B of [64, 256]) {
      const ms = timeSteps(e, batch(B, 1, 512), 10);
      f.decode_batch[B] = { ms, tok_s: (B / ms) * 1e3 };
    }
    const T = 2048;
    const ms = timeSteps(e, batch(1, T, 0), 5, 1);
    const linFlops = 2 * T * projElems + 2 * V * H;  // the LM head on the last token only, as llama7b.ts counts
    const attnFlops = L * 4 * NH * spec.head_dim! * (T * (T + 1)) / 2;
    f.prefill_2048 = { ms, tflops: (linFlops + attnFlops) / (ms * 1e-3) / 1e12 };
    const decode = e.step({ ...batchOfSpec(spec, 1, 1, 0, bs), returnLogits: true }).logits!;
    const prefill = e.step({ ...batchOfSpec(spec, 1, 64, 0, bs, { firstBlock: 8 }), returnLogits: true }).logits!;
    f.logits = { decode, prefill };
    return f;
  } finally {
    e.destroy();
  }
}

function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) num += (a[i]! - b[i]!) ** 2, den += b[i]! ** 2;
  return Math.sqrt(num / den);
}

const rooflineMs = (fp8StepBytes / bw) * 1e3;
if (quick) {
  const f8 = measure(true);
  console.log(`[${label}] fp8 decode b=1 ${f8.decode_b1_ms.toFixed(3)} ms (${((100 * rooflineMs) / f8.decode_b1_ms).toFixed(1)}% of ` +
    `${rooflineMs.toFixed(3)} ms roofline); b=2/4/8/16: ${Object.values(f8.decode_small).map((x) => x.toFixed(3)).join(" / ")} ms`);
  process.exit(0);
}

/** --fp8-only: the bf16 side as NaN (printed as "-" and null in the JSON). */
const none: Figures = {
  load_s: NaN, weight_gib: NaN, kv_blocks: NaN, decode_b1_ms: NaN, decode_small: { 2: NaN, 4: NaN, 8: NaN, 16: NaN },
  decode_batch: { 64: { ms: NaN, tok_s: NaN }, 256: { ms: NaN, tok_s: NaN } }, prefill_2048: { ms: NaN, tflops: NaN },
};
const bf = fp8Only ? none : measure(false), f8 = measure(true);
const gemmCeil = ceil.gemm_fp8_8192_tflops as number | undefined;
const results = {
  label, gpu: ceil.gpu, date: new Date().toISOString(), command: `bun bench/gpu/fp8.ts ${process.argv.slice(2).join(" ")}`,
  ceilings: ceil, fp8_step_bytes: fp8StepBytes,
  decode_b1: {
    fp8_ms: f8.decode_b1_ms, bf16_ms: bf.decode_b1_ms, fp8_roofline_ms: rooflineMs,
    pct_of_fp8_roofline: (100 * rooflineMs) / f8.decode_b1_ms, speedup_vs_bf16: bf.decode_b1_ms / f8.decode_b1_ms,
  },
  decode_small_ms: { fp8: f8.decode_small, bf16: bf.decode_small },
  decode_batch_ctx512: { fp8: f8.decode_batch, bf16: bf.decode_batch },
  prefill_2048: {
    fp8: f8.prefill_2048, bf16: bf.prefill_2048, fp8_gemm_ceiling_tflops: gemmCeil ?? null,
    pct_of_fp8_gemm_ceiling: gemmCeil ? (100 * f8.prefill_2048!.tflops) / gemmCeil : null,
  },
  weights_gib: { fp8: f8.weight_gib, bf16: bf.weight_gib }, kv_blocks: { fp8: f8.kv_blocks, bf16: bf.kv_blocks },
  load_seconds: { fp8: f8.load_s, bf16: bf.load_s },
  logits_rel_err_vs_bf16: bf.logits
    ? { decode: relErr(f8.logits!.decode, bf.logits.decode), prefill_64: relErr(f8.logits!.prefill, bf.logits.prefill) }
    : { decode: NaN, prefill_64: NaN },
};
mkdirSync(outDir, { recursive: true });
const model = `${shape === "7b" ? "llama7b" : "llama70b"}${layersFlag ? `-${L}l` : ""}`;
const base = join(outDir, `cuda-fp8-${model}-${label}`);
writeFileSync(`${base}.json`, JSON.stringify(results, null, 1));
const d = results.decode_b1, p = results.prefill_2048;
const rows = [
  `# CUDA backend, Llama-2-${shape.toUpperCase()} shape (${L} layers), FP8 weights quantized at load vs bf16 (${label})`,
  ``,
  `GPU ${ceil.gpu}; ${results.date}; \`${results.command}\``,
  `ceilings (same run): copy ${ceil.copy_bw_GBps} GB/s, FP8 GEMM 8192^3 ${gemmCeil ?? ceil.gemm_fp8_error} TFLOP/s, bf16 ${ceil.gemm_bf16_8192_tflops} TFLOP/s`,
  ``,
  `| figure | FP8 | bf16 |`, `| --- | --- | --- |`,
  `| weights | ${f8.weight_gib.toFixed(2)} GiB | ${bf.weight_gib.toFixed(2)} GiB |`,
  `| KV blocks | ${f8.kv_blocks} | ${bf.kv_blocks} |`,
  `| decode b=1, ctx 128 | ${d.fp8_ms.toFixed(3)} ms (${d.pct_of_fp8_roofline.toFixed(1)}% of the ${d.fp8_roofline_ms.toFixed(3)} ms FP8 roofline; ${d.speedup_vs_bf16.toFixed(2)}x bf16) | ${d.bf16_ms.toFixed(3)} ms |`,
  ...[2, 4, 8, 16].map((b) => `| decode b=${b}, ctx 128 | ${f8.decode_small[b]!.toFixed(3)} ms | ${bf.decode_small[b]!.toFixed(3)} ms |`),
  ...[64, 256].map((b) => `| decode batch ${b}, ctx 512 | ${f8.decode_batch[b]!.tok_s.toFixed(0)} tok/s (${f8.decode_batch[b]!.ms.toFixed(2)} ms) | ${bf.decode_batch[b]!.tok_s.toFixed(0)} tok/s (${bf.decode_batch[b]!.ms.toFixed(2)} ms) |`),
  `| prefill 2048 | ${p.fp8!.ms.toFixed(2)} ms, ${p.fp8!.tflops.toFixed(1)} TFLOP/s (${p.pct_of_fp8_gemm_ceiling?.toFixed(1)}% of the FP8 GEMM ceiling) | ${p.bf16!.ms.toFixed(2)} ms, ${p.bf16!.tflops.toFixed(1)} TFLOP/s |`,
  `| logits vs bf16 (rel. err) | decode ${results.logits_rel_err_vs_bf16.decode.toExponential(2)}, prefill 64 ${results.logits_rel_err_vs_bf16.prefill_64.toExponential(2)} | |`,
];
writeFileSync(`${base}.md`, rows.join("\n") + "\n");
console.log(rows.join("\n"));
