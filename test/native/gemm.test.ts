// The CPU GEMM (y = x W^T + b) at odd sizes, its row independence, and thread-count invariance.
import { afterAll, describe, expect, test } from "bun:test";
import { abiVersion, cpuGemm, cpuRmsnorm, cudaDeviceCount, libraryVersion, setNumThreads } from "../../src/native";
import { ABI_VERSION } from "../../src/native/abi";
import { relErr, rng } from "./helpers";

function rand(r: () => number, n: number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * r() - 1);
}

function refGemm(x: Float32Array, w: Float32Array, b: Float32Array | null, m: number, n: number, k: number) {
  const y = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = b ? b[j]! : 0;
      for (let t = 0; t < k; t++) s += x[i * k + t]! * w[j * k + t]!;
      y[i * n + j] = s;
    }
  return y;
}

afterAll(() => setNumThreads(0));

describe("cpu gemm", () => {
  const sizes: [number, number, number][] = [
    [1, 1, 1], [1, 7, 3], [3, 5, 7], [5, 13, 9], [17, 33, 1], [4, 6, 16], [65, 97, 259], [1, 300, 517], [130, 49, 64], [7, 1, 1000],
  ];
  for (const [m, n, k] of sizes) {
    test(`m=${m} n=${n} k=${k}`, () => {
      const r = rng(m * 1000 + n * 10 + k);
      const x = rand(r, m * k), w = rand(r, n * k), b = rand(r, n);
      expect(relErr(cpuGemm(x, w, b, m, n, k), refGemm(x, w, b, m, n, k))).toBeLessThan(1e-5);
      expect(relErr(cpuGemm(x, w, null, m, n, k), refGemm(x, w, null, m, n, k))).toBeLessThan(1e-5);
    });
  }

  test("k = 0 gives the bias; empty outputs are fine", () => {
    const b = Float32Array.from([1, 2, 3]);
    expect(Array.from(cpuGemm(new Float32Array(0), new Float32Array(0), b, 2, 3, 0))).toEqual([1, 2, 3, 1, 2, 3]);
    expect(cpuGemm(new Float32Array(0), rand(rng(1), 12), null, 0, 3, 4).length).toBe(0);
  });

  test("a row's result does not depend on the other rows or the thread count", () => {
    const r = rng(42);
    const m = 37, n = 101, k = 300;
    const x = rand(r, m * k), w = rand(r, n * k);
    const full = cpuGemm(x, w, null, m, n, k);
    for (const row of [0, 17, 36]) {
      const alone = cpuGemm(x.slice(row * k, (row + 1) * k), w, null, 1, n, k);
      expect(Array.from(alone)).toEqual(Array.from(full.subarray(row * n, (row + 1) * n)));
    }
    setNumThreads(1);
    expect(Array.from(cpuGemm(x, w, null, m, n, k))).toEqual(Array.from(full));
    setNumThreads(3);
    expect(Array.from(cpuGemm(x, w, null, m, n, k))).toEqual(Array.from(full));
    setNumThreads(0);
  });
});

describe("library", () => {
  test("version, abi, devices, rmsnorm twin", () => {
    expect(libraryVersion()).toMatch(/^\d+\.\d+\.\d+ \(cpu/);
    expect(abiVersion()).toBe(ABI_VERSION);
    expect(cudaDeviceCount()).toBeGreaterThanOrEqual(0);
    const x = Float32Array.from([1, 2, 3, 4]), w = Float32Array.from([1, 1, 2, 2]);
    const out = cpuRmsnorm(x, w, 1, 4, 0);
    const s = 1 / Math.sqrt((1 + 4 + 9 + 16) / 4);
    expect(relErr(out, [s, 2 * s, 6 * s, 8 * s])).toBeLessThan(1e-6);
  });
});
