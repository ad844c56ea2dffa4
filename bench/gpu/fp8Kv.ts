/**
 * The FP8 KV cache on CUDA (issue #18 item 3) against bf16 KV, on the same GPU in one process:
 *   kernel   decode attention alone (the fg_paged_attention(_fp8) hook, FASTGEN_ATTN_TIMING: the
 *            median of 20 launches), GQA 32 q / 8 kv heads x 128, B sequences x 1 query over C
 *            cached keys: ms and GB/s of K/V read (bf16 2 bytes, FP8 1 byte a value), vs the copy
 *            bandwidth (ceilings.py, same run). Shapes whose K/V exceed L2 (50 MB) several times
 *            over: 8 x 4096, 32 x 4096, 64 x 2048.
 *   engine   the Llama-2-7B shape (32 layers, 32 KV heads x 128; random bf16 weights made here,
 *            bench/gpu/randomModel.ts), a bf16-KV engine then an FP8-KV one at the default
 *            memory fraction: KV blocks each pool holds; decode ms per step, ms per token and
 *            tokens/s at batch 1 and 32 at context 4096 and batch 64 at 2048, against the roofline
 *            (weights + every sequence's K/V) / copy bandwidth; prefill of 2048 tokens (the wide
 *            tiles reading FP8). A pool too small for a batch's contexts (bf16 at 32 x 4096) wraps
 *            block ids around (timing only: the bytes read per step are the same).
 *
 *   FASTGEN_ATTN_TIMING=/tmp/attn_ms.txt bun bench/gpu/fp8Kv.ts <ceilings.json> <out-dir>
 *   bun bench/gpu/fp8Kv.ts --smoke      (CPU backend, a 2-layer 256-wide model, tiny shapes: the script's paths only)
 * A/B of FASTGEN_ATTN_FP8_DIRECT (the register-direct FP8 decode kernel; its value is in every
 * label and in the file name, -direct<0|1>): --engine fp8 (engines of these KV dtypes only),
 * --decode 32x4096 (these decode shapes only, no prefill), --kernel-only (no engine).
 * Writes <out-dir>/cuda-fp8kv-llama7b.{json,md} and prints the table. Steps are timed on the host
 * around fg_step (it waits for the sampled tokens), as llama7b.ts and fp8.ts do.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeEngine, pagedAttention, type AttentionShape, type Backend, type KvConfig } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";
import { batchOf, loadRandom, shapeSpec, timeSteps } from "./randomModel";

const args = process.argv.slice(2);
const smoke = args.includes("--smoke"), kernelOnly = args.includes("--kernel-only");
const flag = (name: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : undefined; };
const [ceilPath, outDir = "bench/results"] = args.filter((a, i) => !a.startsWith("--") && !["--engine", "--decode"].includes(args[i - 1] ?? ""));
const direct = process.env.FASTGEN_ATTN_FP8_DIRECT === "1" ? 1 : 0;  // the knob as libfastgen reads it (default 0)
const knobLabel = `FP8_DIRECT=${direct}`;
const backend: Backend = smoke ? "cpu" : "cuda";
const ceil = ceilPath && existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
const bw = ceil.copy_bw_GBps ? ceil.copy_bw_GBps * 1e9 : NaN;
const timingPath = process.env.FASTGEN_ATTN_TIMING;
if (!smoke && !timingPath) throw new Error("usage: FASTGEN_ATTN_TIMING=<file> bun bench/gpu/fp8Kv.ts <ceilings.json> <out-dir> (or --smoke)");

const DTYPES = ["bf16", "fp8"] as const;
type Dtype = (typeof DTYPES)[number];
const engineDtypes: Dtype[] = kernelOnly ? [] : flag("--engine") ? (flag("--engine")!.split(",") as Dtype[]) : [...DTYPES];
const elemBytes = (d: Dtype) => (d === "fp8" ? 1 : 2);

// ---- kernel: decode attention alone ----------------------------------------------------------

const HD = 128, BS = 16, KV_HEADS = 8;
const KERNEL_SHAPES: [number, number][] = smoke ? [[2, 64]] : [[8, 4096], [32, 4096], [64, 2048]];

/** Random values in [-1, 1), a prime-length pattern tiled (the hook takes fp32 host caches). */
function pattern(n: number): Float32Array {
  const a = new Float32Array(n), n0 = Math.min(n, 65521);
  let x = (Math.random() * 2 ** 32) | 0 || 1;
  for (let i = 0; i < n0; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    a[i] = (x >>> 0) / 2 ** 31 - 1;
  }
  for (let len = n0; len < n; len *= 2) a.set(a.subarray(0, Math.min(len, n - len)), len);
  return a;
}
const timingLines = () => (timingPath && existsSync(timingPath) ? readFileSync(timingPath, "utf8").trim().split("\n").filter(Boolean) : []);

interface KernelRow { B: number; C: number; dtype: Dtype; kv_bytes: number; ms: number | null; gbps: number | null; pct_copy_bw: number | null }

