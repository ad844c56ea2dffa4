/**
 * CUDA backend figures on a Llama-2-7B-shaped model (32 layers, hidden 4096, 32 heads,
 * intermediate 11008, vocab 32000) with random bf16 weights generated here (no download):
 *   decode at batch 1: ms/token and % of the weight-streaming roofline (weight bytes / the
 *     device-to-device copy bandwidth ceilings.py measured in the same run)
 *   decode at batch B, prefill of 2048 tokens (TFLOP/s vs a large cuBLAS bf16 GEMM),
 *   tokens/s vs tokens per forward pass 1..4096 (the knee -> default token budget),
 *   paged attention on the prefill shape vs torch SDPA flash (through the test hook)
 *
 *   bun bench/gpu/llama7b.ts <ceilings.json> <out-dir> [--quick]   (--quick: decode b=1 only, no files)
 * Every step is timed on the host around fg_step (which waits for its sampled tokens), so the
 * figures include the batch upload, sampling and the copy back.
 */
import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { NativeEngine, pagedAttention } from "../../src/native";
import { batchOf as batchOfSpec, loadRandom, shapeSpec, timeSteps } from "./randomModel";

const [ceilPath, outDir = "bench/results", ...flags] = process.argv.slice(2);
const quick = flags.includes("--quick");
const ceil = ceilPath && existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
const label = [process.env.FASTGEN_GEMV === "0" ? "cublaslt-only" : "", process.env.FASTGEN_CUDA_GRAPHS === "0" ? "no-graphs" : "",
  process.env.FASTGEN_PROFILE === "1" ? "profiled" : ""].filter(Boolean).join(",") || "default";

const spec = shapeSpec("7b");
// Batches larger than the KV pool (e.g. 256 x 512 on an 80 GB GPU) wrap their block ids around
// it: each timed step still reads every sequence's K/V (listed in results.shared_blocks).
let poolBlocks = Infinity;
const sharedBlocks: string[] = [];
const batchOf = (numSeqs: number, chunk: number, ctx: number, blockSize: number) => {
  const need = numSeqs * Math.ceil((ctx + chunk) / blockSize);
  if (need > poolBlocks) sharedBlocks.push(`${numSeqs} x ${chunk} tokens at ctx ${ctx}: ${need} blocks on a pool of ${poolBlocks}`);
  return batchOfSpec(spec, numSeqs, chunk, ctx, blockSize, { poolBlocks });
};

const t0 = performance.now();
const engine = NativeEngine.create(spec, "cuda");
const matBytes = loadRandom(engine, spec);
const info = engine.finalize({});
const loadS = (performance.now() - t0) / 1000;
console.log(`loaded in ${loadS.toFixed(1)} s: weights ${(info.weightBytes / 2 ** 30).toFixed(2)} GiB, KV ${info.numBlocks} blocks x ${info.blockSize} (${(info.kvBytes / 2 ** 30).toFixed(1)} GiB)`);
const bs = info.blockSize;
poolBlocks = info.numBlocks;

const bw = ceil.copy_bw_GBps ? ceil.copy_bw_GBps * 1e9 : NaN;
const rooflineMs = (matBytes / bw) * 1e3;
const results: Record<string, unknown> = { label, gpu: ceil.gpu, date: new Date().toISOString(), command: `bun bench/gpu/llama7b.ts ${process.argv.slice(2).join(" ")}`, ceilings: ceil, weight_bytes_streamed_per_decode: matBytes, load_seconds: loadS };

const decode1 = timeSteps(engine, batchOf(1, 1, 128, bs), 30, 3);
const decode1Long = timeSteps(engine, batchOf(1, 1, 2000, bs), 20);
results.decode_b1 = { ctx128_ms: decode1, ctx2000_ms: decode1Long, roofline_ms: rooflineMs, pct_of_roofline_ctx128: (100 * rooflineMs) / decode1 };
console.log(`decode b=1 ctx 128: ${decode1.toFixed(3)} ms/token; roofline ${rooflineMs.toFixed(3)} ms -> ${((100 * rooflineMs) / decode1).toFixed(1)}%; ctx 2000: ${decode1Long.toFixed(3)} ms`);

