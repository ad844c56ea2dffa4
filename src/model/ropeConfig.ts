/**
 * RoPE settings of a config.json -> the spec's rope_theta, partial_rotary_factor, rope_scaling
 * (and the sliding layers' base). Three shapes carry them:
 *
 *   transformers v4   rope_theta + rope_scaling {type | rope_type, factor, ...}
 *   transformers v5   rope_parameters {rope_type, rope_theta, factor, ...}
 *   v5, per layer     rope_parameters {full_attention: {...}, sliding_attention: {...}} (Gemma 3)
 *
 * The scaling rules follow transformers' modeling_rope_utils; libfastgen's core/rope_freq.cpp
 * turns what this returns into frequencies.
 */
import { type Json, missing, ModelConfigError, optionalBool, optionalNumber, requireNumber } from "./configFields";
import type { RopeScaling } from "../native/modelSpec";

export interface RopeContext {
  /** The architecture's defaults for rope_theta and partial_rotary_factor. */
  theta?: number;
  partialRotaryFactor?: number;
  /** config.max_position_embeddings (or the architecture's default). */
  maxPositions: number;
  /** LongRoPE lists hold int(head_dim * partial_rotary_factor) / 2 factors. */
  headDim: number;
  /** The context the engine will serve (--max-model-len; 0 or absent: maxPositions). Picks LongRoPE's list. */
  servedLength?: number;
  /** Phi-3: rope_scaling types "su" and "yarn" are LongRoPE (Phi3Config's backward compatibility). */
  longropeAliases?: boolean;
  /** The architecture rotates sliding layers with their own base (Gemma 3); elsewhere the two must agree. */
  slidingBase?: boolean;
}

export interface Rope {
  theta: number;
  partialRotaryFactor: number;
  scaling: RopeScaling | null;
  /** Positions the model serves: max_position_embeddings, or the longer context YaRN / dynamic NTK scale to. */
  maxPositions: number;
  /** rope_parameters.sliding_attention's base (per-layer form, slidingBase only). */
  slidingTheta?: number;
}

/**
 * Reads the RoPE of `cfg`: rope_parameters (v5) wins over rope_theta + rope_scaling (v4).
 * @throws ModelConfigError naming the unsupported scaling type or the missing/bad field.
 */
export function readRope(cfg: Json, ctx: RopeContext): Rope {
  const key = cfg.rope_parameters != null ? "rope_parameters" : "rope_scaling";
  const params = cfg.rope_parameters ?? cfg.rope_scaling ?? null;
  if (params !== null && (typeof params !== "object" || Array.isArray(params))) {
    throw new ModelConfigError(`${key} must be an object or null`);
  }
  const p = (params ?? {}) as Json;
  if (!perLayerType(p)) return readOne(cfg, p, key, ctx);

  for (const t of Object.keys(p)) {
    if (t !== "full_attention" && t !== "sliding_attention") {
      throw new ModelConfigError(`unsupported layer type ${JSON.stringify(t)} in ${key}; supported: full_attention, sliding_attention`);
    }
  }
  const fullKey = p.full_attention ? "full_attention" : "sliding_attention";
  const full = readOne(cfg, p[fullKey] as Json, `${key}.${fullKey}`, ctx);
  if (!p.sliding_attention || fullKey === "sliding_attention") return full;
  const sliding = readOne(cfg, p.sliding_attention as Json, `${key}.sliding_attention`, ctx);
  if (ctx.slidingBase) {
    if (sliding.scaling !== null) {
      throw new ModelConfigError(`unsupported: RoPE scaling on sliding layers (${key}.sliding_attention); only full layers scale`);
    }
    return { ...full, slidingTheta: sliding.theta };
  }
  if (sliding.theta !== full.theta || JSON.stringify(sliding.scaling) !== JSON.stringify(full.scaling)) {
    throw new ModelConfigError(
      `unsupported: ${key} gives sliding and full layers different RoPE, which model_type ${JSON.stringify(cfg.model_type)} does not have`,
    );
  }
  return full;
}

/** transformers v5 writes one dict per layer type: every key a layer type ("..._attention"), every value a dict. */
function perLayerType(p: Json): boolean {
  const keys = Object.keys(p);
  return keys.length > 0 && keys.every((k) => k.endsWith("_attention") && p[k] !== null && typeof p[k] === "object");
}

