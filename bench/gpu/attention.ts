/**
 * Our paged flash attention (libfastgen CUDA, through the pagedAttention test hook) against torch
 * SDPA flash on the same GPU (bench/gpu/sdpa_attention.py), on the CUDA issue's shapes:
 *   prefill: 1 sequence, causal, 32 heads x 128 (Llama-2-7B MHA), T = 2048..16384;
 *            FLOPs = 4 * heads * hd * T(T+1)/2; target ours >= 0.8x SDPA throughput (the
 *            mma.sync kernel), >= 1.5x for the Hopper kernel (issue 24)
 *            --fa3-shapes adds GQA 32 q / 8 kv heads at each T and 512-token chunks at context
 *            2048 and 8192 (MHA and GQA; FLOPs 4 * heads * hd * (T * context + T(T+1)/2));
 *            --kernels mma,hopper,hopper-serial times each of those kernels on every prefill
 *            shape (the hook's kernel choice; default: auto, what the engine runs)
 *   decode:  B sequences x 1 query at position C-1 over C cached keys (context_lens = C-1; the
 *            query's own K/V sits at slot C-1), 32 q / 8 kv heads x 128, each sequence its own
 *            blocks of 16; bytes = K+V bf16 (B*C*8*128*2*2) + q + out;
 *            target ours >= 70% of the device copy bandwidth (ceilings.py copy_bw_GBps)
 * Writes <out-dir>/cuda-attention.{json,md} (table: attention_report.ts) and prints the table.
 *
 * One device call (carry [".gpu", ".gpu-lib"], see README.md; about a minute or two):
 *   OUT=${OUT:-/tmp/out}; mkdir -p $OUT
 *   [ -f .gpu-lib/libfastgen.so ] && export FASTGEN_LIB=$PWD/.gpu-lib/libfastgen.so
 *   python3 bench/gpu/ceilings.py $OUT/ceil.json > $OUT/ceil.log 2>&1
 *   python3 bench/gpu/sdpa_attention.py $OUT/sdpa.json > $OUT/sdpa.log 2>&1
 *   rm -f /tmp/attn_ms.txt
 *   FASTGEN_ATTN_TIMING=/tmp/attn_ms.txt timeout 200 bash .gpu/enter bun bench/gpu/attention.ts $OUT/ceil.json $OUT/sdpa.json $OUT
 * --prefill-only: the prefill shapes alone (A/B runs, e.g. FASTGEN_ATTN_BM=64, or --kernels); --decode-only the
 * decode shapes alone, --few-seqs only their batches 1, 8, 32 (e.g. FASTGEN_ATTN_SPLITS=n).
 * Smoke test without a GPU (CPU backend, tiny shapes, each checked against a JS reference):
 *   bun bench/gpu/attention.ts --cpu --tiny [<ceil.json> <sdpa.json> <out-dir>]
 *
 * Host cost: the hook takes fp32 caches [num_blocks, 16, kv_heads, 128] and stages them as bf16
 * itself (single-threaded). One Float32Array of bf16-exact values, a random pattern tiled, serves
 * as q, K and V of every shape. A Bun typed array holds at most 2^30 floats (4 GiB), so a shape
 * may have B*C <= 2^20 tokens: 256 x 8192 is skipped and 256 x 4096 runs in its place.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pagedAttention, type AttentionKernel, type AttentionShape, type StepBatch } from "../../src/native";
import { renderReport, type AttentionResults, type DecodeRow, type PrefillRow } from "./attention_report";
import { batchOf, shapeSpec } from "./randomModel";

const args = process.argv.slice(2);
const [ceilPath, sdpaPath, outDir] = args.filter((a) => !a.startsWith("--"));
const backend = args.includes("--cpu") ? "cpu" : "cuda";
const tiny = args.includes("--tiny");
const prefillOnly = args.includes("--prefill-only");  // A/B runs of the prefill path
const decodeOnly = args.includes("--decode-only");    // A/B runs of the decode path (key splits)
const fewSeqs = args.includes("--few-seqs");          // decode batches 1, 8, 32 only (split-KV territory)
const fa3Shapes = args.includes("--fa3-shapes");      // + GQA prefill and chunks at context offsets
const kernelsArg = args.find((a) => a.startsWith("--kernels="))?.slice("--kernels=".length);
const KERNELS = (kernelsArg ? kernelsArg.split(",") : ["auto"]) as AttentionKernel[];
const readJson = (p?: string) => (p && existsSync(p) ? JSON.parse(readFileSync(p, "utf8")) : {});
const ceil = readJson(ceilPath), sdpa = readJson(sdpaPath);
const timingPath = process.env.FASTGEN_ATTN_TIMING;
if (backend === "cuda" && (!timingPath || !outDir))
  throw new Error("usage: FASTGEN_ATTN_TIMING=<file> bun bench/gpu/attention.ts <ceilings.json> <sdpa.json> <out-dir> (or --cpu --tiny)");

const BS = 16, HD = 128, BUDGET_S = 150;
// tiny: small enough for the CPU backend and a JS reference; its cap makes 3 x 128 exercise the skip
const MAX_FLOATS = tiny ? 4 * 64 * 1024 : 2 ** 30;
const PREFILL_T = decodeOnly ? [] : tiny ? [48, 64] : [2048, 4096, 8192, 16384];
const DECODE_B = prefillOnly ? [] : tiny ? [1, 3] : fewSeqs ? [1, 8, 32] : [1, 8, 32, 64, 128, 256], DECODE_C = tiny ? [32, 128] : [512, 2048, 8192];
const L2_BYTES = sdpa.l2_bytes ?? 50 * 2 ** 20;
const spec = shapeSpec("7b");

// prefill: T tokens at context `context` (kvHeads 32: MHA), once per kernel; decode: kernel auto
interface Case {
  kind: "prefill" | "decode"; T: number; B: number; C: number; floats: number; kvHeads: number; context: number;
  kernel: AttentionKernel; substituteFor?: string;
}
const prefillCase = (T: number, kvHeads = 32, context = 0, kernel: AttentionKernel = "auto"): Case =>
  ({ kind: "prefill", T, B: 1, C: context + T, floats: Math.max(T * 32, (context + T) * kvHeads) * HD, kvHeads, context, kernel });
const decodeCase = (B: number, C: number): Case =>
  ({ kind: "decode", T: B, B, C, floats: Math.max(B * C * 8 * HD, B * 32 * HD), kvHeads: 8, context: C - 1, kernel: "auto" });
const prefillShapes: [number, number, number][] = PREFILL_T.flatMap((T) => (fa3Shapes ? [[T, 32, 0], [T, 8, 0]] : [[T, 32, 0]]) as [number, number, number][]);
if (fa3Shapes && !decodeOnly) for (const ctx of tiny ? [32] : [2048, 8192]) for (const kvh of [32, 8]) prefillShapes.push([tiny ? 16 : 512, kvh, ctx]);
/** Key of a prefill shape in both JSONs (SDPA rows without kv_heads / context are MHA at 0). */
const shapeKey = (T: number, kvh = 32, ctx = 0) => `${T}/${kvh}/${ctx}`;

