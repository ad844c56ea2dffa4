/**
 * Loading a model directory into a native engine: the backend it runs on (asked, $FASTGEN_BACKEND,
 * or CUDA when a device is visible with a CPU fallback), its weights, its KV pool, and the
 * speculator the options ask for. EngineCore.load() builds the engine on what this returns.
 */
import { KV_CACHE_DTYPES, QUANTIZATION_METHODS, type EngineOptions } from "./options";
import { createSpeculator } from "./speculative/create";
import type { Speculator } from "./speculative/speculator";
import { FastgenError, NativeEngine, cudaDeviceCount, setNumThreads } from "../native";
import type { ModelSpec } from "../native/modelSpec";
import { loadWeights, openModelDir } from "../model/load";
import { modelNameOf } from "../model/modelName";
import { Tokenizer } from "../tokenizer/tokenizer";
import { envVar } from "../envVars";

/** A model loaded and ready to step; the caller owns `native` (and `speculator`) and destroys them. */
export interface LoadedModel {
  readonly native: NativeEngine;
  readonly tokenizer: Tokenizer;
  readonly modelName: string;
  /** The resolved model directory. */
  readonly modelDir: string;
  /** Longest prompt + generation served: see {@link contextLength}. */
  readonly maxModelLen: number;
  readonly speculator: Speculator | null;
}

/** Loads `modelDir` (config, weights, tokenizer) into a native engine and sizes its KV pool. */
export function loadModel(modelDir: string, opts: EngineOptions, onProgress?: (done: number, total: number) => void): LoadedModel {
  checkQuantizationOptions(opts);
  // The cap is known now; the pool's limit only after finalize (Phi-3's LongRoPE list is picked
  // from the cap, else from max_position_embeddings).
  const model = openModelDir(modelDir, { maxModelLen: opts.maxModelLen });
  const tokenizer = Tokenizer.fromDir(model.dir);
  if (opts.threads > 0) setNumThreads(opts.threads);
  // --quantization fp8 quantizes a plain checkpoint at load; an FP8 checkpoint keeps its own scheme.
  const quantize = (opts.quantization ?? "none") === "fp8" && !model.quantization;
  const native = createNative(
    {
      ...model.spec, tensor_parallel: opts.tensorParallel, collective_timeout_ms: Math.round(opts.collectiveTimeout * 1000),
      ...(quantize ? { quantization: "fp8" as const } : {}),
    },
    opts.backend,
  );
  let maxModelLen: number;
  try {
    loadWeights(model, native, onProgress);
    const fp8Kv = opts.kvCacheDtype === "fp8";
    native.finalize({
      blockSize: opts.blockSize,
      numBlocks: opts.kvBlocks,
      maxKvBytes: opts.kvMemoryMiB * 2 ** 20,
      memoryFraction: opts.memoryFraction,
      kvCacheDtype: fp8Kv ? "fp8" : "auto",
      ...(fp8Kv ? model.kvCacheScales() ?? {} : {}),
    });
    maxModelLen = contextLength(native, opts.maxModelLen); // a cap above what fits fails here, not per request
  } catch (e) {
    native.destroy();
    throw e;
  } finally {
    model.close();
  }
  let speculator: Speculator | null = null;
  try {
    if (opts.speculative) speculator = createSpeculator(opts.speculative, opts, native.info().vocabSize, { eosTokenIds: tokenizer.eosTokenIds, maxModelLen });
  } catch (e) {
    native.destroy();
    throw e;
  }
  return { native, tokenizer, modelName: modelNameOf(model.dir), modelDir: model.dir, maxModelLen, speculator };
}

/** --quantization / --kv-cache-dtype as pipeline() may pass them (the CLI checked its flags already). */
function checkQuantizationOptions(opts: Partial<EngineOptions>): void {
  const q = opts.quantization ?? "none", kv = opts.kvCacheDtype ?? "auto";
  if (!QUANTIZATION_METHODS.includes(q))
    throw new Error(`quantization ${JSON.stringify(q)} is not supported; supported: ${QUANTIZATION_METHODS.join(", ")} (FP8 checkpoints load as they are)`);
  if (!KV_CACHE_DTYPES.includes(kv))
    throw new Error(`kv cache dtype ${JSON.stringify(kv)} is not supported; supported: ${KV_CACHE_DTYPES.join(", ")}`);
}

/** The context the engine serves: the model's and the KV pool's limit, or `cap` (0 = none) below it. */
function contextLength(native: NativeEngine, cap: number): number {
  const info = native.info();
  const pool = info.numBlocks * info.blockSize;
  const most = Math.min(info.maxPositionEmbeddings, pool);
  if (cap > most)
    throw new Error(
      `max model length ${cap} is more than this engine can hold: ${most} tokens ` +
        `(max_position_embeddings ${info.maxPositionEmbeddings}, KV pool ${pool} tokens)`,
    );
  return cap > 0 ? cap : most;
}

/**
 * The engine on the asked backend (or $FASTGEN_BACKEND); with neither, CUDA where a device is visible, falling back
 * to the CPU (with a note on stderr) for a model the CUDA backend does not support yet.
 */
function createNative(spec: ModelSpec, asked: "cpu" | "cuda" | undefined): NativeEngine {
  const env = envVar("FASTGEN_BACKEND");
  // tensor parallelism is CUDA-only: no quiet fallback to one CPU rank
  if (!asked && (spec.tensor_parallel ?? 1) > 1) return NativeEngine.create(spec, "cuda");
  const backend = asked ?? (env === "cpu" || env === "cuda" ? env : undefined);
  if (backend) return NativeEngine.create(spec, backend);
  if (cudaDeviceCount() === 0) return NativeEngine.create(spec, "cpu");
  try {
    return NativeEngine.create(spec, "cuda");
  } catch (e) {
    // FP8 asked for on a GPU without FP8 tensor cores is an error naming the GPU, not a quiet CPU run
    if (!(e instanceof FastgenError) || e.code !== "unsupported" || spec.quantization === "fp8") throw e;
    console.error(`fastgen: ${e.message}; running on the CPU backend`);
    return NativeEngine.create(spec, "cpu");
  }
}
