/**
 * The one dlopen table of libfastgen. Every symbol of fastgen.h is declared here; nothing else in
 * the code base calls dlopen. The library is found, in order, at $FASTGEN_LIB, next to the
 * executable (a `bun build --compile` binary ships it alongside), or in this checkout's
 * zig-out/lib.
 */
import { dlopen, FFIType } from "bun:ffi";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { type AbiLayout, checkAbiVersion, parseAbiLayout } from "./abi";
import { FastgenError, Status } from "./errors";
import { envVar } from "../envVars";

const LIB_NAME = "libfastgen.so";

const symbols = {
  fg_last_error: { args: [], returns: FFIType.cstring },
  fg_version: { args: [], returns: FFIType.cstring },
  fg_abi_version: { args: [], returns: FFIType.i32 },
  fg_abi_layout: { args: [], returns: FFIType.cstring },
  fg_cuda_device_count: { args: [], returns: FFIType.i32 },
  fg_set_num_threads: { args: [FFIType.i32], returns: FFIType.i32 },
  fg_knobs: { args: [], returns: FFIType.cstring },
  // (spec_json, const char **out_json)
  fg_spec_tensors: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  // (spec_json, backend, fg_engine **out)
  fg_engine_create: { args: [FFIType.ptr, FFIType.i32, FFIType.ptr], returns: FFIType.i32 },
  fg_engine_destroy: { args: [FFIType.ptr], returns: FFIType.i32 },
  // (engine, name, dtype, shape, ndim, data, nbytes)
  fg_engine_load_tensor: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.u64],
    returns: FFIType.i32,
  },
  // (engine, name, dtype, shape, ndim, data, nbytes, scales, num_scales, block_rows, block_cols,
  //  input_scale)
  fg_engine_load_quantized_tensor: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.u64,
      FFIType.ptr, FFIType.u64, FFIType.i64, FFIType.i64, FFIType.f32],
    returns: FFIType.i32,
  },
  fg_engine_finalize: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  fg_engine_get_info: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  fg_step: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  // (engine, batch)
  fg_step_launch: { args: [FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  // (engine, late, out)
  fg_step_finish: { args: [FFIType.ptr, FFIType.ptr, FFIType.ptr], returns: FFIType.i32 },
  fg_debug_fail_next_steps: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  fg_debug_fail_status: { args: [FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
  // (x, w, out, rows, cols, eps)
  fg_cuda_rmsnorm_host: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.f32],
    returns: FFIType.i32,
  },
  fg_cpu_rmsnorm: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.f32],
    returns: FFIType.i32,
  },
  // (x, w, bias, y, m, n, k, act, flags, ms)
  fg_cuda_gemm_host: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.i32,
      FFIType.i32, FFIType.i32, FFIType.ptr],
    returns: FFIType.i32,
  },
  // (backend, batch, q, k_cache, v_cache, out, num_heads, num_kv_heads, head_dim, block_size,
  //  num_blocks, window, scale, softcap, splits, kernel)
  fg_paged_attention: {
    args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr,
      FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.f32, FFIType.f32,
      FFIType.i32, FFIType.i32],
    returns: FFIType.i32,
  },
  // (backend, batch, q, cache, out, num_heads, latent, rope, block_size, num_blocks, window, scale,
  //  softcap, splits)
  fg_mla_attention: {
    args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.i32,
      FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.f32, FFIType.f32, FFIType.i32],
    returns: FFIType.i32,
  },
  // (backend, batch, q, k_cache, v_cache, out, num_heads, num_kv_heads, head_dim, block_size,
  //  num_blocks, window, splits, softcap, k_scale, v_scale)
  fg_paged_attention_fp8: {
    args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr,
      FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32,
      FFIType.f32, FFIType.f32, FFIType.f32],
    returns: FFIType.i32,
  },
  // fg_mla_attention's arguments, then (kv_scale)
  fg_mla_attention_fp8: {
    args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.i32,
      FFIType.i32, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.f32, FFIType.f32, FFIType.i32, FFIType.f32],
    returns: FFIType.i32,
  },
  // (backend, batch, logits, vocab, out)
  fg_sample_logits: {
    args: [FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.ptr],
    returns: FFIType.i32,
  },
  // (backend, op, dims, num_dims, params, num_params, bufs, num_bufs)
  fg_run_op: {
    args: [FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32],
    returns: FFIType.i32,
  },
  // (x, w, bias, y, m, n, k)
  fg_cpu_gemm: {
    args: [FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.i32],
    returns: FFIType.i32,
  },
  // (dtype, q, rows, cols, scales, num_scales, block_rows, block_cols, out)
  fg_dequantize: {
    args: [FFIType.i32, FFIType.ptr, FFIType.i64, FFIType.i64, FFIType.ptr, FFIType.u64, FFIType.i64,
      FFIType.i64, FFIType.ptr],
    returns: FFIType.i32,
  },
  // (dtype, w, rows, cols, q, scales)
  fg_quantize_fp8: {
    args: [FFIType.i32, FFIType.ptr, FFIType.i64, FFIType.i64, FFIType.ptr, FFIType.ptr],
    returns: FFIType.i32,
  },
  // (x, m, k, w, n, scales, kblock, input_scale, out_mode, path, y, path_used)
  fg_cuda_fp8_linear_host: {
    args: [FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.ptr, FFIType.i32, FFIType.f32,
      FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr],
    returns: FFIType.i32,
  },
  // (router_logits, num_tokens, num_experts, top_k, expert_ids, weights, expert_offsets, token_slots)
  fg_cpu_moe_route: {
    args: [FFIType.ptr, FFIType.i32, FFIType.i32, FFIType.i32, FFIType.ptr, FFIType.ptr, FFIType.ptr, FFIType.ptr],
    returns: FFIType.i32,
  },
} as const;

