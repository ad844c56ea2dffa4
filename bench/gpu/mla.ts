/**
 * The latent attention kernels alone (through the fg_mla_attention hook) on DeepSeek-V2-Lite's
 * widths: 16 heads, rows of latent 512 + rope 64, blocks of 64; the fp32 kernel
 * (cuda/attention_mla.cu, FASTGEN_MLA_KERNEL=fma) against the tensor-core one
 * (cuda/attention_mla_mma.cu, =mma), each in a child process (libfastgen reads its knobs once).
 *   decode:  B sequences x 1 query over C cached rows; FLOPs = 2 B C heads (D + latent),
 *            bytes = the rows read once (B C D, x2 for bf16) against the copy bandwidth (ceilings.py)
 *   prefill: one sequence of T tokens, causal: FLOPs = 2 heads (D + latent) T (T + 1) / 2
 * Decode is bound by HBM (GB/s, % of copy bandwidth is the figure), prefill by math (TFLOP/s:
 * fp32 FMA for fma, bf16 mma.sync for mma). Rows marked fp8 read an E4M3 cache (kv_fp8).
 * Writes <out-dir>/cuda-mla-attention.json (every kernel's rows) and prints one table.
 *   FASTGEN_ATTN_TIMING=/tmp/mla_ms.txt bash .gpu/enter bun bench/gpu/mla.ts <ceilings.json> <out-dir> [--kernels fma,mma,mma16,mma64]
 * (bench/gpu/run_mla.sh and run-wave.sh's mlabench run it.) Host cost: the hook stages fp32
 * inputs as bf16, single-threaded.
 */
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mlaAttention, type MlaAttentionShape } from "../../src/native";
import { makeBatch, type SeqChunk } from "../../test/native/helpers";

const args = process.argv.slice(2);
const [ceilPath, outDir] = args;
const flag = (name: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : undefined);
const timingBase = process.env.FASTGEN_ATTN_TIMING;
if (!timingBase || !outDir) throw new Error("usage: FASTGEN_ATTN_TIMING=<file> bun bench/gpu/mla.ts <ceilings.json> <out-dir> [--kernels fma,mma]");
const ceil = ceilPath && existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
const HEADS = 16, LATENT = 512, ROPE = 64, D = LATENT + ROPE, BS = 64;

interface Row { kind: string; B: number; C: number; fp8: boolean; ms: number; tflops: number; gbps: number }
const rowName = (r: Row) => (r.kind === "decode" ? `decode B=${r.B} C=${r.C}` : `prefill T=${r.C}`) + (r.fp8 ? " fp8" : "");

/** Median ms of 20 launches (the hook appends it to the timing file). */
function time(chunks: SeqChunk[], numBlocks: number, fp8: boolean): number {
  const timingPath = process.env.FASTGEN_ATTN_TIMING!;
  rmSync(timingPath, { force: true });
  const batch = makeBatch(chunks);
  const T = batch.tokenIds.length;
  const q = new Float32Array(T * HEADS * D).map((_, i) => ((i * 7919) % 255) / 255 - 0.5);
  const cache = new Float32Array(numBlocks * BS * D).map((_, i) => ((i * 104729) % 251) / 251 - 0.5);
  const shape: MlaAttentionShape = {
    numHeads: HEADS, latent: LATENT, rope: ROPE, blockSize: BS, numBlocks, window: 0, scale: 1 / Math.sqrt(192),
    ...(fp8 ? { kvFp8: { kvScale: 1 / 256 } } : {}),
  };
  mlaAttention("cuda", batch, q, cache, shape);
  return Number(readFileSync(timingPath, "utf8").trim().split("\n").pop());
}

/** One kernel's rows (run in the child, whose FASTGEN_MLA_KERNEL picks the kernel). */
function measure(): Row[] {
  const rows: Row[] = [];
  const decode = (B: number, C: number, fp8 = false) => {
    const per = Math.ceil(C / BS);
    const chunks = Array.from({ length: B }, (_, s) => ({ tokens: [1], context: C - 1, blocks: Array.from({ length: per }, (_, i) => s * per + i) }));
    const ms = time(chunks, B * per, fp8);
    const flops = 2 * B * C * HEADS * (D + LATENT), bytes = B * C * D * (fp8 ? 1 : 2);
    rows.push({ kind: "decode", B, C, fp8, ms, tflops: flops / ms / 1e9, gbps: bytes / ms / 1e6 });
  };
  const prefill = (T: number, fp8 = false) => {
    const ms = time([{ tokens: Array(T).fill(1), context: 0, blocks: Array.from({ length: T / BS }, (_, i) => i) }], T / BS, fp8);
    const flops = 2 * HEADS * (D + LATENT) * (T * (T + 1)) / 2;
    rows.push({ kind: "prefill", B: 1, C: T, fp8, ms, tflops: flops / ms / 1e9, gbps: (T * D * (fp8 ? 1 : 2)) / ms / 1e6 });
  };
  for (const [B, C] of [[1, 1024], [1, 4096], [1, 16384], [8, 4096], [32, 1024], [32, 4096]] as const) decode(B, C);
  for (const T of [512, 2048]) prefill(T);
  decode(32, 4096, true);
  prefill(2048, true);
  return rows;
}

const kernel = flag("--kernel");
if (kernel) {  // child: this process's kernel, rows to stdout's last line
  console.log(JSON.stringify(measure()));
} else {
  const kernels = (flag("--kernels") ?? "fma,mma").split(",");
  const results: Record<string, Row[]> = {};
  for (const k of kernels) {
    const r = Bun.spawnSync([process.execPath, import.meta.path, ceilPath ?? "", outDir, "--kernel", k], {
      env: { ...process.env, FASTGEN_MLA_KERNEL: k, FASTGEN_ATTN_TIMING: `${timingBase}.${k}` }, stdout: "pipe", stderr: "pipe",
    });
    const out = r.stdout.toString().trim();
    if (r.exitCode !== 0) {
      console.log(`${k}: failed (exit ${r.exitCode})\n${r.stderr.toString().slice(-2000)}`);
      continue;
    }
    results[k] = JSON.parse(out.split("\n").pop()!) as Row[];
  }
  const copy = ceil.copy_bw_GBps as number | undefined;
  const ran = kernels.filter((k) => results[k]);
  const base = ran[0], cmp = ran.slice(1);
  const cell = (r: Row | undefined) => (r ? `${r.ms.toFixed(4)} ms, ${r.tflops.toFixed(1)} TF/s, ${r.gbps.toFixed(0)} GB/s` +
    (copy && r.kind === "decode" ? ` (${((100 * r.gbps) / copy).toFixed(0)}%)` : "") : "-");
  console.log(`| shape | ${ran.join(" | ")}${cmp.map((k) => ` | ${base}/${k}`).join("")} |`);
  console.log(`| --- |${ran.map(() => " --- |").join("")}${cmp.map(() => " --- |").join("")}`);
  if (base) for (let i = 0; i < results[base]!.length; i++) {
    const r0 = results[base]![i]!;
    const ratios = cmp.map((k) => { const r = results[k]![i]; return r ? ` | ${(r0.ms / r.ms).toFixed(2)}x` : " | -"; }).join("");
    console.log(`| ${rowName(r0)} | ${ran.map((k) => cell(results[k]![i])).join(" | ")}${ratios} |`);
  }
  writeFileSync(join(outDir, "cuda-mla-attention.json"),
    JSON.stringify({ heads: HEADS, latent: LATENT, rope: ROPE, block: BS, copy_bw_GBps: copy ?? null, kernels: results }, null, 1));
}
