/**
 * The latent attention kernel alone (cuda/attention_mla.cu, through the fg_mla_attention hook) on
 * DeepSeek-V2-Lite's widths: 16 heads, rows of latent 512 + rope 64, blocks of 64.
 *   decode:  B sequences x 1 query over C cached rows; FLOPs = 2 B C heads (D + latent),
 *            bytes = the rows read once (B C D 2) against the copy bandwidth (ceilings.py)
 *   prefill: one sequence of T tokens, causal: FLOPs = 2 heads (D + latent) T (T + 1) / 2
 * Plain fp32 math (no tensor cores): the roofline is the fp32 FMA rate, not HBM, except for
 * decode at few heads per byte. Writes <out-dir>/cuda-mla-attention.json and prints a table.
 *   FASTGEN_ATTN_TIMING=/tmp/mla_ms.txt bash .gpu/enter bun bench/gpu/mla.ts <ceilings.json> <out-dir>
 * (bench/gpu/run_mla.sh runs it.) Host cost: the hook stages fp32 inputs as bf16, single-threaded.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mlaAttention, type MlaAttentionShape } from "../../src/native";
import { makeBatch, type SeqChunk } from "../../test/native/helpers";

const [ceilPath, outDir] = process.argv.slice(2);
const timingPath = process.env.FASTGEN_ATTN_TIMING;
if (!timingPath || !outDir) throw new Error("usage: FASTGEN_ATTN_TIMING=<file> bun bench/gpu/mla.ts <ceilings.json> <out-dir>");
const ceil = ceilPath && existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
const HEADS = 16, LATENT = 512, ROPE = 64, D = LATENT + ROPE, BS = 64;

interface Row { kind: string; B: number; C: number; ms: number; tflops: number; gbps: number }

/** Median ms of 20 launches (the hook appends it to timingPath). */
function time(chunks: SeqChunk[], numBlocks: number): number {
  rmSync(timingPath!, { force: true });
  const batch = makeBatch(chunks);
  const T = batch.tokenIds.length;
  const q = new Float32Array(T * HEADS * D).map((_, i) => ((i * 7919) % 255) / 255 - 0.5);
  const cache = new Float32Array(numBlocks * BS * D).map((_, i) => ((i * 104729) % 251) / 251 - 0.5);
  const shape: MlaAttentionShape = { numHeads: HEADS, latent: LATENT, rope: ROPE, blockSize: BS, numBlocks, window: 0, scale: 1 / Math.sqrt(192) };
  mlaAttention("cuda", batch, q, cache, shape);
  return Number(readFileSync(timingPath!, "utf8").trim().split("\n").pop());
}

const rows: Row[] = [];
for (const [B, C] of [[1, 1024], [1, 4096], [1, 16384], [8, 4096], [32, 1024], [32, 4096]] as const) {
  const per = Math.ceil(C / BS);
  const chunks = Array.from({ length: B }, (_, s) => ({ tokens: [1], context: C - 1, blocks: Array.from({ length: per }, (_, i) => s * per + i) }));
  const ms = time(chunks, B * per);
  const flops = 2 * B * C * HEADS * (D + LATENT), bytes = B * C * D * 2;
  rows.push({ kind: "decode", B, C, ms, tflops: flops / ms / 1e9, gbps: bytes / ms / 1e6 });
}
for (const T of [512, 2048]) {
  const ms = time([{ tokens: Array(T).fill(1), context: 0, blocks: Array.from({ length: T / BS }, (_, i) => i) }], T / BS);
  const flops = 2 * HEADS * (D + LATENT) * (T * (T + 1)) / 2;
  rows.push({ kind: "prefill", B: 1, C: T, ms, tflops: flops / ms / 1e9, gbps: (T * D * 2) / ms / 1e6 });
}
const copy = ceil.copy_bw_GBps as number | undefined;
console.log("| shape | ms | TFLOP/s (fp32 FMA) | cache GB/s" + (copy ? " | % copy bw |" : " |"));
console.log("| --- | --- | --- | ---" + (copy ? " | --- |" : " |"));
for (const r of rows) {
  const name = r.kind === "decode" ? `decode B=${r.B} C=${r.C}` : `prefill T=${r.C}`;
  console.log(`| ${name} | ${r.ms.toFixed(4)} | ${r.tflops.toFixed(2)} | ${r.gbps.toFixed(0)}` + (copy ? ` | ${((100 * r.gbps) / copy).toFixed(1)} |` : " |"));
}
writeFileSync(join(outDir, "cuda-mla-attention.json"), JSON.stringify({ heads: HEADS, latent: LATENT, rope: ROPE, block: BS, copy_bw_GBps: copy ?? null, rows }, null, 1));
