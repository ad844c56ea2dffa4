/**
 * The FP8 decode GEMMs of the Llama-2-7B shape alone (issue #18 / #24), at 1-16 tokens, under this
 * process's FP8 knobs (FASTGEN_FP8_SMALL_MAX_M, FASTGEN_FP8_GEMV_MAX_M:
 * libfastgen reads them once a process, so bench/device/run-fp8ab.sh runs one process per
 * setting), timed through the test hook fg_cuda_fp8_linear_host with FASTGEN_FP8_TIMING set (the
 * median of 20 launches, each after an L2 flush). GB/s = weight bytes (E4M3 + an fp32 scale a
 * row) / time, next to the copy bandwidth ceilings.py measured in the same run.
 *
 *   FASTGEN_FP8_TIMING=/tmp/t.txt bun bench/gpu/fp8Gemv.ts <ceilings.json> <out.json> [--ms 1,2,4,8] [--lt]
 * --ms: the token counts (default 1,2,4,8,16), each on the path the knobs choose (path "auto");
 * --lt: also W8A8 on cuBLASLt forced at every count (the hand-over's other side).
 * gate_up runs as a plain GEMM into bf16 (the hook has no gated form; the engine applies the
 * activation in the same kernel, a few instructions a row pair).
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { cudaFp8Linear, type Fp8Path } from "../../src/native";

const [ceilPath, outPath, ...flags] = process.argv.slice(2);
const timing = process.env.FASTGEN_FP8_TIMING;
if (!outPath || !timing) {
  console.error("usage: FASTGEN_FP8_TIMING=<file> bun bench/gpu/fp8Gemv.ts <ceilings.json> <out.json> [--ms 1,2,4] [--lt]");
  process.exit(2);
}
const flag = (name: string) => { const i = flags.indexOf(name); return i >= 0 ? flags[i + 1] : undefined; };
const TOKENS = (flag("--ms") ?? "1,2,4,8,16").split(",").map(Number);
const withLt = flags.includes("--lt");
const ceil = ceilPath && existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
const bw = ceil.copy_bw_GBps ?? NaN;
const label = ["FASTGEN_FP8_SMALL_MAX_M", "FASTGEN_FP8_GEMV_MAX_M", "FASTGEN_FP8_SMALL_KDEPTH", "FASTGEN_FP8_GEMV_DEPTH"]
  .filter((k) => process.env[k] !== undefined).map((k) => `${k.replace("FASTGEN_FP8_", "")}=${process.env[k]}`).join(",") || "default";

// [name, N, K, output as the model asks for it]
const SHAPES = [["qkv", 12288, 4096, "bf16"], ["o", 4096, 4096, "acc"], ["gate_up", 22016, 4096, "bf16"],
  ["down", 4096, 11008, "acc"]] as const;

// One pool of E4M3 bytes for every weight (timing does not depend on them; no NaN).
const biggest = Math.max(...SHAPES.map(([, n, k]) => n * k));
const pool = new Uint8Array(biggest);
let seed = 12345;
for (let i = 0; i < pool.length; i++) {
  seed = (seed * 1103515245 + 12345) >>> 0;
  const b = seed >>> 24;
  pool[i] = (b & 0x7f) === 0x7f ? b - 1 : b;
}

function lastTiming(): number {
  const lines = readFileSync(timing!, "utf8").trim().split("\n");
  return Number(lines[lines.length - 1]);
}

export interface Fp8GemvRow { label: string; shape: string; n: number; k: number; m: number; path: Fp8Path; us: number; gbps: number; pct: number }
const rows: Fp8GemvRow[] = [];
for (const [name, n, k, out] of SHAPES) {
  const w = pool.subarray(0, n * k), bytes = n * k + 4 * n;
  const scales = Float32Array.from({ length: n }, () => (0.5 + Math.random()) / 448);
  for (const m of TOKENS) {
    const x = Float32Array.from({ length: m * k }, () => Math.random() - 0.5);
    const runs: [string, Fp8Path][] = [[label, "auto"]];
    if (withLt) runs.push(["w8a8 (cuBLASLt)", "w8a8"]);
    for (const [lab, want] of runs) {
      const { path } = cudaFp8Linear(x, m, k, w, n, scales, { out, addend: out === "acc" ? new Float32Array(m * n) : undefined, path: want });
      const ms = lastTiming(), gbps = bytes / ms / 1e6;
      const r: Fp8GemvRow = { label: lab, shape: name, n, k, m, path, us: ms * 1e3, gbps, pct: (100 * gbps) / bw };
      rows.push(r);
      console.log(`[${lab}] ${name} ${n}x${k} m=${m} ${path}: ${r.us.toFixed(1)} us ${gbps.toFixed(0)} GB/s (${Number.isFinite(r.pct) ? r.pct.toFixed(0) : "-"}% of copy)`);
    }
  }
}
writeFileSync(outPath, JSON.stringify({ label, gpu: ceil.gpu, copy_bw_GBps: bw, rows }, null, 1));
