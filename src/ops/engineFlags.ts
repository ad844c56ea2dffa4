/**
 * Engine flags shared by `fastgen generate` and `fastgen serve` (and their defaults, which the
 * --help text prints). Parsed values become an `EngineOptions` object.
 */
import type { EngineOptions, KvCacheDtype, PolicyName, QuantizationMethod } from "../engine/options";
import { DEFAULT_ENGINE_OPTIONS, KV_CACHE_DTYPES, POLICY_NAMES, QUANTIZATION_METHODS } from "../engine/options";
import { DEFAULT_SPECULATIVE_CONFIG, parseSpeculativeJson, speculativeConfig } from "../engine/speculative/config";
import type { SpeculativeConfig, SpeculativeMethod } from "../engine/speculative/config";

export const ENGINE_FLAG_SPEC = {
  "max-batch-tokens": { type: "string" },
  "max-seqs": { type: "string" },
  "kv-blocks": { type: "string" },
  "block-size": { type: "string" },
  policy: { type: "string" },
  backend: { type: "string" },
  threads: { type: "string" },
  "gpu-memory-fraction": { type: "string" },
  "max-model-len": { type: "string" },
  "tensor-parallel": { type: "string" },
  "collective-timeout": { type: "string" },
  quantization: { type: "string" },
  "kv-cache-dtype": { type: "string" },
  "grammar-workers": { type: "string" },
  "grammar-compile-timeout": { type: "string" },
  // vLLM's pair: on by default, --no-enable-prefix-caching turns it off.
  "enable-prefix-caching": { type: "boolean" },
  "no-enable-prefix-caching": { type: "boolean" },
  // Speculative decoding: vLLM's --speculative-config JSON, or its keys as flags.
  speculative: { type: "string" },
  "speculative-config": { type: "string" },
  "draft-model": { type: "string" },
  "num-speculative-tokens": { type: "string" },
  "prompt-lookup-max": { type: "string" },
  "prompt-lookup-min": { type: "string" },
  "speculative-disable-by-batch-size": { type: "string" },
  "no-speculative-auto-disable": { type: "boolean" },
} as const;