function kernelRows(): KernelRow[] {
  const rows: KernelRow[] = [];
  const spec = shapeSpec("7b");
  const pool = pattern(Math.max(...KERNEL_SHAPES.map(([B, C]) => B * Math.ceil(C / BS) * BS * KV_HEADS * HD)));
  for (const [B, C] of KERNEL_SHAPES) {
    const batch = batchOf(spec, B, 1, C - 1, BS);  // the query at position C - 1 over C keys
    const base: AttentionShape = { numHeads: 32, numKvHeads: KV_HEADS, headDim: HD, blockSize: BS, numBlocks: batch.blockIndptr[B]!, window: 0, splits: 0 };
    for (const dtype of DTYPES) {
      const kvBytes = B * C * KV_HEADS * HD * 2 * elemBytes(dtype);
      const shape = dtype === "fp8" ? { ...base, kvFp8: { kScale: 1, vScale: 1 } } : base;
      const before = timingLines().length;
      const t0 = performance.now();
      let ms: number | null = null;
      try {
        const out = pagedAttention(backend, batch, pool, pool, pool, shape);
        if (out.some((v) => !Number.isFinite(v))) throw new Error("non-finite output");
        const lines = timingLines();
        ms = smoke ? performance.now() - t0 : lines.length === before + 1 ? Number(lines[lines.length - 1]) : null;
      } catch (e) {
        console.log(`kernel ${dtype} ${B}x${C}: FAILED ${String(e).split("\n")[0]}`);
      }
      const gbps = ms ? kvBytes / (ms * 1e-3) / 1e9 : null;
      rows.push({ B, C, dtype, kv_bytes: kvBytes, ms, gbps, pct_copy_bw: gbps && bw ? (100 * gbps * 1e9) / bw : null });
      console.log(`kernel decode attention ${dtype} ${B}x${C} [${knobLabel}]: ${ms?.toFixed(4) ?? "-"} ms, ${gbps?.toFixed(0) ?? "-"} GB/s of K/V` +
        (gbps && bw ? ` (${((100 * gbps * 1e9) / bw).toFixed(0)}% of copy)` : ""));
    }
  }
  return rows;
}

// ---- engine: the 7B shape --------------------------------------------------------------------

const spec: ModelSpec = smoke
  ? { ...shapeSpec("7b", 2), hidden_size: 256, intermediate_size: 512, num_heads: 2, num_kv_heads: 2, vocab_size: 1000 }
  : shapeSpec("7b");
const DECODES: [number, number][] = flag("--decode")
  ? flag("--decode")!.split(",").map((x) => x.split("x").map(Number) as [number, number])
  : smoke ? [[1, 256], [4, 128]] : [[1, 4096], [32, 4096], [64, 2048]];
const doPrefill = !flag("--decode");
const PREFILL = smoke ? 64 : 2048;

interface DecodeRow { batch: number; ctx: number; ms: number; ms_per_token: number; tok_s: number; roofline_ms: number; pct_roofline: number; wrapped: boolean }
interface EngineFigures { dtype: Dtype; blocks: number; block_size: number; kv_gib: number; weight_gib: number; decode: DecodeRow[]; prefill_ms: number }

function engineFigures(dtype: Dtype): EngineFigures {
  const e = NativeEngine.create(spec, backend);
  try {
    const weightBytes = loadRandom(e, spec);  // the matrices a decode step streams
    const kv: KvConfig = smoke ? { numBlocks: 64, kvCacheDtype: dtype === "fp8" ? "fp8" : "auto" } : { kvCacheDtype: dtype === "fp8" ? "fp8" : "auto" };
    const info = e.finalize(kv);
    const bs = info.blockSize, pool = info.numBlocks;
    const kvPerPos = spec.num_layers * 2 * spec.num_kv_heads! * spec.head_dim! * elemBytes(dtype);
    const decode: DecodeRow[] = DECODES.map(([B, ctx]) => {
      const wrapped = B * Math.ceil((ctx + 1) / bs) > pool;
      const ms = timeSteps(e, batchOf(spec, B, 1, ctx, bs, { poolBlocks: pool }), smoke ? 2 : 10, smoke ? 1 : 3);
      const roofline = ((weightBytes + B * (ctx + 1) * kvPerPos) / bw) * 1e3;
      const row = { batch: B, ctx, ms, ms_per_token: ms / B, tok_s: (B / ms) * 1e3, roofline_ms: roofline, pct_roofline: (100 * roofline) / ms, wrapped };
      console.log(`[${dtype} KV, ${knobLabel}] decode batch ${B} ctx ${ctx}: ${ms.toFixed(3)} ms (${row.tok_s.toFixed(0)} tok/s; ${row.pct_roofline.toFixed(1)}% of the ` +
        `${roofline.toFixed(3)} ms roofline)${wrapped ? " [block ids wrapped]" : ""}`);
      return row;
    });
    const prefill_ms = doPrefill ? timeSteps(e, batchOf(spec, 1, PREFILL, 0, bs, { poolBlocks: pool }), smoke ? 1 : 5, 1) : NaN;
    console.log(`[${dtype} KV, ${knobLabel}] ${pool} blocks of ${bs} (${(info.kvBytes / 2 ** 30).toFixed(2)} GiB); prefill ${PREFILL}: ${prefill_ms.toFixed(2)} ms`);
    return { dtype, blocks: pool, block_size: bs, kv_gib: info.kvBytes / 2 ** 30, weight_gib: info.weightBytes / 2 ** 30, decode, prefill_ms };
  } finally {
    e.destroy();
  }
}