const cases: Case[] = prefillShapes.flatMap(([T, kvh, ctx]) => KERNELS.map((k) => prefillCase(T, kvh, ctx, k)));
const skipped: { shape: string; reason: string }[] = [];
const decodeShapes = DECODE_B.flatMap((B) => DECODE_C.map((C) => [B, C] as const));
for (const [B, C] of decodeShapes) {
  const c = decodeCase(B, C);
  if (c.floats <= MAX_FLOATS) { cases.push(c); continue; }
  skipped.push({ shape: `decode ${B}x${C}`, reason: `K/V cache of ${c.floats} fp32 values > ${MAX_FLOATS}, ${tiny ? "the tiny run's cap" : "the most one Bun typed array holds (the hook takes one contiguous host array per cache)"}` });
  let C2 = C;
  while (C2 > BS && decodeCase(B, C2).floats > MAX_FLOATS) C2 = Math.ceil(C2 / 2 / BS) * BS;
  if (decodeCase(B, C2).floats <= MAX_FLOATS && !decodeShapes.some(([b, c]) => b === B && c === C2))
    cases.push({ ...decodeCase(B, C2), substituteFor: `${B}x${C}` });
}
cases.sort((a, b) => (a.kind === b.kind ? a.floats - b.floats || a.T - b.T : a.kind === "prefill" ? -1 : 1));

