/**
 * Hugging Face `config.json` -> normalized {@link ModelSpec}.
 *
 * Reads both the transformers v4 keys (`rope_theta`, `rope_scaling` with "type" or "rope_type")
 * and the v5 key `rope_parameters` (which carries `rope_theta` itself). Defaults follow the
 * transformers config classes of each architecture, so a sparse config means what it means there.
 */
import type { ModelSpec, RopeScaling } from "./spec";

/** A config.json this build cannot turn into a spec: unsupported model or feature, bad field. */
export class ModelConfigError extends Error {
  override name = "ModelConfigError";
}

/** model_type values {@link configToSpec} understands. */
export const SUPPORTED_MODEL_TYPES = ["llama", "mistral", "qwen2"] as const;

type Json = Record<string, unknown>;

/** Per-architecture transformers defaults for keys a config may leave out. */
const DEFAULTS: Record<string, { maxPositions: number; slidingWindow: number }> = {
  llama: { maxPositions: 2048, slidingWindow: 0 },
  // MistralConfig defaults sliding_window to 4096 when the key is absent (null means none).
  mistral: { maxPositions: 4096 * 32, slidingWindow: 4096 },
  qwen2: { maxPositions: 32768, slidingWindow: 0 },
};

/**
 * Normalizes a parsed config.json into the spec libfastgen's generic decoder block runs.
 * @throws ModelConfigError naming the unsupported model_type/feature or the missing/bad field.
 */
export function configToSpec(config: object): ModelSpec {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new ModelConfigError("config.json must hold a JSON object");
  }
  const cfg = config as Json;
  const arch = cfg.model_type;
  if (arch === undefined || arch === null) throw missing("model_type");
  if (typeof arch !== "string" || !(arch in DEFAULTS)) {
    throw new ModelConfigError(
      `unsupported model_type ${JSON.stringify(arch)}; supported: ${SUPPORTED_MODEL_TYPES.join(", ")}`,
    );
  }
  const defaults = DEFAULTS[arch]!;

  const hidden = requireInt(cfg, "hidden_size");
  const heads = requireInt(cfg, "num_attention_heads");
  const kvHeads = optionalInt(cfg, "num_key_value_heads") ?? heads;
  if (heads % kvHeads !== 0) {
    throw new ModelConfigError(
      `num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`,
    );
  }
  let headDim = optionalInt(cfg, "head_dim");
  if (headDim === undefined) {
    if (hidden % heads !== 0) {
      throw new ModelConfigError(
        `head_dim is absent and hidden_size (${hidden}) is not a multiple of num_attention_heads (${heads})`,
      );
    }
    headDim = hidden / heads;
  }

  const rope = readRope(cfg);
  const attentionBias = optionalBool(cfg, "attention_bias") ?? false;
  const numLayers = requireInt(cfg, "num_hidden_layers");

  return {
    arch,
    vocab_size: requireInt(cfg, "vocab_size"),
    hidden_size: hidden,
    intermediate_size: requireInt(cfg, "intermediate_size"),
    num_layers: numLayers,
    num_heads: heads,
    num_kv_heads: kvHeads,
    head_dim: headDim,
    max_position_embeddings: optionalInt(cfg, "max_position_embeddings") ?? defaults.maxPositions,
    norm: "rms",
    norm_eps: optionalNumber(cfg, "rms_norm_eps") ?? 1e-6,
    positions: "rope",
    rope_theta: rope.theta,
    partial_rotary_factor: rope.partialRotaryFactor,
    rope_scaling: rope.scaling,
    sliding_window: slidingWindow(cfg, arch, numLayers, defaults.slidingWindow),
    // Qwen2 always has q/k/v biases; Llama's attention_bias adds them to q, k, v and o alike.
    qkv_bias: arch === "qwen2" ? true : arch === "llama" && attentionBias,
    o_bias: arch === "llama" && attentionBias,
    mlp_bias: arch === "llama" && (optionalBool(cfg, "mlp_bias") ?? false),
    lm_head_bias: false,
    mlp: activation(cfg),
    layout: "sequential",
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? false,
  };
}

function activation(cfg: Json): ModelSpec["mlp"] {
  const act = cfg.hidden_act ?? "silu";
  if (act === "silu" || act === "swish") return "gated_silu";
  if (typeof act === "string" && act.startsWith("gelu")) return "gated_gelu";
  throw new ModelConfigError(
    `unsupported hidden_act ${JSON.stringify(act)}; supported: silu, gelu*`,
  );
}

