/**
 * A Hugging Face model directory: config.json -> spec, safetensors -> canonical tensors.
 *
 *   dir/config.json                     required
 *   dir/model.safetensors               or model.safetensors.index.json + shards
 *   dir/tokenizer.json                  optional here (the tokenizer wants it)
 *
 * An FP8 checkpoint (config.json quantization_config, src/model/quantization.ts) gives its F8_E4M3
 * weights with their scales (fp8Tensors.ts); any other quantization config is refused here.
 *
 * Opening checks everything that headers can tell (names, shapes, required tensors), so a bad
 * directory fails in milliseconds; {@link loadWeights} then streams the bytes to the engine.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { ModelConfigError, configToSpec, type SpecOptions } from "./config";
import { Fp8Tensors, indexFp8 } from "./fp8Tensors";
import { type Fp8Scheme, readQuantization } from "./quantization";
import { openSafetensorsDir } from "./safetensors";
import type { DType, SafetensorsSet, TensorView } from "./safetensors";
import type { ModelSpec } from "../native/modelSpec";
import type { WeightScales } from "../native/types";
import { ModelLoadError, mapWeights, sliceRows } from "./weights";
import type { WeightMapping } from "./weights";

export { ModelLoadError };

/** One tensor ready for the engine: canonical name plus the HF name it came from. */
export interface CanonicalTensor {
  hfName: string;
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
  /** An F8_E4M3 tensor's scales. */
  scales?: WeightScales;
}

/** An opened model directory. Call {@link close} when its tensors are loaded. */
export interface ModelDir {
  dir: string;
  /** config.json as parsed. */
  config: Record<string, unknown>;
  spec: ModelSpec;
  /** Canonical tensors in file order; data is read (mapped) lazily, one tensor at a time. */
  tensors(): Iterable<CanonicalTensor>;
  /** Number of tensors {@link tensors} yields. */
  numTensors: number;
  /** HF tensors the engine does not use (rotary inv_freq, a tied lm_head, ...). */
  skipped: string[];
  /** dir/tokenizer.json, or null when the directory has none. */
  tokenizerPath: string | null;
  /** The checkpoint's FP8 scheme (its weights come quantized), or null for a plain checkpoint. */
  quantization: Fp8Scheme | null;
  /** The checkpoint's per-layer K/V cache scales (1.0 where a layer has none), or null when it has none. */
  kvCacheScales(): { kScales: Float32Array; vScales: Float32Array } | null;
  close(): void;
}

/** What {@link loadWeights} feeds; NativeEngine implements it. */
export interface TensorSink {
  loadTensor(name: string, dtype: DType, shape: number[], data: Uint8Array, scales?: WeightScales): void;
}

/**
 * Opens `dir`: parses config.json, maps every tensor header onto the spec.
 * @param opts what the engine knows beside config.json (configToSpec).
 * @throws ModelLoadError (missing dir/config/weights, bad tensors), ModelConfigError
 *   (unsupported config), SafetensorsError (corrupt weight files).
 */