/** Random values in [-1, 1), already bf16 (the CUDA hook rounds to bf16), a prime-length pattern tiled. */
function bf16Pattern(n: number): Float32Array {
  const a = new Float32Array(n), u = new Uint32Array(a.buffer), n0 = Math.min(n, 65521);
  let x = (Math.random() * 2 ** 32) | 0 || 1;  // fresh inputs each run
  for (let i = 0; i < n0; i++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    a[i] = (x >>> 0) / 2 ** 31 - 1;
    u[i] = (u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) & 0xffff0000;
  }
  for (let len = n0; len < n; len *= 2) a.set(a.subarray(0, Math.min(len, n - len)), len);
  return a;
}

/** out of the token at each position, straight from the definition (positions from context_lens). */
function reference(b: StepBatch, s: AttentionShape, q: Float32Array, kc: Float32Array, vc: Float32Array): Float32Array {
  const { numHeads: nh, numKvHeads: nkv, headDim: hd, blockSize: bs } = s;
  const out = new Float32Array(b.tokenIds.length * nh * hd), scale = 1 / Math.sqrt(hd);
  for (let seq = 0; seq + 1 < b.cuSeqlens.length; seq++)
    for (let t = b.cuSeqlens[seq]!; t < b.cuSeqlens[seq + 1]!; t++) {
      const pos = b.contextLens[seq]! + t - b.cuSeqlens[seq]!;
      const slot = (j: number) => (b.blockIndices[b.blockIndptr[seq]! + Math.floor(j / bs)]! * bs + (j % bs)) * nkv * hd;
      for (let h = 0; h < nh; h++) {
        const kv = Math.floor(h / (nh / nkv)) * hd, qo = (t * nh + h) * hd, p = new Float64Array(pos + 1);
        for (let j = 0; j <= pos; j++) {
          let dot = 0;
          for (let d = 0; d < hd; d++) dot += q[qo + d]! * kc[slot(j) + kv + d]!;
          p[j] = dot * scale;
        }
        const mx = Math.max(...p);
        let sum = 0;
        for (let j = 0; j <= pos; j++) sum += p[j] = Math.exp(p[j]! - mx);
        for (let d = 0; d < hd; d++) {
          let o = 0;
          for (let j = 0; j <= pos; j++) o += p[j]! * vc[slot(j) + kv + d]!;
          out[qo + d] = o / sum;
        }
      }
    }
  return out;
}

const relErr = (a: Float32Array, b: Float32Array) => {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; i++) num += (a[i]! - b[i]!) ** 2, den += b[i]! ** 2;
  return Math.sqrt(num / den);
};
const timingLines = () => (timingPath && existsSync(timingPath) ? readFileSync(timingPath, "utf8").trim().split("\n").filter(Boolean) : []);