if (!quick) {
  const dec: Record<number, { ms: number; tok_s: number }> = {};
  for (const B of [1, 8, 32, 64, 128, 256]) {
    const ms = timeSteps(engine, batchOf(B, 1, 512, bs), 10);
    dec[B] = { ms, tok_s: (B / ms) * 1e3 };
  }
  results.decode_batch_ctx512 = dec;

  const T = 2048;
  const prefillMs = timeSteps(engine, batchOf(1, T, 0, bs), 5, 1);
  const H = 4096, I = 11008, L = 32, V = 32000;
  const linFlops = 2 * T * L * (H * 3 * H + H * H + 3 * H * I) + 2 * V * H;
  const attnFlops = L * 4 * 32 * 128 * (T * (T + 1)) / 2;
  const tflops = (linFlops + attnFlops) / (prefillMs * 1e-3) / 1e12;
  results.prefill_2048 = { ms: prefillMs, tflops, pct_of_gemm_ceiling: ceil.gemm_bf16_8192_tflops ? (100 * tflops) / ceil.gemm_bf16_8192_tflops : null };
  console.log(`prefill 2048: ${prefillMs.toFixed(2)} ms, ${tflops.toFixed(1)} TFLOP/s (${ceil.gemm_bf16_8192_tflops} TFLOP/s GEMM ceiling)`);

  const sweep: { tokens: number; seqs: number; ms: number; tok_s: number }[] = [];
  for (const tokens of [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]) {
    const seqs = Math.max(1, tokens / 512), chunk = tokens / seqs;
    const ms = timeSteps(engine, batchOf(seqs, chunk, 512, bs), tokens >= 1024 ? 3 : 6, 1);
    sweep.push({ tokens, seqs, ms, tok_s: (tokens / ms) * 1e3 });
  }
  results.tokens_per_pass = sweep;

  // Paged attention alone on the prefill shape (1 x 32 heads x 2048 x 128, causal), through the
  // test hook with FASTGEN_ATTN_TIMING set by the caller.
  const timing = process.env.FASTGEN_ATTN_TIMING;
  if (timing) {
    const Ta = 2048, nb = Ta / 16;
    const blocks = batchOf(1, Ta, 0, 16);
    const q = new Float32Array(Ta * 32 * 128).map(() => Math.random() - 0.5);
    const kc = new Float32Array(nb * 16 * 32 * 128).map(() => Math.random() - 0.5);
    pagedAttention("cuda", blocks, q, kc, kc, { numHeads: 32, numKvHeads: 32, headDim: 128, blockSize: 16, numBlocks: nb, window: 0 });
    const lines = readFileSync(timing, "utf8").trim().split("\n");
    const ms = Number(lines[lines.length - 1]);
    const flops = 4 * 32 * 128 * (Ta * (Ta + 1)) / 2;
    results.attention_prefill_2048 = { ms, tflops: flops / (ms * 1e-3) / 1e12, sdpa_flash_ms: ceil.sdpa_flash_causal_1x32x2048x128_ms };
  }
}
engine.destroy();
if (sharedBlocks.length > 0) results.shared_blocks = sharedBlocks;
if (quick) {
  console.log(`[${label}] decode b=1: ${JSON.stringify(results.decode_b1)}`);
  process.exit(0);
}

mkdirSync(outDir, { recursive: true });
const base = join(outDir, `cuda-llama7b-${label}`);
writeFileSync(`${base}.json`, JSON.stringify(results, null, 1));
const d = results.decode_b1 as { ctx128_ms: number; roofline_ms: number; pct_of_roofline_ctx128: number; ctx2000_ms: number };
const rows = [
  `# CUDA backend, Llama-2-7B shape, random bf16 weights (${label})`,
  ``,
  `GPU ${ceil.gpu}; ${results.date}; \`${results.command}\``,
  `ceilings (same run): copy ${ceil.copy_bw_GBps} GB/s, bf16 GEMM 8192^3 ${ceil.gemm_bf16_8192_tflops} TFLOP/s`,
  ``,
  `| figure | value |`, `| --- | --- |`,
  `| decode b=1, ctx 128 | ${d.ctx128_ms.toFixed(3)} ms/token (${d.pct_of_roofline_ctx128.toFixed(1)}% of ${d.roofline_ms.toFixed(3)} ms roofline) |`,
  `| decode b=1, ctx 2000 | ${d.ctx2000_ms.toFixed(3)} ms/token |`,
];
if (results.prefill_2048) {
  const p = results.prefill_2048 as { ms: number; tflops: number; pct_of_gemm_ceiling: number };
  rows.push(`| prefill 2048 tokens | ${p.ms.toFixed(2)} ms, ${p.tflops.toFixed(1)} TFLOP/s (${p.pct_of_gemm_ceiling?.toFixed(1)}% of GEMM ceiling) |`);
  for (const [B, v] of Object.entries(results.decode_batch_ctx512 as Record<string, { ms: number; tok_s: number }>))
    rows.push(`| decode batch ${B}, ctx 512 | ${v.ms.toFixed(2)} ms/step, ${v.tok_s.toFixed(0)} tok/s |`);
  for (const s of results.tokens_per_pass as { tokens: number; ms: number; tok_s: number }[])
    rows.push(`| ${s.tokens} tokens/pass (ctx 512) | ${s.ms.toFixed(2)} ms, ${s.tok_s.toFixed(0)} tok/s |`);
  if (results.attention_prefill_2048) {
    const a = results.attention_prefill_2048 as { ms: number; tflops: number; sdpa_flash_ms: number };
    rows.push(`| paged attention 1x32x2048x128 causal | ${a.ms.toFixed(3)} ms (${a.tflops.toFixed(1)} TFLOP/s) vs torch SDPA flash ${a.sdpa_flash_ms} ms |`);
  }
}
if (sharedBlocks.length > 0) rows.push(``, `Block ids wrapped around the KV pool (same bytes read, shared blocks): ${sharedBlocks.join("; ")}.`);
writeFileSync(`${base}.md`, rows.join("\n") + "\n");
console.log(rows.join("\n"));
