/**
 * Typed readers for config.json fields, shared by every architecture's normalizer: each names the
 * field (and the object it sits in) when it is missing or malformed.
 */
import { ModelConfigError } from "./errors";
import type { ModelSpec } from "../native/modelSpec";

export { ModelConfigError };

export type Json = Record<string, unknown>;

export function missing(field: string, where?: string): ModelConfigError {
  return new ModelConfigError(`config.json is missing required field ${where ? `${where}.` : ""}${field}`);
}

export function optionalNumber(obj: Json, field: string, where?: string): number | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) {
    throw new ModelConfigError(
      `config.json field ${where ? `${where}.` : ""}${field} must be a number, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

export function requireNumber(obj: Json, field: string, where?: string): number {
  const v = optionalNumber(obj, field, where);
  if (v === undefined) throw missing(field, where);
  return v;
}

export function optionalInt(obj: Json, field: string, min = 1): number | undefined {
  const v = optionalNumber(obj, field);
  if (v !== undefined && (!Number.isInteger(v) || v < min)) {
    const what = min === 1 ? "a positive integer" : `an integer >= ${min}`;
    throw new ModelConfigError(`config.json field ${field} must be ${what}, got ${v}`);
  }
  return v;
}

export function requireInt(obj: Json, field: string): number {
  const v = optionalInt(obj, field);
  if (v === undefined) throw missing(field);
  return v;
}

/** The first of `fields` present (old and new spellings, e.g. n_head / num_attention_heads). */
export function requireIntOf(obj: Json, ...fields: string[]): number {
  for (const f of fields) {
    const v = optionalInt(obj, f);
    if (v !== undefined) return v;
  }
  throw missing(fields.join(" (or ") + ")".repeat(fields.length - 1));
}

export function optionalBool(obj: Json, field: string): boolean | undefined {
  const v = obj[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") {
    throw new ModelConfigError(`config.json field ${field} must be a boolean, got ${JSON.stringify(v)}`);
  }
  return v;
}

/** head_dim from config, else hidden / heads (which must divide). */
export function headDimOf(cfg: Json, hidden: number, heads: number): number {
  const headDim = optionalInt(cfg, "head_dim");
  if (headDim !== undefined) return headDim;
  if (hidden % heads !== 0) {
    throw new ModelConfigError(
      `head_dim is absent and hidden_size (${hidden}) is not a multiple of num_attention_heads (${heads})`,
    );
  }
  return hidden / heads;
}

export function checkKvHeads(heads: number, kvHeads: number): void {
  if (heads % kvHeads !== 0) {
    throw new ModelConfigError(
      `num_attention_heads (${heads}) must be a multiple of num_key_value_heads (${kvHeads})`,
    );
  }
}

/**
 * An activation name of transformers' ACT2FN as the engine's function: "gelu" is the exact erf
 * form; gelu_new, gelu_pytorch_tanh and gelu_fast are the tanh approximation.
 */
export function activationKind(act: unknown, field: string): "silu" | "gelu" | "gelu_tanh" | "relu" {
  if (act === "silu" || act === "swish") return "silu";
  if (act === "gelu" || act === "gelu_python") return "gelu";
  if (act === "gelu_new" || act === "gelu_pytorch_tanh" || act === "gelu_fast") return "gelu_tanh";
  if (act === "relu") return "relu";
  throw new ModelConfigError(
    `unsupported ${field} ${JSON.stringify(act)}; supported: silu, gelu, gelu_new, gelu_pytorch_tanh, gelu_fast, relu`,
  );
}

/** A gated MLP kind (down(act(gate(x)) * up(x))) for an activation. */
export function gatedMlp(act: unknown, field: string): ModelSpec["mlp"] {
  const kind = activationKind(act, field);
  if (kind === "relu") throw new ModelConfigError(`unsupported ${field} "relu" for a gated MLP`);
  return kind === "silu" ? "gated_silu" : kind === "gelu" ? "gated_gelu" : "gated_gelu_tanh";
}

/** A plain MLP kind (down(act(up(x)))) for an activation. */
export function plainMlp(act: unknown, field: string): ModelSpec["mlp"] {
  const kind = activationKind(act, field);
  if (kind === "silu") throw new ModelConfigError(`unsupported ${field} "silu" for a plain (non-gated) MLP`);
  return kind;
}
