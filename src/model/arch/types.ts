/**
 * What each architecture module provides: its config.json normalizer and its weight map
 * (Hugging Face tensor names -> canonical names of fastgen.h).
 */
import type { Json } from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";

/**
 * One canonical tensor cut from an HF tensor. rows: ranges [start, count] of the HF tensor's
 * rows (its first dimension after flattening all but the last; elements for a 1-D tensor),
 * concatenated in order; absent means the whole tensor.
 */
export interface TensorPiece {
  name: string;
  shape: number[];
  rows?: [number, number][];
}

/**
 * An HF tensor that is not one canonical tensor as it stands (fused q/k/v, stacked experts, a
 * position table with an offset). Returns its pieces, or throws ModelLoadError when the HF shape
 * does not fit the spec. prefix is the canonical layer prefix ("layers.3.") or "" at top level.
 */
export interface Splitter {
  split(spec: ModelSpec, param: "weight" | "bias", shape: number[], prefix: string): TensorPiece[];
  /** Canonical stems it produces ("q", "experts.{e}.gate", ...), for naming a missing tensor's source. */
  stems: string[];
  /** The HF tensor is a bare nn.Parameter: its name has no .weight suffix. */
  bare?: boolean;
}

export type Target = string | Splitter;

export interface ArchWeights {
  /** Top-level module path (without .weight/.bias) -> canonical stem. */
  top: Record<string, Target>;
  /** Module paths before the layer index, e.g. "model.layers."; the first names missing tensors. */
  layerPrefixes: string[];
  /** Module path inside a layer -> canonical stem; "{e}" in a key matches an expert index. */
  layer: Record<string, Target>;
}

/** What the engine knows beside config.json when it builds the spec. */
export interface SpecOptions {
  /** The context it will serve (--max-model-len); 0 or absent: the model's max_position_embeddings. */
  maxModelLen?: number;
}

export interface Architecture {
  /** config.json -> spec; `modelType` is the config's model_type. */
  toSpec(cfg: Json, modelType: string, opts: SpecOptions): ModelSpec;
  /** The weight map for a spec of this architecture (some names depend on its layout). */
  weights(spec: ModelSpec): ArchWeights;
}