export function openModelDir(dir: string, opts: SpecOptions = {}): ModelDir {
  dir = resolve(dir);
  if (!existsSync(dir)) throw new ModelLoadError(`model directory ${dir} does not exist`);
  if (!statSync(dir).isDirectory()) throw new ModelLoadError(`model path ${dir} is not a directory`);
  const config = readConfig(dir);
  const quantization = readQuantizationOf(dir, config);
  let spec: ModelSpec;
  try {
    spec = configToSpec(config, opts);
  } catch (e) {
    if (e instanceof ModelConfigError) throw new ModelConfigError(`${join(dir, "config.json")}: ${e.message}`);
    throw e;
  }

  if (!readdirSync(dir).some((f) => f.endsWith(".safetensors") || f === "model.safetensors.index.json")) {
    throw new ModelLoadError(
      `${dir} has no safetensors weights (model.safetensors or model.safetensors.index.json); ` +
        ".bin/.pth checkpoints are not supported",
    );
  }
  const set: SafetensorsSet = openSafetensorsDir(dir);

  let mapped: WeightMapping[];
  let skipped: string[];
  let fp8: Fp8Tensors | null = null;
  try {
    const { tensors: headers, index } = indexFp8([...set.files].flatMap((f) => [...f.infos.values()]), quantization);
    if (quantization) fp8 = new Fp8Tensors(set, quantization, index);
    ({ mapped, skipped } = mapWeights(spec, headers));
  } catch (e) {
    set.close();
    if (e instanceof ModelLoadError) throw new ModelLoadError(`${dir}: ${e.message}`);
    throw e;
  }

  const tokenizerPath = join(dir, "tokenizer.json");
  return {
    dir,
    config,
    spec,
    numTensors: mapped.length,
    skipped,
    tokenizerPath: existsSync(tokenizerPath) ? tokenizerPath : null,
    quantization,
    kvCacheScales: () => fp8?.kvCacheScales(spec.num_layers) ?? null,
    *tensors() {
      let view = null as TensorView | null;  // pieces of one fused tensor are consecutive: read it once
      let scalesOf: ((rows?: [number, number][]) => WeightScales) | null = null;
      for (const { hfName, name, shape, rows } of mapped) {
        if (view?.name !== hfName) {
          const file = set.tensors.get(hfName)!;
          view = file.get(hfName);
          scalesOf = view.dtype === "F8_E4M3" ? fp8!.scalesOf(file.infos.get(hfName)!) : null;
        }
        // A fused HF tensor (Falcon qkv, stacked experts, ...) gives rows of itself.
        const data = rows ? sliceRows(view.data, rowBytes(view.dtype, view.shape), rows) : view.data;
        yield { hfName, name, dtype: view.dtype, shape, data, ...(scalesOf ? { scales: scalesOf(rows) } : {}) };
      }
    },
    close: () => set.close(),
  };
}

/** Bytes of one row of a tensor: its last dimension (one element for a 1-D tensor). */
function rowBytes(dtype: DType, shape: number[]): number {
  const elem = dtype === "F32" ? 4 : dtype === "F8_E4M3" ? 1 : 2;
  return shape.length >= 2 ? shape[shape.length - 1]! * elem : elem;
}

/** config.json's FP8 scheme; quantized checkpoints of other tools (their own config files) are refused. */
function readQuantizationOf(dir: string, config: Record<string, unknown>): Fp8Scheme | null {
  try {
    for (const f of ["quantize_config.json", "quant_config.json"])
      if (existsSync(join(dir, f)) && config.quantization_config == null)
        throw new ModelLoadError(`${f} marks a quantized checkpoint (GPTQ/AWQ style) that this engine cannot load; it loads FP8 checkpoints`);
    return readQuantization(config);
  } catch (e) {
    if (e instanceof ModelLoadError) throw new ModelLoadError(`${join(dir, "config.json")}: ${e.message}`);
    throw e;
  }
}

function readConfig(dir: string): Record<string, unknown> {
  const path = join(dir, "config.json");
  if (!existsSync(path)) throw new ModelLoadError(`${dir} has no config.json; is it a Hugging Face model directory?`);
  let config: unknown;
  try {
    config = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ModelLoadError(`${path} is not valid JSON: ${(e as Error).message}`);
  }
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new ModelLoadError(`${path} must hold a JSON object`);
  }
  return config as Record<string, unknown>;
}

/**
 * Feeds every canonical tensor of `model` to `sink`, in file order.
 * @param onProgress called after each tensor with (done, total).
 * @throws ModelLoadError naming the HF and canonical tensor when the sink refuses one.
 */
export function loadWeights(
  model: ModelDir,
  sink: TensorSink,
  onProgress?: (done: number, total: number) => void,
): void {
  const total = model.numTensors;
  let done = 0;
  for (const t of model.tensors()) {
    try {
      sink.loadTensor(t.name, t.dtype, t.shape, t.data, t.scales);
    } catch (e) {
      const why = e instanceof Error ? e.message : String(e);
      throw new ModelLoadError(
        `loading ${t.hfName} as ${t.name} (${t.dtype} [${t.shape.join(", ")}]) failed: ${why}`,
        { cause: e },
      );
    }
    onProgress?.(++done, total);
  }
}