const t0 = performance.now();
const kernel = kernelRows();
const figs = Object.fromEntries(engineDtypes.map((d) => [d, engineFigures(d)])) as Partial<Record<Dtype, EngineFigures>>;
const bf = figs.bf16, f8 = figs.fp8;
const results = {
  gpu: ceil.gpu ?? (smoke ? "cpu smoke" : "unknown GPU"), date: new Date().toISOString(),
  command: `FASTGEN_ATTN_FP8_DIRECT=${direct} FASTGEN_ATTN_TIMING=${timingPath ?? "(unset)"} bun bench/gpu/fp8Kv.ts ${args.join(" ")}`,
  attn_fp8_direct: direct, copy_bw_GBps: ceil.copy_bw_GBps ?? null, kernel, engine: figs,
  blocks_ratio: f8 && bf ? f8.blocks / bf.blocks : null, seconds: (performance.now() - t0) / 1e3,
};
mkdirSync(outDir, { recursive: true });
const partial = kernelOnly || flag("--engine") || flag("--decode");  // A/B runs: the knob in the name
const base = join(outDir, `cuda-fp8kv-llama7b${partial ? `${kernelOnly ? "-kernel" : ""}-direct${direct}` : ""}${smoke ? "-smoke" : ""}`);
writeFileSync(`${base}.json`, JSON.stringify(results, null, 1));
const k = (B: number, C: number, d: Dtype) => kernel.find((r) => r.B === B && r.C === C && r.dtype === d)!;
const cell = (r: KernelRow) => (r.ms == null ? "failed" : `${r.ms.toFixed(4)} ms, ${r.gbps!.toFixed(0)} GB/s${r.pct_copy_bw ? ` (${r.pct_copy_bw.toFixed(0)}%)` : ""}`);
const lines = [
  `# FP8 vs bf16 KV cache, CUDA, Llama-2-7B shape (random weights)`,
  ``,
  `GPU ${results.gpu}; ${results.date}; \`${results.command}\`; copy bandwidth (ceilings.py, same run) ${results.copy_bw_GBps ?? "?"} GB/s`,
  ``,
  ...(bf && f8
    ? [`KV pool at the default memory fraction: bf16 ${bf.blocks} blocks of ${bf.block_size} (${bf.kv_gib.toFixed(2)} GiB), ` +
      `FP8 ${f8.blocks} blocks (${f8.kv_gib.toFixed(2)} GiB): ${results.blocks_ratio!.toFixed(3)}x the blocks, ${(f8.blocks * f8.block_size).toLocaleString()} tokens.`, ``]
    : []),
  `Decode attention alone (GQA 32/8 x 128, FASTGEN_ATTN_FP8_DIRECT=${direct}; GB/s of K/V read, % of copy bandwidth):`,
  ``,
  `| B x C | bf16 KV | FP8 KV | speedup |`, `| --- | --- | --- | --- |`,
  ...KERNEL_SHAPES.map(([B, C]) => {
    const a = k(B, C, "bf16"), b = k(B, C, "fp8");
    return `| ${B} x ${C} | ${cell(a)} | ${cell(b)} | ${a.ms && b.ms ? (a.ms / b.ms).toFixed(2) + "x" : "-"} |`;
  }),
  ``,
  ...(engineDtypes.length ? [`Engine decode (ms a step; ms a token; tokens/s; % of the (weights + K/V) / copy-bandwidth roofline):`, ``] : []),
  ...engineTable(),
];

function engineTable(): string[] {
  const c = (r?: DecodeRow) => (r ? `${r.ms.toFixed(2)} ms; ${r.ms_per_token.toFixed(3)} ms/tok; ${r.tok_s.toFixed(0)} tok/s; ${r.pct_roofline.toFixed(0)}%${r.wrapped ? " (wrapped)" : ""}` : "-");
  if (!engineDtypes.length) return [];
  const rows = DECODES.map(([B, C], i) => {
    const a = bf?.decode[i], b = f8?.decode[i];
    return `| ${B} x ${C} | ${c(a)} | ${c(b)} | ${a && b ? (a.ms / b.ms).toFixed(2) + "x" : "-"} |`;
  });
  if (doPrefill) rows.push(`| prefill ${PREFILL} | ${bf?.prefill_ms.toFixed(2) ?? "-"} ms | ${f8?.prefill_ms.toFixed(2) ?? "-"} ms | ${bf && f8 ? (bf.prefill_ms / f8.prefill_ms).toFixed(2) + "x" : "-"} |`);
  return [`| batch x ctx | bf16 KV | FP8 KV | speedup |`, `| --- | --- | --- | --- |`, ...rows];
}
writeFileSync(`${base}.md`, lines.join("\n") + "\n");
console.log(lines.join("\n"));