export const ENGINE_FLAG_HELP = `Engine:
  --max-batch-tokens N   token budget of one forward pass (default ${DEFAULT_ENGINE_OPTIONS.maxBatchTokens})
  --max-seqs N           sequences in one forward pass and running at once (default ${DEFAULT_ENGINE_OPTIONS.maxSeqs});
                         requests take turns sample by sample: a request's later samples (n > 1)
                         give their places to other requests' first ones, recomputed later
  --kv-blocks N          KV cache blocks (default: sized from memory, ${DEFAULT_ENGINE_OPTIONS.kvMemoryMiB} MiB on the CPU)
  --block-size N         tokens per KV block (default: the backend's, 16 on the CPU, by head_dim on CUDA)
  --policy P             ${POLICY_NAMES.join(" | ")} (default ${DEFAULT_ENGINE_OPTIONS.policy})
  --backend B            cpu | cuda (default: cuda when a GPU is visible, else cpu)
  --threads N            CPU backend threads (default: every core)
  --gpu-memory-fraction F  share of free GPU memory after weights for the KV pool (default ${DEFAULT_ENGINE_OPTIONS.memoryFraction})
  --max-model-len N      longest prompt + completion accepted, in tokens; longer requests get 400
                         (default: what the model and the KV pool allow); at most Phi-3's
                         original_max_position_embeddings selects its short LongRoPE factors
  --tensor-parallel N    split the model over N GPUs (CUDA devices 0..N-1, NCCL) (default 1)
  --collective-timeout S seconds a pass may wait on the other GPUs before the engine reports a
                         failure instead of hanging (default ${DEFAULT_ENGINE_OPTIONS.collectiveTimeout})
  --quantization Q       none | fp8: quantize a bf16/fp16/fp32 checkpoint's attention and MLP
                         weights to FP8 E4M3 per output channel at load (default none; FP8
                         checkpoints load as they are either way)
  --kv-cache-dtype D     auto | fp8: keep K/V as FP8 E4M3 with the checkpoint's k_scale/v_scale
                         (1.0 without): twice the KV blocks on CUDA (default auto: the model's dtype)
  --grammar-workers N    threads computing structured-output masks (XGrammar), a pass's masks
                         split over them (default 0: a quarter of the cores, 1 to 4)
  --grammar-compile-timeout S
                         seconds one structured-output compile may run; past it the request gets
                         400 and its grammar worker is replaced (default ${DEFAULT_ENGINE_OPTIONS.grammarCompileTimeout})
  --enable-prefix-caching / --no-enable-prefix-caching
                         reuse the KV blocks of prompt prefixes computed before (default on);
                         requests share blocks only with equal cache_salt
  --speculative M        speculative decoding: ngram (prompt lookup) | draft (with --draft-model)
  --draft-model DIR      draft model of the same vocabulary (implies --speculative draft)
  --num-speculative-tokens K  most tokens proposed per sequence per pass; k adapts per sequence
                         to its acceptance (default ${DEFAULT_SPECULATIVE_CONFIG.numSpeculativeTokens})
  --prompt-lookup-max N / --prompt-lookup-min N
                         ngram: longest / shortest suffix looked up (default ${DEFAULT_SPECULATIVE_CONFIG.promptLookupMax} / ${DEFAULT_SPECULATIVE_CONFIG.promptLookupMin})
  --speculative-disable-by-batch-size N
                         no drafts in a pass of N decodes or more (default ${DEFAULT_SPECULATIVE_CONFIG.disableByBatchSize})
  --no-speculative-auto-disable
                         speculate in every eligible pass; by default each batch size speculates
                         only while timed passes show it pays (auto_disable in the JSON)
  --speculative-config JSON
                         vLLM's form: {"method": "ngram", "num_speculative_tokens": 4,
                         "prompt_lookup_max": 4, "prompt_lookup_min": 2, "disable_by_batch_size": 8}
                         or {"method": "draft_model", "model": DIR}; the flags above override it`;

/** Thrown for a bad command line; the CLI prints the message and exits with status 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Parses a positive integer flag value or throws a UsageError naming the flag. */
export function intFlag(name: string, value: string | undefined, min = 1): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got "${value}"`);
  return n;
}

/** Parses a float flag value (finite) or throws a UsageError naming the flag. */
export function floatFlag(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got "${value}"`);
  return n;
}

/** Parses a flag value > 0 or throws a UsageError naming the flag. */
function positiveFlag(name: string, value: string | undefined): number | undefined {
  const f = floatFlag(name, value);
  if (f !== undefined && !(f > 0)) throw new UsageError(`--${name} must be > 0, got "${value}"`);
  return f;
}

/** Parses a flag value in (0, 1] or throws a UsageError naming the flag. */
function fractionFlag(name: string, value: string | undefined): number | undefined {
  const f = floatFlag(name, value);
  if (f !== undefined && !(f > 0 && f <= 1)) throw new UsageError(`--${name} must be in (0, 1], got "${value}"`);
  return f;
}

