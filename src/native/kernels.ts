/** Library-level calls: version, devices, threads, and the exported test kernels. */
import { FastgenError, Status } from "./errors";
import { check, lib } from "./lib";

/** fg_version(), e.g. "0.1.0 (cpu, cuda)". */
export function libraryVersion(): string {
  return String(lib().fg_version() ?? "");
}

export function abiVersion(): number {
  return lib().fg_abi_version();
}

/** One FASTGEN_* environment variable libfastgen reads (fastgen.h fg_knobs, core/knobs.h). */
export interface LibraryKnob {
  name: string;
  type: "int" | "flag" | "string";
  default: string;
  meaning: string;
  /** The text this process's environment set, or null. */
  value: string | null;
}

/** The library's knob registry: every FASTGEN_* variable it reads, with defaults and meanings. */
export function libraryKnobs(): LibraryKnob[] {
  return JSON.parse(String(lib().fg_knobs() ?? "[]")) as LibraryKnob[];
}

/** CUDA devices visible to libfastgen (0 without CUDA or a driver). */
export function cudaDeviceCount(): number {
  return lib().fg_cuda_device_count();
}

/** Threads of the CPU backend; 0 restores the default (every core, or FASTGEN_NUM_THREADS). */
export function setNumThreads(n: number): void {
  check(lib().fg_set_num_threads(n));
}

function rmsnormArgs(x: Float32Array, w: Float32Array, rows: number, cols: number): Float32Array {
  if (x.length < rows * cols || w.length < cols)
    throw new FastgenError(Status.INVALID_ARGUMENT, `rmsnorm: x needs ${rows * cols} and w ${cols} values`);
  return new Float32Array(rows * cols);
}

/** out = x * rsqrt(mean(x^2) + eps) * w per row, on CUDA device 0 (throws "unsupported" without CUDA). */
export function cudaRmsnorm(x: Float32Array, w: Float32Array, rows: number, cols: number, eps: number): Float32Array {
  const out = rmsnormArgs(x, w, rows, cols);
  check(lib().fg_cuda_rmsnorm_host(x, w, out, rows, cols, eps));
  return out;
}

/** The CPU twin of cudaRmsnorm. */
export function cpuRmsnorm(x: Float32Array, w: Float32Array, rows: number, cols: number, eps: number): Float32Array {
  const out = rmsnormArgs(x, w, rows, cols);
  check(lib().fg_cpu_rmsnorm(x, w, out, rows, cols, eps));
  return out;
}

/** Options of {@link cudaGemm} (fastgen.h fg_cuda_gemm_host). */
export interface CudaGemmOptions {
  /** fp32 output (default); false: rounded through bf16. */
  yF32?: boolean;
  /** y += x w^T on these values ([m, n], needs yF32). */
  accumulate?: Float32Array;
  /** cuBLASLt whatever m and the knobs (the reference path). */
  cublasLt?: boolean;
  /** The gated MLP input: w's rows interleaved (gate_i, up_i), y [m, n / 2] = act(gate) * up in bf16. */
  gated?: { act: "silu" | "gelu" | "gelu_tanh"; bias?: Float32Array };
  /** Also time 20 launches, each after an L2 flush: the median lands in `ms`. */
  time?: boolean;
}

const GATED_ACTS = { silu: 0, gelu: 1, gelu_tanh: 2 } as const;

/**
 * The CUDA backend's GEMM dispatch on device 0 (GEMV kernels for 1-16 rows, cuBLASLt above):
 * y = x[m, k] w[n, k]^T with x and w rounded to bf16. For tests and benches; throws "unsupported"
 * without CUDA, or where the gated kernels do not take the shape.
 */
export function cudaGemm(x: Float32Array, w: Float32Array, m: number, n: number, k: number,
  opts: CudaGemmOptions = {}): { y: Float32Array; ms: number } {
  const g = opts.gated, yF32 = g ? false : opts.yF32 ?? true, cols = g ? n / 2 : n;
  if (x.length < m * k || w.length < n * k || (opts.accumulate && opts.accumulate.length < m * n) || (g?.bias && g.bias.length < n))
    throw new FastgenError(Status.INVALID_ARGUMENT, `cudaGemm: x needs ${m * k}, w ${n * k} values`);
  const y = opts.accumulate ? Float32Array.from(opts.accumulate.subarray(0, m * n)) : new Float32Array(m * cols);
  const flags = (yF32 ? 1 : 0) | (opts.accumulate ? 2 : 0) | (opts.cublasLt ? 4 : 0);
  const ms = new Float32Array(1);
  check(lib().fg_cuda_gemm_host(x, w, g?.bias ?? null, y, m, n, k, g ? GATED_ACTS[g.act] : -1, flags, opts.time ? ms : null));
  return { y, ms: opts.time ? ms[0]! : NaN };
}

/** The CPU backend's GEMM: y[m, n] = sum_k x[m, k] * w[n, k] + bias[n]. For tests. */
export function cpuGemm(x: Float32Array, w: Float32Array, bias: Float32Array | null, m: number, n: number, k: number): Float32Array {
  if (x.length < m * k || w.length < n * k || (bias && bias.length < n))
    throw new FastgenError(Status.INVALID_ARGUMENT, `cpuGemm: x needs ${m * k}, w ${n * k}, bias ${n} values`);
  // bun:ffi cannot point at empty arrays; the library reads none of a zero-sized operand.
  const nonEmpty = (a: Float32Array) => (a.length ? a : new Float32Array(1));
  const y = new Float32Array(m * n);
  check(lib().fg_cpu_gemm(nonEmpty(x), nonEmpty(w), bias && bias.length ? bias : null, nonEmpty(y), m, n, k));
  return y;
}

