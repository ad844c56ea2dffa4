/** Engine options: the same on `fastgen generate`, `fastgen serve` and `pipeline()`. */

import type { PolicyName } from "./scheduler/types";
import type { SpeculativeConfig } from "./speculative/config";
import { DEFAULT_COMPILE_TIMEOUT_MS } from "../grammar/grammarClient";

export { POLICY_NAMES } from "./scheduler/types";
export type { PolicyName };

export interface EngineOptions {
  /** Token budget B of one forward pass (SplitFuse fills it exactly when enough work waits). */
  maxBatchTokens: number;
  /** Sequence cap S of one forward pass. */
  maxSeqs: number;
  /** Explicit KV block count; 0 = size from memory (kvMemoryMiB on the CPU, memoryFraction on a GPU). */
  kvBlocks: number;
  /** Tokens per KV block; 0 = the backend's choice (16 on the CPU, by head_dim on CUDA). */
  blockSize: number;
  /** Scheduling policy. */
  policy: PolicyName;
  /** Backend; undefined = cuda when a device is visible, else cpu. */
  backend?: "cpu" | "cuda";
  /** CPU backend threads; 0 = every core. */
  threads: number;
  /** KV pool size on the CPU when kvBlocks is 0. */
  kvMemoryMiB: number;
  /** Share of free GPU memory after weights given to the KV pool. */
  memoryFraction: number;
  /**
   * Longest prompt + generation accepted; 0 = all the model and KV pool allow. Longer requests are
   * refused (HTTP 400); a value above what the engine can hold fails at load.
   */
  maxModelLen: number;
  /**
   * Tensor-parallel ranks (CUDA devices 0..N-1 over NCCL, one engine). Heads, MLP columns and the
   * vocabulary are split across them; N must divide num_heads and intermediate_size.
   */
  tensorParallel: number;
  /** Seconds a forward pass may wait on a collective before the engine reports a failure. */
  collectiveTimeout: number;
  /**
   * Automatic prefix caching (vLLM's --enable-prefix-caching, on by default): full KV blocks are
   * kept by content hash after their sequence ends and reused by any later prompt that starts
   * with the same tokens (and cache salt).
   */
  enablePrefixCaching: boolean;
  /** Speculative decoding (speculative/config.ts); null = off. */
  speculative: SpeculativeConfig | null;
  /**
   * vLLM's --quantization: "fp8" quantizes a bf16/fp16/fp32 checkpoint's attention and MLP/expert
   * weights to FP8 E4M3 per output channel at load; an FP8 checkpoint is loaded as it is (its own
   * scheme wins); "none": as the checkpoint says.
   */
  quantization: QuantizationMethod;
  /**
   * vLLM's --kv-cache-dtype: "auto" keeps K/V in the backend's dtype; "fp8" stores them as E4M3
   * with the checkpoint's per-layer k_scale / v_scale (1.0 without): on CUDA one byte a value, so
   * twice the KV blocks in the same memory.
   */
  kvCacheDtype: KvCacheDtype;
  /**
   * Overlapped steps (default on; test/gpu/overlap.test.ts passed on an H100, 2026-12-07): a
   * pass's forward is launched before its rows' grammar masks
   * are computed, and they are handed to the library when it finishes (fg_step_launch /
   * fg_step_finish), so masks cost no wall time while the forward runs. Off: masks first, then
   * one fg_step (the A/B baseline; outputs are the same). FASTGEN_STEP_OVERLAP=0 makes the
   * library's launch start nothing, which turns the overlap off for every engine of the process.
   */
  overlapSteps?: boolean;
  /**
   * Grammar Workers (threads running XGrammar) of the engine: a pass's masks are split over them
   * by sample and computed at once. 0 = half the host's cores, 1 to 8, with a GPU backend; a
   * quarter, 1 to 4, on the CPU backend (src/grammar/grammarPool.ts defaultGrammarWorkers says why). They start on the first
   * constrained request.
   */
  grammarWorkers: number;
  /**
   * Seconds one structured-output compile may run in a grammar Worker (no vLLM equal). Past it the
   * Worker is ended (nothing else stops XGrammar's WebAssembly), the requests waiting on that
   * compile get 400, the Worker's other constrained samples fail, and the next request starts a
   * new Worker. The clock starts when the Worker starts the compile, not while it waits in line.
   */
  grammarCompileTimeout: number;
}

export const QUANTIZATION_METHODS = ["none", "fp8"] as const;
export type QuantizationMethod = (typeof QUANTIZATION_METHODS)[number];
export const KV_CACHE_DTYPES = ["auto", "fp8"] as const;
export type KvCacheDtype = (typeof KV_CACHE_DTYPES)[number];

export const DEFAULT_ENGINE_OPTIONS: EngineOptions = {
  maxBatchTokens: 512,
  maxSeqs: 64,
  kvBlocks: 0,
  blockSize: 0,
  policy: "splitfuse",
  threads: 0,
  kvMemoryMiB: 256,
  memoryFraction: 0.9,
  maxModelLen: 0,
  tensorParallel: 1,
  collectiveTimeout: 120,
  enablePrefixCaching: true,
  speculative: null,
  quantization: "none",
  kvCacheDtype: "auto",
  // absent: on (both backends; the CUDA split path passed test/gpu/overlap.test.ts on an H100)
  overlapSteps: undefined,
  grammarWorkers: 0,
  grammarCompileTimeout: DEFAULT_COMPILE_TIMEOUT_MS / 1000,
};