/** Mistral: sliding_window as given (null = none). Qwen2: only with use_sliding_window. */
function slidingWindow(cfg: Json, arch: string, numLayers: number, dflt: number): number {
  if (arch === "llama") return 0;
  if (arch === "qwen2" && cfg.use_sliding_window !== true) return 0;
  const raw = "sliding_window" in cfg ? cfg.sliding_window : dflt;
  if (raw === null || raw === undefined || raw === 0) return 0;
  const window = optionalInt({ sliding_window: raw }, "sliding_window")!;
  if (arch === "qwen2") {
    // Qwen2 applies the window only to layers i >= max_window_layers (or per layer_types).
    const types = cfg.layer_types;
    let sliding: number;
    if (Array.isArray(types)) {
      sliding = types.filter((t) => t === "sliding_attention").length;
    } else {
      const full = optionalInt(cfg, "max_window_layers", 0) ?? 28;
      sliding = Math.max(0, numLayers - full);
    }
    if (sliding === 0) return 0;
    if (sliding !== numLayers) {
      throw new ModelConfigError(
        `unsupported: sliding window on ${sliding} of ${numLayers} layers (max_window_layers/layer_types); ` +
          "the spec has one sliding_window for every layer",
      );
    }
  }
  return window;
}

interface Rope {
  theta: number;
  partialRotaryFactor: number;
  scaling: RopeScaling | null;
}

/** rope_parameters (transformers v5) wins over rope_theta + rope_scaling (v4). */
function readRope(cfg: Json): Rope {
  const params = cfg.rope_parameters ?? cfg.rope_scaling ?? null;
  const key = cfg.rope_parameters != null ? "rope_parameters" : "rope_scaling";
  if (params !== null && (typeof params !== "object" || Array.isArray(params))) {
    throw new ModelConfigError(`${key} must be an object or null`);
  }
  const p = (params ?? {}) as Json;
  const theta = optionalNumber(p, "rope_theta", key) ?? optionalNumber(cfg, "rope_theta") ?? 10000;
  const partialRotaryFactor =
    optionalNumber(p, "partial_rotary_factor", key) ??
    optionalNumber(cfg, "partial_rotary_factor") ??
    1.0;
  const type = p.rope_type ?? p.type ?? "default";
  let scaling: RopeScaling | null;
  if (type === "default") {
    scaling = null;
  } else if (type === "linear") {
    scaling = { type: "linear", factor: requireNumber(p, "factor", key) };
  } else if (type === "llama3") {
    scaling = {
      type: "llama3",
      factor: requireNumber(p, "factor", key),
      low_freq_factor: requireNumber(p, "low_freq_factor", key),
      high_freq_factor: requireNumber(p, "high_freq_factor", key),
      original_max_position_embeddings: requireNumber(p, "original_max_position_embeddings", key),
    };
  } else {
    throw new ModelConfigError(
      `unsupported rope scaling ${JSON.stringify(type)} in ${key}; supported: default, linear, llama3`,
    );
  }
  return { theta, partialRotaryFactor, scaling };
}

function missing(field: string, where?: string): ModelConfigError {
  return new ModelConfigError(`config.json is missing required field ${where ? `${where}.` : ""}${field}`);
}

function optionalNumber(obj: Json, field: string, where?: string): number | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ModelConfigError(
      `config.json field ${where ? `${where}.` : ""}${field} must be a number, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function requireNumber(obj: Json, field: string, where?: string): number {
  const v = optionalNumber(obj, field, where);
  if (v === undefined) throw missing(field, where);
  return v;
}

function optionalInt(obj: Json, field: string, min = 1): number | undefined {
  const v = optionalNumber(obj, field);
  if (v !== undefined && (!Number.isInteger(v) || v < min)) {
    const what = min === 1 ? "a positive integer" : `an integer >= ${min}`;
    throw new ModelConfigError(`config.json field ${field} must be ${what}, got ${v}`);
  }
  return v;
}

function requireInt(obj: Json, field: string): number {
  const v = optionalInt(obj, field);
  if (v === undefined) throw missing(field);
  return v;
}

function optionalBool(obj: Json, field: string): boolean | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") {
    throw new ModelConfigError(`config.json field ${field} must be a boolean, got ${JSON.stringify(v)}`);
  }
  return v;
}