/** The CPU backend's MoE routing (fastgen.h fg_cpu_moe_route), for tests. */
export interface MoeRouting {
  /** [tokens, topK] best first. */
  expertIds: Int32Array;
  /** [tokens, topK] renormalized to sum 1 per token. */
  weights: Float32Array;
  /** [experts + 1]: expert e's slots are tokenSlots[expertOffsets[e] .. expertOffsets[e + 1]). */
  expertOffsets: Int32Array;
  /** [tokens * topK] slot t * topK + j, grouped by expert, token order within one. */
  tokenSlots: Int32Array;
}

/** Routes `tokens` rows of router logits [tokens, experts] to their top-k experts. */
export function cpuMoeRoute(logits: Float32Array, tokens: number, experts: number, topK: number): MoeRouting {
  if (logits.length < tokens * experts)
    throw new FastgenError(Status.INVALID_ARGUMENT, `cpuMoeRoute: logits needs ${tokens * experts} values`);
  const n = Math.max(1, tokens * Math.max(topK, 0));
  const r: MoeRouting = {
    expertIds: new Int32Array(n), weights: new Float32Array(n),
    expertOffsets: new Int32Array(Math.max(1, experts + 1)), tokenSlots: new Int32Array(n),
  };
  check(lib().fg_cpu_moe_route(logits.length ? logits : new Float32Array(1), tokens, experts, topK,
    r.expertIds, r.weights, r.expertOffsets, r.tokenSlots));
  const m = tokens * topK;
  return { expertIds: r.expertIds.subarray(0, m), weights: r.weights.subarray(0, m),
    expertOffsets: r.expertOffsets.subarray(0, experts + 1), tokenSlots: r.tokenSlots.subarray(0, m) };
}

/** fg_dtype FG_F8_E4M3. */
const F8_E4M3 = 3;

/**
 * The weight store's dequantization (fg_dequantize), for tests: out [rows, cols] fp32 from E4M3
 * bytes q [rows, cols] and their scales (the layout of {@link WeightScales}).
 */
export function dequantizeFp8(q: Uint8Array, rows: number, cols: number, scales: Float32Array,
  blockRows: number, blockCols: number): Float32Array {
  if (q.length < rows * cols)
    throw new FastgenError(Status.INVALID_ARGUMENT, `dequantizeFp8: q needs ${rows * cols} bytes`);
  const out = new Float32Array(Math.max(1, rows * cols));
  check(lib().fg_dequantize(F8_E4M3, q.length ? q : null, rows, cols, scales.length ? scales : null, scales.length,
    blockRows, blockCols, out));
  return out.subarray(0, rows * cols);
}

/**
 * What the spec's "quantization": "fp8" does to an F32 weight [rows, cols] at load (fg_quantize_fp8):
 * per row scale = amax / 448, q = e4m3(w / scale). For tests.
 */
export function quantizeFp8(w: Float32Array, rows: number, cols: number): { q: Uint8Array; scales: Float32Array } {
  if (w.length < rows * cols)
    throw new FastgenError(Status.INVALID_ARGUMENT, `quantizeFp8: w needs ${rows * cols} values`);
  const q = new Uint8Array(Math.max(1, rows * cols)), scales = new Float32Array(Math.max(1, rows));
  check(lib().fg_quantize_fp8(0, w.length ? w : null, rows, cols, q, scales));
  return { q: q.subarray(0, rows * cols), scales: scales.subarray(0, rows) };
}

/** The paths of {@link cudaFp8Linear} (fastgen.h fg_cuda_fp8_linear_host); "small" (the tensor-core small-M
 * kernel, FASTGEN_FP8_SMALL_MAX_M) is reported, not forced. */
export const FP8_PATHS = { auto: 0, gemv: 1, w8a8: 2, dequant: 3, small: 4 } as const;
export type Fp8Path = keyof typeof FP8_PATHS;

/**
 * The CUDA backend's FP8 GEMMs on device 0, for tests and benches: y [m, n] = x [m, k] (rounded to
 * bf16) times w^T, w [n, k] E4M3 bytes with scales [n, ceil(k / kblock)]. `out` "bf16" rounds y,
 * "f32" does not, "acc" adds to `addend`. Returns y and the path that ran (throws "unsupported"
 * without CUDA).
 */
export function cudaFp8Linear(x: Float32Array, m: number, k: number, w: Uint8Array, n: number, scales: Float32Array,
  opts: { kblock?: number; inputScale?: number; out?: "bf16" | "f32" | "acc"; addend?: Float32Array; path?: Fp8Path } = {}):
  { y: Float32Array; path: Fp8Path } {
  const kblock = opts.kblock ?? k, nkb = Math.ceil(k / kblock);
  if (x.length < m * k || w.length < n * k || scales.length < n * nkb)
    throw new FastgenError(Status.INVALID_ARGUMENT, `cudaFp8Linear: x needs ${m * k} values, w ${n * k} bytes, scales ${n * nkb}`);
  const y = new Float32Array(m * n);
  if (opts.out === "acc") y.set(opts.addend ?? new Float32Array(m * n));
  const used = new Int32Array(1);
  const mode = opts.out === "f32" ? 1 : opts.out === "acc" ? 2 : 0;
  check(lib().fg_cuda_fp8_linear_host(x, m, k, w, n, scales, kblock, opts.inputScale ?? 0, mode,
    FP8_PATHS[opts.path ?? "auto"], y, used));
  const path = (Object.keys(FP8_PATHS) as Fp8Path[]).find((p) => FP8_PATHS[p] === used[0])!;
  return { y, path };
}
