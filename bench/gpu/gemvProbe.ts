/**
 * One GEMM through the library's dispatch (fg_cuda_gemm_host), bf16 weights, checked against the
 * CPU GEMM and optionally timed (median of 20 launches, L2 flushed before each): for narrowing
 * down a shape in a device call under the GEMV knobs of the environment, one process a shape.
 *
 *   bun bench/gpu/gemvProbe.ts <M> <N> <K> [gated] [time]
 */
import { cpuGemm, cudaGemm } from "../../src/native";

const [m, n, k] = process.argv.slice(2, 5).map(Number) as [number, number, number];
const gated = process.argv.includes("gated"), time = process.argv.includes("time");
const rnd = (len: number, s: number) => Float32Array.from({ length: len }, () => (Math.random() - 0.5) * s);
const x = rnd(m * k, 1), w = rnd(n * k, 1 / Math.sqrt(k));
const t0 = performance.now();
const got = cudaGemm(x, w, m, n, k, gated ? { gated: { act: "silu" }, time } : { yF32: true, time });
const wall = performance.now() - t0;
let err = NaN;
if (!gated) {
  const ref = cpuGemm(x, w, null, m, n, k);
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) num += (got.y[i]! - ref[i]!) ** 2, den += ref[i]! ** 2;
  err = Math.sqrt(num / den);
}
const gbps = time ? (n * k * 2) / got.ms / 1e6 : NaN;
console.log(`probe m=${m} n=${n} k=${k}${gated ? " gated" : ""}: rel err ${err.toExponential(2)}, ` +
  `${time ? `${(got.ms * 1e3).toFixed(1)} us ${gbps.toFixed(0)} GB/s, ` : ""}wall ${wall.toFixed(0)} ms`);