const t0 = performance.now();
const pool = bf16Pattern(Math.max(...cases.map((c) => c.floats)));
console.log(`${backend}: ${cases.length} shapes, host pool ${(pool.byteLength / 2 ** 30).toFixed(2)} GiB filled in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
const measured = new Map<Case, { ms: number; finite: boolean; relErr: number | null }>();
// host seconds per float of the largest shape so far (small ones are dominated by fixed costs, CUDA init)
let largest = { floats: 0, s: 0 };
const cpuRefs = new Map<string, Float32Array>();  // per prefill shape, shared by its kernels
for (const c of cases) {
  const name = c.kind === "prefill"
    ? `prefill T=${c.T}${c.kvHeads !== 32 ? ` GQA 32/${c.kvHeads}` : ""}${c.context ? ` at ${c.context}` : ""}${c.kernel !== "auto" ? ` [${c.kernel}]` : ""}`
    : `decode ${c.B}x${c.C}`;
  const elapsed = (performance.now() - t0) / 1e3;
  if (largest.floats && elapsed + (c.floats * largest.s) / largest.floats > BUDGET_S) {
    skipped.push({ shape: name, reason: `time budget (${BUDGET_S} s of host time) would be exceeded` });
    continue;
  }
  // prefill: chunk T at context c.context; decode: B chunks of 1 at context C-1, GQA 4:1
  const batch = c.kind === "prefill" ? batchOf(spec, 1, c.T, c.context, BS) : batchOf(spec, c.B, 1, c.C - 1, BS);
  const shape: AttentionShape = { numHeads: 32, numKvHeads: c.kvHeads, headDim: HD, blockSize: BS, numBlocks: batch.blockIndptr[c.B]!,
    window: 0, splits: 0, kernel: c.kernel };
  const before = timingLines().length;
  const tc = performance.now();
  let out: Float32Array;
  try {  // one failed shape (device memory, a kernel error) must not lose the others
    out = pagedAttention(backend, batch, pool, pool, pool, shape);
  } catch (e) {
    skipped.push({ shape: name, reason: `failed: ${String(e).split("\n")[0]}` });
    console.log(`${name}: FAILED ${e}`);
    continue;
  }
  const wall = performance.now() - tc;
  if (c.floats >= largest.floats) largest = { floats: c.floats, s: wall / 1e3 };
  const lines = timingLines();
  if (backend === "cuda" && lines.length !== before + 1) {
    skipped.push({ shape: name, reason: `no new line in ${timingPath} (FASTGEN_ATTN_TIMING unset in the library's process, or the file not writable)` });
    continue;
  }
  const ms = backend === "cuda" ? Number(lines[lines.length - 1]) : wall;
  const finite = !out.some((v) => !Number.isFinite(v));
  // the CPU backend as a check of ours (cheap shapes); the JS definition as a check of the CPU run
  let err: number | null = null;
  if (tiny) err = relErr(out, reference(batch, shape, pool, pool, pool));
  else if (backend === "cuda" && (c.kind === "decode" ? c.B * c.C <= 16384 : c.T * c.C <= 2048 * 2560)) {
    const key = `${c.kind} ${shapeKey(c.T, c.kvHeads, c.context)} ${c.B}x${c.C}`;
    if (!cpuRefs.has(key)) cpuRefs.set(key, pagedAttention("cpu", batch, pool, pool, pool, shape));
    err = relErr(out, cpuRefs.get(key)!);
  }
  measured.set(c, { ms, finite, relErr: err });
  console.log(`${name}: ${ms.toFixed(4)} ms${finite ? "" : " NaN!"}${err == null ? "" : `, rel err ${err.toExponential(2)} vs ${tiny ? "JS reference" : "CPU backend"}`} (host ${(wall / 1e3).toFixed(1)} s)`);
}

const copyBw: number | null = ceil.copy_bw_GBps ?? null;
const sdpaPrefill = new Map<string, { ms: number; tflops: number }>((sdpa.prefill ?? []).map(
  (r: { T: number; kv_heads?: number; context?: number }) => [shapeKey(r.T, r.kv_heads, r.context), r]));
const sdpaDecode = new Map<string, { ms: number; ms_l2_flushed: number }>((sdpa.decode ?? []).map((r: { B: number; C: number }) => [`${r.B}x${r.C}`, r]));
const ratio = (sdpaMs?: number, ms?: number) => (sdpaMs && ms ? sdpaMs / ms : null);

// report order: whole prompts before chunks, MHA before GQA, by T (the kernels in --kernels order)
const prefillCases = cases.filter((c) => c.kind === "prefill")
  .sort((a, b) => a.context - b.context || b.kvHeads - a.kvHeads || a.T - b.T || KERNELS.indexOf(a.kernel) - KERNELS.indexOf(b.kernel));