/** Engine options from parsed flag values (undefined flags keep the defaults). */
export function engineOptionsFromFlags(v: Record<string, unknown>): Partial<EngineOptions> {
  const s = (k: string) => v[k] as string | undefined;
  const policy = s("policy");
  if (policy !== undefined && !POLICY_NAMES.includes(policy as PolicyName))
    throw new UsageError(`--policy must be one of ${POLICY_NAMES.join(", ")}, got "${policy}"`);
  const backend = s("backend");
  if (backend !== undefined && backend !== "cpu" && backend !== "cuda")
    throw new UsageError(`--backend must be cpu or cuda, got "${backend}"`);
  const quantization = quantizationFlag(s("quantization"));
  const kvCacheDtype = s("kv-cache-dtype");
  // vLLM spells E4M3 "fp8" or "fp8_e4m3"
  const kvDtype = kvCacheDtype === "fp8_e4m3" ? "fp8" : kvCacheDtype;
  if (kvDtype !== undefined && !KV_CACHE_DTYPES.includes(kvDtype as KvCacheDtype))
    throw new UsageError(`--kv-cache-dtype must be one of ${KV_CACHE_DTYPES.join(", ")} (fp8 = E4M3), got "${kvCacheDtype}"`);
  if (v["enable-prefix-caching"] === true && v["no-enable-prefix-caching"] === true)
    throw new UsageError("--enable-prefix-caching and --no-enable-prefix-caching contradict each other");
  const out: Partial<EngineOptions> = {
    maxBatchTokens: intFlag("max-batch-tokens", s("max-batch-tokens")),
    maxSeqs: intFlag("max-seqs", s("max-seqs")),
    kvBlocks: intFlag("kv-blocks", s("kv-blocks")),
    blockSize: intFlag("block-size", s("block-size")),
    policy: policy as PolicyName | undefined,
    backend: backend as "cpu" | "cuda" | undefined,
    threads: intFlag("threads", s("threads")),
    memoryFraction: fractionFlag("gpu-memory-fraction", s("gpu-memory-fraction")),
    maxModelLen: intFlag("max-model-len", s("max-model-len")),
    tensorParallel: intFlag("tensor-parallel", s("tensor-parallel")),
    collectiveTimeout: positiveFlag("collective-timeout", s("collective-timeout")),
    enablePrefixCaching: v["no-enable-prefix-caching"] === true ? false : v["enable-prefix-caching"] === true ? true : undefined,
    speculative: speculativeFromFlags(s, v["no-speculative-auto-disable"] === true),
    quantization,
    kvCacheDtype: kvDtype as KvCacheDtype | undefined,
    grammarWorkers: intFlag("grammar-workers", s("grammar-workers"), 0), // 0: the default
    grammarCompileTimeout: positiveFlag("grammar-compile-timeout", s("grammar-compile-timeout")),
  };
  for (const k of Object.keys(out) as (keyof EngineOptions)[]) if (out[k] === undefined) delete out[k];
  return out;
}

/** --quantization: fp8 or none; any other method is named as unsupported. */
function quantizationFlag(q: string | undefined): QuantizationMethod | undefined {
  if (q === undefined || QUANTIZATION_METHODS.includes(q as QuantizationMethod)) return q as QuantizationMethod | undefined;
  throw new UsageError(
    `--quantization ${q} is not supported; supported: ${QUANTIZATION_METHODS.join(", ")} (FP8 E4M3 per output channel). ` +
      "Pre-quantized FP8 checkpoints (quant_method fp8, compressed-tensors float-quantized) load without the flag",
  );
}

/** The speculative config the flags ask for; undefined when none of them is given. */
function speculativeFromFlags(s: (k: string) => string | undefined, noAutoDisable: boolean): SpeculativeConfig | undefined {
  const json = s("speculative-config");
  const given: Partial<SpeculativeConfig> = json === undefined ? {} : wrap(() => parseSpeculativeJson(json));
  const flags: Partial<Record<keyof SpeculativeConfig, unknown>> = {
    method: s("speculative") as SpeculativeMethod | undefined,
    draftModel: s("draft-model"),
    numSpeculativeTokens: intFlag("num-speculative-tokens", s("num-speculative-tokens")),
    promptLookupMax: intFlag("prompt-lookup-max", s("prompt-lookup-max")),
    promptLookupMin: intFlag("prompt-lookup-min", s("prompt-lookup-min")),
    disableByBatchSize: intFlag("speculative-disable-by-batch-size", s("speculative-disable-by-batch-size")),
    autoDisable: noAutoDisable ? false : undefined,
  };
  const merged: Record<string, unknown> = { ...given };
  for (const [k, v] of Object.entries(flags)) if (v !== undefined) merged[k] = v;
  if (Object.keys(merged).length === 0) return undefined;
  return wrap(() => speculativeConfig(merged as Partial<SpeculativeConfig>));
}

function wrap<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}
