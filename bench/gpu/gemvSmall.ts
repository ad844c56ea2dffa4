/**
 * The decode GEMMs of the Llama-2-7B shape alone, at 1-16 tokens: the library's dispatch (the
 * one-token kernel at M = 1, the tensor-core small-M kernel at 2..16) against cuBLASLt on the
 * same inputs, timed through the test hook (fg_cuda_gemm_host: median of 20 launches, each after
 * an L2 flush). GB/s = weight bytes / time, next to the copy bandwidth ceilings.py measured in
 * the same run (a GEMV streams each weight once: that bandwidth is its roofline).
 *
 *   bun bench/gpu/gemvSmall.ts <ceilings.json> <out-dir>
 * The gated row (gate_up with the activation applied in the kernel) is compared with cuBLASLt's
 * plain GEMM of the same shape, which is the fallback less its separate activation kernel.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cudaGemm } from "../../src/native";

const [ceilPath, outDir = "bench/results"] = process.argv.slice(2);
const ceil = ceilPath && existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
const bw = ceil.copy_bw_GBps ?? NaN;

// [name, N, K, how the model calls it]
const SHAPES = [
  ["qkv", 12288, 4096, "bf16"], ["o", 4096, 4096, "acc"], ["gate_up", 22016, 4096, "gated"],
  ["down", 4096, 11008, "acc"], ["lm_head", 32000, 4096, "f32"],
] as const;
const TOKENS = [1, 2, 4, 8, 16];

// One pool of random values for every weight (timing does not depend on them).
const biggest = Math.max(...SHAPES.map(([, n, k]) => n * k));
const pool = new Float32Array(biggest);
for (let i = 0; i < pool.length; i++) pool[i] = (Math.random() - 0.5) * 0.02;

interface Row { shape: string; n: number; k: number; m: number; ms: number; gbps: number; cublaslt_ms: number; cublaslt_gbps: number }
const rows: Row[] = [];
for (const [name, n, k, how] of SHAPES) {
  const w = pool.subarray(0, n * k), bytes = n * k * 2;
  for (const m of TOKENS) {
    const x = new Float32Array(m * k).map(() => Math.random() - 0.5);
    const acc = how === "acc" ? new Float32Array(m * n) : undefined;
    const ours = how === "gated"
      ? cudaGemm(x, w, m, n, k, { gated: { act: "silu" }, time: true })
      : cudaGemm(x, w, m, n, k, { yF32: how !== "bf16", accumulate: acc, time: true });
    const lt = cudaGemm(x, w, m, n, k, { yF32: how === "acc" || how === "f32", accumulate: acc, cublasLt: true, time: true });
    const r = { shape: name, n, k, m, ms: ours.ms, gbps: bytes / ours.ms / 1e6, cublaslt_ms: lt.ms, cublaslt_gbps: bytes / lt.ms / 1e6 };
    rows.push(r);
    console.log(`${name} ${n}x${k} m=${m}: ${(r.ms * 1e3).toFixed(1)} us ${r.gbps.toFixed(0)} GB/s; cuBLASLt ${(r.cublaslt_ms * 1e3).toFixed(1)} us ${r.cublaslt_gbps.toFixed(0)} GB/s`);
  }
}

const pct = (g: number) => (Number.isFinite(bw) ? `${((100 * g) / bw).toFixed(0)}%` : "-");
const md = [
  `# Decode GEMMs of the Llama-2-7B shape at 1-16 tokens: GEMV kernels vs cuBLASLt`,
  ``,
  `GPU ${ceil.gpu}; ${new Date().toISOString()}; copy bandwidth (same run) ${bw} GB/s. Median of 20 launches, L2 flushed before each.`,
  `M = 1: the one-token CUDA-core kernels; M = 2..16: the tensor-core small-M kernel (gemv_small.cuh).`,
  ``,
  `| GEMM | N x K | M | ours us | GB/s | of copy bw | cuBLASLt us | GB/s | speedup |`,
  `| --- | --- | --- | --- | --- | --- | --- | --- | --- |`,
  ...rows.map((r) => `| ${r.shape} | ${r.n}x${r.k} | ${r.m} | ${(r.ms * 1e3).toFixed(1)} | ${r.gbps.toFixed(0)} | ${pct(r.gbps)} | ${(r.cublaslt_ms * 1e3).toFixed(1)} | ${r.cublaslt_gbps.toFixed(0)} | ${(r.cublaslt_ms / r.ms).toFixed(2)}x |`),
  ``,
  `gate_up: ours applies silu(gate) * up in the kernel; cuBLASLt's figure is its plain GEMM alone.`,
];
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, "cuda-gemv-small.json"), JSON.stringify({ gpu: ceil.gpu, copy_bw_GBps: bw, rows }, null, 1));
writeFileSync(join(outDir, "cuda-gemv-small.md"), md.join("\n") + "\n");
console.log(md.join("\n"));
