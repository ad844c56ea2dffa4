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