const prefill: PrefillRow[] = prefillCases.map((c) => {
  const m = measured.get(c), s = sdpaPrefill.get(shapeKey(c.T, c.kvHeads, c.context));
  const flops = 4 * 32 * HD * (c.T * c.context + (c.T * (c.T + 1)) / 2);
  const mma = prefillCases.find((x) => x.kernel === "mma" && x.T === c.T && x.kvHeads === c.kvHeads && x.context === c.context);
  const mmaMs = mma && measured.get(mma)?.ms;
  return { T: c.T, kv_heads: c.kvHeads, context: c.context, kernel: c.kernel, ms: m?.ms ?? null,
    tflops: m ? flops / (m.ms * 1e-3) / 1e12 : null, sdpa_ms: s?.ms ?? null, sdpa_tflops: s?.tflops ?? null,
    ratio: ratio(s?.ms, m?.ms), vs_mma: mma && mma !== c ? ratio(mmaMs, m?.ms) : null, finite: m?.finite ?? null,
    rel_err_vs_cpu: m?.relErr ?? null };
});
const decodeKeys = [...new Set([...cases.filter((c) => c.kind === "decode").map((c) => `${c.B}x${c.C}`), ...decodeShapes.map(([B, C]) => `${B}x${C}`), ...sdpaDecode.keys()])];
const decode: DecodeRow[] = decodeKeys.map((key) => {
  const [B, C] = key.split("x").map(Number) as [number, number];
  const c = cases.find((x) => x.kind === "decode" && x.B === B && x.C === C);
  const m = c && measured.get(c), s = sdpaDecode.get(key);
  const bytes = B * C * 8 * HD * 2 * 2 + 2 * B * 32 * HD * 2;
  const gbps = (ms?: number) => (ms ? bytes / (ms * 1e-3) / 1e9 : null);
  const pct = (g: number | null) => (g != null && copyBw ? (100 * g) / copyBw : null);
  return { B, C, bytes, l2_resident: B * C * 8 * HD * 2 * 2 <= L2_BYTES, ms: m?.ms ?? null, gbps: gbps(m?.ms), pct_copy_bw: pct(gbps(m?.ms)),
    sdpa_ms: s?.ms ?? null, sdpa_ms_l2_flushed: s?.ms_l2_flushed ?? null, sdpa_gbps: gbps(s?.ms), sdpa_pct_copy_bw: pct(gbps(s?.ms)),
    ratio: ratio(s?.ms, m?.ms), finite: m?.finite ?? null, rel_err_vs_cpu: m?.relErr ?? null, ...(c?.substituteFor ? { substitute_for: c.substituteFor } : {}) };
}).sort((a, b) => a.B - b.B || a.C - b.C);

const results: AttentionResults = {
  backend, gpu: ceil.gpu ?? sdpa.gpu ?? "unknown GPU", date: new Date().toISOString(),
  commands: [
    `python3 bench/gpu/ceilings.py ${ceilPath ?? "-"}`, `python3 bench/gpu/sdpa_attention.py ${sdpaPath ?? "-"}`,
    `FASTGEN_ATTN_TIMING=${timingPath ?? "(unset)"} bun bench/gpu/attention.ts ${args.join(" ")}`,
  ],
  copy_bw_GBps: copyBw,
  sdpa: { gqa_mode: sdpa.gqa_mode, torch: sdpa.torch, timing: sdpa.timing, errors: sdpa.errors, l2_bytes: sdpa.l2_bytes },
  targets: { prefill_ratio: 0.8, prefill_ratio_hopper: 1.5, decode_pct_copy_bw: 70 },
  prefill, decode, skipped, seconds: (performance.now() - t0) / 1e3,
};
const md = renderReport(results);
if (outDir) {
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, "cuda-attention.json"), JSON.stringify(results, null, 1));
  writeFileSync(join(outDir, "cuda-attention.md"), md);
}
console.log(md);
if (tiny && [...measured.values()].some((m) => !m.finite || (m.relErr ?? 0) > 1e-5)) process.exit(1);
