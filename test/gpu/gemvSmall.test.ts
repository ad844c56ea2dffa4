// The small-M tensor-core GEMV (libfastgen/src/cuda/gemv_small.cuh), through the GEMM dispatch's
// test hook (fg_cuda_gemm_host), against the CPU backend's GEMM on the same bf16-rounded inputs:
// M = 1..16 tokens (one token: the one-token CUDA-core GEMV), odd N, K from 64 to 14336 (tail
// steps included), fp32 and bf16 outputs,
// accumulate into fp32, and the gated MLP form (silu, gelu, gelu_tanh; with and without bias).
// cuBLASLt on the same inputs is the second reference. Fresh random inputs each run.
import { describe, expect, test } from "bun:test";
import { cpuGemm, cudaGemm } from "../../src/native";
import { relErr } from "../native/helpers";
import { hasGpu, randomArray, roundBf16 } from "./gpuHelpers";

// fp32 outputs: the same bf16 products summed in another order (and by the tensor cores' adder);
// bf16 outputs: one rounding of each value (2^-9 relative at worst).
const TOL_F32 = 1e-4, TOL_BF16 = 1e-2;
// FASTGEN_GEMV_MAX_M (read once a process; default 16): the gated GEMV takes up to that many rows
// (the engine runs larger batches as a GEMM plus the activation). The gated cases above it expect
// a refusal; the gated cases run again in a child process under the other setting (below).
const GEMV_MAX_M = Number(process.env.FASTGEN_GEMV_MAX_M ?? 16) || 16;

type Mode = "f32" | "bf16" | "accumulate";
const MODES: Mode[] = ["f32", "bf16", "accumulate"];

/** y = x w^T (+ y0) on the CPU in fp32, from the values the device sees. */
function reference(x: Float32Array, w: Float32Array, m: number, n: number, k: number, y0?: Float32Array): Float32Array {
  const y = cpuGemm(x, w, null, m, n, k);
  if (y0) for (let i = 0; i < y.length; i++) y[i]! += y0[i]!;
  return y;
}

function inputs(m: number, n: number, k: number) {
  // Weights at 1/sqrt(k) keep the outputs O(1) at every k.
  return { x: roundBf16(randomArray(m * k)), w: roundBf16(randomArray(n * k, 1 / Math.sqrt(k))) };
}

function checkPlain(m: number, n: number, k: number, mode: Mode, w?: Float32Array): number {
  const { x, w: fresh } = inputs(m, n, k);
  const wt = w ?? fresh;
  const y0 = mode === "accumulate" ? randomArray(m * n) : undefined;
  const ref = reference(x, wt, m, n, k, y0);
  const got = cudaGemm(x, wt, m, n, k, { yF32: mode !== "bf16", accumulate: y0 }).y;
  const err = relErr(got, ref);
  console.log(`gemv m=${m} n=${n} k=${k} ${mode}: rel err ${err.toExponential(2)}`);
  expect(Number.isNaN(err)).toBe(false);
  expect(err).toBeLessThan(mode === "bf16" ? TOL_BF16 : TOL_F32);
  return err;
}

// [tokens, N, K]: every M at a small K (one 32-k step, most warps idle), a K that is no multiple
// of 32 (the tail step), the Llama-7B o/down shapes and Mixtral's down K with odd N.
const PLAIN: [number[], number, number][] = [
  [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], 4097, 64],
  [[1, 2, 3, 8, 9, 16], 8190, 1000],
  [[1, 2, 7, 12, 16], 4097, 4096],
  [[1, 4, 16], 4096, 11008],
  [[1, 3, 13], 1001, 14336],
];

const ACTS = ["silu", "gelu", "gelu_tanh"] as const;

