/**
 * config.json's `quantization_config` (or `compression_config`) -> the FP8 scheme the loader
 * reads, or a ModelLoadError naming what is supported. A quantization config is never ignored:
 * weights stored in a format the engine cannot read would otherwise load as garbage or as a
 * confusing "missing tensor".
 *
 * Supported, all FP8 E4M3 weights (safetensors F8_E4M3) with fp32/bf16/f16 scales that multiply:
 *   quant_method "fp8"         weight_scale per tensor ([] or [1]) or per output channel ([rows, 1]
 *                              or [rows]); or, with weight_block_size [bm, bn], weight_scale_inv
 *                              [ceil(rows/bm), ceil(cols/bn)] (DeepSeek-V3, Qwen3-FP8).
 *                              activation_scheme "dynamic" | "static" (input_scale per tensor);
 *                              ignored_layers / modules_to_not_convert stay unquantized
 *   quant_method "fbgemm_fp8"  per-channel weight_scale, dynamic per-token activations
 *   quant_method "compressed-tensors" (llm-compressor), format "float-quantized" or
 *                              "naive-quantized": config_groups whose weights are
 *                              {num_bits: 8, type: "float", strategy: "tensor" | "channel" |
 *                              "block" (block_structure [bm, bn])} and whose input_activations are
 *                              null, dynamic per token, or static per tensor; `ignore` (["lm_head"])
 *
 * Activation quantization (dynamic or static input_scale) is recorded for the GPU's W8A8 GEMMs;
 * the CPU reference never quantizes activations (weight-only semantics).
 */
import { ModelLoadError } from "./errors";

type Json = Record<string, unknown>;

/** What a checkpoint's FP8 quantization config says, normalized. */
export interface Fp8Scheme {
  /** quant_method as written. */
  method: "fp8" | "fbgemm_fp8" | "compressed-tensors";
  /** Weight scale granularity; "auto": per tensor or per channel, from each scale's shape. */
  weights: "tensor" | "channel" | "block" | "auto";
  /** [rows, cols] of one scale block (weights "block", or a block group among others). */
  blockSize?: [number, number];
  /** "dynamic": per-token scales at run time; "static": the checkpoint's input_scale; null: weights only. */
  activations: "dynamic" | "static" | null;
  /** Modules the config leaves unquantized (names or "re:" patterns), as written. */
  ignore: string[];
}

export const SUPPORTED_QUANTIZATION =
  'quant_method "fp8" (F8_E4M3 weights with weight_scale per tensor or per channel, or weight_scale_inv ' +
  'with weight_block_size), "fbgemm_fp8", and "compressed-tensors" in format float-quantized or ' +
  "naive-quantized with 8-bit float weights (strategy tensor, channel or block)";

function fail(what: string): never {
  throw new ModelLoadError(`${what}; supported: ${SUPPORTED_QUANTIZATION}`);
}

function isObject(v: unknown): v is Json {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function stringList(q: Json, key: string, where: string): string[] {
  const v = q[key];
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string"))
    throw new ModelLoadError(`${where}.${key} must be a list of module names, got ${JSON.stringify(v)}`);
  return v;
}

function blockOf(v: unknown, where: string): [number, number] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isInteger(x) && x > 0))
    throw new ModelLoadError(`${where} must be [rows, cols] of positive integers, got ${JSON.stringify(v)}`);
  return [v[0], v[1]];
}

/**
 * The FP8 scheme of a parsed config.json; null when it has no quantization config.
 * @throws ModelLoadError for any other method, format or scheme, naming what is supported.
 */
export function readQuantization(config: Json): Fp8Scheme | null {
  const key = config.quantization_config != null ? "quantization_config" : "compression_config";
  const q = config[key];
  if (q === undefined || q === null) return null;
  if (!isObject(q)) throw new ModelLoadError(`config.json ${key} must be an object, got ${JSON.stringify(q)}`);
  const method = q.quant_method;
  if (method === "fp8" || method === "fbgemm_fp8") return fp8Config(q, method, key);
  if (method === "compressed-tensors") return compressedTensors(q, key);
  if (method === undefined && isObject(q.config_groups)) return compressedTensors(q, key);  // older llm-compressor
  if (method === undefined) fail(`config.json ${key} has no quant_method`);
  fail(`config.json ${key} has quant_method ${JSON.stringify(method)}, which this engine cannot load`);
}