type Library = ReturnType<typeof dlopen<typeof symbols>>;
let library: Library | null = null;
let abiLayout: AbiLayout | null = null;

/** Where libfastgen.so is loaded from (see the file comment for the order). */
export function libraryPath(): string {
  const fromEnv = envVar("FASTGEN_LIB");
  if (fromEnv) return fromEnv;
  const besideExe = join(dirname(process.execPath), LIB_NAME);
  if (existsSync(besideExe)) return besideExe;
  return join(import.meta.dir, "..", "..", "zig-out", "lib", LIB_NAME);
}

/**
 * The loaded symbol table; opens the library on first use. A library built from another
 * fastgen.h is refused before any struct crosses: first its ABI version (read alone, since an
 * older library may lack symbols of this table), then its struct layouts (abi.ts).
 */
export function lib(): Library["symbols"] {
  if (!library) {
    const path = libraryPath();
    if (!existsSync(path))
      throw new FastgenError(Status.NOT_FOUND, `libfastgen not found at ${path} (build it with \`bun run build\` or set FASTGEN_LIB)`);
    const probe = dlopen(path, { fg_abi_version: symbols.fg_abi_version });
    const version = probe.symbols.fg_abi_version();
    checkAbiVersion(version, path);
    const opened = dlopen(path, symbols);
    abiLayout = parseAbiLayout(String(opened.symbols.fg_abi_layout()), path);
    library = opened;
  }
  return library.symbols;
}

/** The struct layouts of the loaded library (checked against abi.ts's BINDING_STRUCTS). */
export function layout(): AbiLayout {
  lib();
  return abiLayout!;
}

/** fg_last_error() of this thread. */
export function lastError(): string {
  return String(lib().fg_last_error() ?? "");
}

/** Throws FastgenError(status, fg_last_error()) unless status is FG_OK. */
export function check(status: number): void {
  if (status !== Status.OK) throw new FastgenError(status, lastError());
}

/** NUL-terminated UTF-8 bytes for a `const char *` argument. */
export function cString(s: string): Uint8Array {
  return new TextEncoder().encode(s + "\0");
}