function erf(x: number): number {  // Abramowitz-Stegun 7.1.26, |error| < 1.5e-7
  const s = Math.sign(x), a = Math.abs(x), t = 1 / (1 + 0.3275911 * a);
  const p = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
  return s * (1 - p * Math.exp(-a * a));
}
function activate(act: (typeof ACTS)[number], v: number): number {
  if (act === "silu") return v / (1 + Math.exp(-v));
  if (act === "gelu") return 0.5 * v * (1 + erf(v / Math.SQRT2));
  return 0.5 * v * (1 + Math.tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
}

describe.skipIf(!hasGpu)("cuda small-M GEMV vs the CPU GEMM", () => {
  for (const [ms, n, k] of PLAIN) {
    test(`M ${ms.join(",")}, N ${n}, K ${k}`, () => {
      const w = roundBf16(randomArray(n * k, 1 / Math.sqrt(k)));  // one weight per shape
      ms.forEach((m, i) => {
        if (k === 64) for (const mode of MODES) checkPlain(m, n, k, mode, w);
        else checkPlain(m, n, k, MODES[i % MODES.length]!, w);
      });
    });
  }

  test("agrees with cuBLASLt on the same inputs (M 2..16, N 4097, K 4096, fp32)", () => {
    const n = 4097, k = 4096;
    const w = roundBf16(randomArray(n * k, 1 / Math.sqrt(k)));
    for (const m of [2, 5, 8, 9, 16]) {
      const x = roundBf16(randomArray(m * k));
      const ours = cudaGemm(x, w, m, n, k).y, lt = cudaGemm(x, w, m, n, k, { cublasLt: true }).y;
      const err = relErr(ours, lt);
      console.log(`gemv vs cuBLASLt m=${m}: rel diff ${err.toExponential(2)}`);
      expect(err).toBeLessThan(TOL_F32);
    }
  });

  test("K % 8 != 0 falls back to cuBLASLt with the same result", () => {
    const [m, n, k] = [4, 515, 1004];
    const { x, w } = inputs(m, n, k);
    const err = relErr(cudaGemm(x, w, m, n, k).y, reference(x, w, m, n, k));
    expect(err).toBeLessThan(TOL_F32);
  });

  // [tokens, N = 2 x intermediate, K]
  const GATED: [number[], number, number][] = [
    [[1, 2, 3, 8, 9, 16], 8190, 1000],
    [[1, 5, 16], 2752, 4096],
  ];
  for (const [ms, n, k] of GATED) {
    test(`gated: M ${ms.join(",")}, N ${n}, K ${k}, silu/gelu/gelu_tanh, bias or none`, () => {
      const w = roundBf16(randomArray(n * k, 1 / Math.sqrt(k)));
      ms.forEach((m, i) => {
        const act = ACTS[i % ACTS.length]!, bias = i % 2 ? randomArray(n, 0.5) : undefined;
        const x = roundBf16(randomArray(m * k));
        if (m > GEMV_MAX_M) {
          expect(() => cudaGemm(x, w, m, n, k, { gated: { act, bias } })).toThrow(/gated GEMV does not take/);
          console.log(`gated refused m=${m} n=${n} k=${k} (FASTGEN_GEMV_MAX_M=${GEMV_MAX_M})`);
          return;
        }
        const gu = cpuGemm(x, w, bias ?? null, m, n, k);  // [m, n]: gate_j at 2j, up_j at 2j + 1
        const ref = new Float32Array(m * (n / 2));
        for (let r = 0; r < m; r++)
          for (let j = 0; j < n / 2; j++)
            ref[r * (n / 2) + j] = activate(act, gu[r * n + 2 * j]!) * gu[r * n + 2 * j + 1]!;
        const got = cudaGemm(x, w, m, n, k, { gated: { act, bias } }).y;
        const err = relErr(got, ref);
        console.log(`gated ${act} m=${m} n=${n} k=${k}${bias ? " bias" : ""}: rel err ${err.toExponential(2)}`);
        expect(Number.isNaN(err)).toBe(false);
        expect(err).toBeLessThan(TOL_BF16);
      });
    });
  }

  test("gated: a K the kernels do not take is refused, not computed", () => {
    const { x, w } = inputs(4, 64, 1004);
    expect(() => cudaGemm(x, w, 4, 64, 1004, { gated: { act: "silu" } })).toThrow(/gated GEMV|unsupported/i);
  });
});

test.skipIf(hasGpu)("without a GPU the GEMM hook reports a clear error", () => {
  const { x, w } = inputs(2, 16, 64);
  expect(() => cudaGemm(x, w, 2, 16, 64)).toThrow(/CUDA|device|driver/i);
});

// The gated cases again in a child process under the other FASTGEN_GEMV_MAX_M: 16 where this
// process runs under a lower one (the rows above it computed), else 8 (the rows above it refused).
const OTHER_MAX_M = GEMV_MAX_M >= 16 ? 8 : 16;
describe.skipIf(!hasGpu)(`gated GEMV under FASTGEN_GEMV_MAX_M=${OTHER_MAX_M} (child process)`, () => {
  test(`FASTGEN_GEMV_MAX_M=${OTHER_MAX_M}`, () => {
    const r = Bun.spawnSync([process.execPath, "test", "--timeout", "120000", import.meta.path, "-t", "gated: M"], {
      env: { ...process.env, FASTGEN_GEMV_MAX_M: String(OTHER_MAX_M) }, stdout: "pipe", stderr: "pipe",
    });
    const out = r.stdout.toString() + r.stderr.toString();
    for (const line of out.split("\n")) if (/^gated |\(fail\)|error:|^ *\d+ (pass|fail)/.test(line)) console.log(`[MAX_M=${OTHER_MAX_M}] ${line}`);
    expect(r.exitCode).toBe(0);
    expect(out).toMatch(OTHER_MAX_M === 16 ? /gated \w+ m=16 / : /gated refused m=16 /);
  }, 240_000);
});
