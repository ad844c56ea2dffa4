// The model's RMSNorm kernel (libfastgen/src/cuda/norm.cu) against the CPU backend's (cpu/norm.cpp).
// Runs only where a CUDA device is visible; fresh random inputs each run, never zeros.
import { describe, expect, test } from "bun:test";
import { cpuRmsnorm, cudaDeviceCount, cudaRmsnorm } from "../../src/native";

const hasGpu = cudaDeviceCount() > 0;

function relErr(out: Float32Array, ref: Float32Array): number {
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) {
    num += (out[i]! - ref[i]!) ** 2;
    den += ref[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

function randn(n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (Math.random() - 0.5) * 4;
  return a;
}

describe.skipIf(!hasGpu)("cuda rmsnorm", () => {
  for (const [rows, cols] of [[1, 1], [3, 67], [17, 4096], [130, 5120]] as const) {
    test(`${rows}x${cols} matches the CPU twin`, () => {
      const x = randn(rows * cols), w = randn(cols);
      const ref = cpuRmsnorm(x, w, rows, cols, 1e-5);
      const out = cudaRmsnorm(x, w, rows, cols, 1e-5);
      const err = relErr(out, ref);
      console.log(`rmsnorm ${rows}x${cols}: rel err ${err.toExponential(2)}`);
      expect(Number.isNaN(err)).toBe(false);
      expect(err).toBeLessThan(1e-5);
    });
  }
});

test.skipIf(hasGpu)("without a GPU the CUDA op reports a clear error", () => {
  expect(() => cudaRmsnorm(randn(4), randn(4), 1, 4, 1e-5)).toThrow(/CUDA|device|driver/i);
});