function readOne(cfg: Json, p: Json, key: string, ctx: RopeContext): Rope {
  const theta = optionalNumber(p, "rope_theta", key) ?? optionalNumber(cfg, "rope_theta") ?? ctx.theta ?? 10000;
  const partialRotaryFactor =
    optionalNumber(p, "partial_rotary_factor", key) ?? optionalNumber(cfg, "partial_rotary_factor") ?? ctx.partialRotaryFactor ?? 1.0;
  let type = p.rope_type ?? p.type ?? "default";
  if (ctx.longropeAliases && (type === "su" || type === "yarn")) type = "longrope";
  const base = { theta, partialRotaryFactor, maxPositions: ctx.maxPositions };
  switch (type) {
    case "default":
      return { ...base, scaling: null };
    case "linear":
      return { ...base, scaling: { type: "linear", factor: requireNumber(p, "factor", key) } };
    case "llama3":
      return {
        ...base,
        scaling: {
          type: "llama3",
          factor: requireNumber(p, "factor", key),
          low_freq_factor: requireNumber(p, "low_freq_factor", key),
          high_freq_factor: requireNumber(p, "high_freq_factor", key),
          original_max_position_embeddings: requireNumber(p, "original_max_position_embeddings", key),
        },
      };
    case "yarn":
      return yarn(cfg, p, key, base);
    case "dynamic": {
      const factor = requireNumber(p, "factor", key);
      const original = originalMax(cfg, p, key) ?? ctx.maxPositions;
      const scaling: RopeScaling = { type: "dynamic", factor, original_max_position_embeddings: original };
      // vLLM serves factor x the original length: the base is fixed for that context.
      return { ...base, scaling, maxPositions: Math.max(ctx.maxPositions, Math.floor(original * factor)) };
    }
    case "longrope":
      return { ...base, scaling: longrope(cfg, p, key, ctx, partialRotaryFactor) };
    default:
      throw new ModelConfigError(
        `unsupported rope scaling ${JSON.stringify(type)} in ${key}; supported: default, linear, llama3, yarn, dynamic, longrope`,
      );
  }
}

function originalMax(cfg: Json, p: Json, key: string): number | undefined {
  return optionalNumber(p, "original_max_position_embeddings", key) ?? optionalNumber(cfg, "original_max_position_embeddings");
}

/**
 * YaRN. `factor` is used as given (transformers 5 and vLLM); transformers 4.4x-4.5x instead took
 * max_position_embeddings / original_max_position_embeddings whenever the latter was written.
 */
function yarn(cfg: Json, p: Json, key: string, base: Omit<Rope, "scaling">): Rope {
  const given = originalMax(cfg, p, key);
  const original = given ?? base.maxPositions;
  const factor = optionalNumber(p, "factor", key) ?? (given !== undefined ? base.maxPositions / given : undefined);
  if (factor === undefined) throw missing("factor", key);
  const scaling: RopeScaling = { type: "yarn", factor, original_max_position_embeddings: original };
  // transformers reads beta_fast/beta_slow with `or`: 0 and null mean the defaults (32, 1).
  const betaFast = optionalNumber(p, "beta_fast", key), betaSlow = optionalNumber(p, "beta_slow", key);
  if (betaFast) scaling.beta_fast = betaFast;
  if (betaSlow) scaling.beta_slow = betaSlow;
  const truncate = optionalBool(p, "truncate");
  if (truncate !== undefined) scaling.truncate = truncate;
  for (const f of ["attention_factor", "mscale", "mscale_all_dim"] as const) {
    const v = optionalNumber(p, f, key);
    if (v !== undefined) scaling[f] = v;
  }
  return { ...base, scaling, maxPositions: Math.max(base.maxPositions, Math.floor(original * factor)) };
}

/**
 * Phi-3's LongRoPE: per-frequency divisors, short_factor within the pretraining context and
 * long_factor beyond it. transformers switches lists per forward pass by the longest position;
 * the engine fixes one at load: long iff the served context exceeds original_max_position_embeddings.
 * The attention factor is the same for both lists.
 */
function longrope(cfg: Json, p: Json, key: string, ctx: RopeContext, partialRotaryFactor: number): RopeScaling {
  // Phi-3 writes original_max_position_embeddings at the top level, and there it wins.
  const original =
    optionalNumber(cfg, "original_max_position_embeddings") ??
    optionalNumber(p, "original_max_position_embeddings", key) ??
    ctx.maxPositions;
  const factor = optionalNumber(p, "factor", key) ?? ctx.maxPositions / original;
  const attentionFactor =
    optionalNumber(p, "attention_factor", key) ?? (factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original)));
  const half = Math.trunc(ctx.headDim * partialRotaryFactor) / 2;
  const served = ctx.servedLength || ctx.maxPositions;
  const which = served > original ? "long_factor" : "short_factor";
  const list = p[which];
  if (list === undefined || list === null) throw missing(which, key);
  if (!Array.isArray(list) || list.length !== Math.trunc(half) || !list.every((x) => typeof x === "number" && x > 0)) {
    throw new ModelConfigError(
      `config.json field ${key}.${which} must be a list of ${Math.trunc(half)} positive numbers (rotary dims / 2)`,
    );
  }
  return { type: "longrope", factors: list as number[], attention_factor: attentionFactor };
}