function fp8Config(q: Json, method: "fp8" | "fbgemm_fp8", where: string): Fp8Scheme {
  const fmt = q.fmt ?? "e4m3";
  if (fmt !== "e4m3") fail(`${where}.fmt ${JSON.stringify(fmt)}: only E4M3 FP8 weights are supported`);
  const scheme = method === "fbgemm_fp8" ? "dynamic" : q.activation_scheme ?? "dynamic";
  if (scheme !== "dynamic" && scheme !== "static")
    fail(`${where}.activation_scheme ${JSON.stringify(scheme)} is neither "dynamic" nor "static"`);
  const blockSize = blockOf(q.weight_block_size, `${where}.weight_block_size`);
  if (blockSize && scheme === "static")
    fail(`${where}: block-wise weights (weight_block_size) with static activation scales`);
  return {
    method,
    weights: method === "fbgemm_fp8" ? "channel" : blockSize ? "block" : "auto",
    ...(blockSize ? { blockSize } : {}),
    activations: scheme,
    ignore: [...stringList(q, "ignored_layers", where), ...stringList(q, "modules_to_not_convert", where)],
  };
}

function compressedTensors(q: Json, where: string): Fp8Scheme {
  const groups = q.config_groups;
  if (!isObject(groups) || Object.keys(groups).length === 0)
    fail(`${where}: compressed-tensors without config_groups`);
  if (isObject(q.sparsity_config) && q.sparsity_config.format !== undefined && q.sparsity_config.format !== "dense")
    fail(`${where}.sparsity_config: sparse compressed-tensors checkpoints (format ${JSON.stringify(q.sparsity_config.format)})`);
  const kv = q.kv_cache_scheme;
  if (kv !== undefined && kv !== null && !(isObject(kv) && kv.num_bits === 8 && kv.type === "float"))
    fail(`${where}.kv_cache_scheme ${JSON.stringify(kv)}: only an 8-bit float KV cache scheme`);
  const strategies = new Set<Fp8Scheme["weights"]>();
  const activations = new Set<Fp8Scheme["activations"]>();
  let blockSize: [number, number] | undefined;
  for (const [name, group] of Object.entries(groups)) {
    const at = `${where}.config_groups.${name}`;
    if (!isObject(group)) fail(`${at} is not an object`);
    const format = group.format ?? q.format;
    if (format !== "float-quantized" && format !== "naive-quantized")
      fail(`${at}: compressed-tensors format ${JSON.stringify(format)}`);
    const w = group.weights;
    if (!isObject(w)) fail(`${at}.weights is ${JSON.stringify(w)}: activation-only quantization`);
    if (w.num_bits !== 8 || w.type !== "float")
      fail(`${at}.weights is ${w.num_bits}-bit ${JSON.stringify(w.type)} (${w.type === "int" ? "INT" : "not FP"}${w.num_bits} weights)`);
    if (w.dynamic === true) fail(`${at}.weights: dynamic weight scales`);
    if (w.strategy !== "tensor" && w.strategy !== "channel" && w.strategy !== "block")
      fail(`${at}.weights.strategy ${JSON.stringify(w.strategy)}`);
    if (w.strategy === "block") {
      const b = blockOf(w.block_structure, `${at}.weights.block_structure`);
      if (!b) fail(`${at}.weights: strategy "block" without block_structure`);
      if (blockSize && (blockSize[0] !== b[0] || blockSize[1] !== b[1])) fail(`${at}: two different weight block sizes`);
      blockSize = b;
    }
    strategies.add(w.strategy);
    activations.add(inputActivations(group.input_activations, `${at}.input_activations`));
    if (group.output_activations !== undefined && group.output_activations !== null)
      fail(`${at}.output_activations: quantized outputs`);
  }
  if (activations.size > 1) fail(`${where}: config groups that mix activation schemes`);
  return {
    method: "compressed-tensors",
    weights: strategies.size === 1 ? [...strategies][0]! : "auto",
    ...(blockSize ? { blockSize } : {}),
    activations: [...activations][0]!,
    ignore: stringList(q, "ignore", where),
  };
}

function inputActivations(a: unknown, at: string): Fp8Scheme["activations"] {
  if (a === undefined || a === null) return null;
  if (!isObject(a)) fail(`${at} is ${JSON.stringify(a)}`);
  if (a.num_bits !== 8 || a.type !== "float") fail(`${at} is ${a.num_bits}-bit ${JSON.stringify(a.type)}`);
  if (a.dynamic === true && (a.strategy === "token" || a.strategy === "tensor")) return "dynamic";
  if (a.dynamic !== true && a.strategy === "tensor") return "static";
  fail(`${at}: ${a.dynamic === true ? "dynamic" : "static"} strategy ${JSON.stringify(a.strategy)}`);
}

/** One line for logs: "FP8 (compressed-tensors, channel weights, dynamic activations)". */
export function describeScheme(s: Fp8Scheme): string {
  const weights = s.weights === "block" ? `block ${s.blockSize!.join("x")}` : s.weights === "auto" ? "per-tensor/channel" : s.weights;
  const act = s.activations ? `${s.activations} activations` : "weight-only";
  return `FP8 (${s.method}, ${weights} weights, ${act})`;
}
