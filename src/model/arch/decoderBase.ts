/**
 * The spec fields every pre-norm RMSNorm + RoPE decoder shares (Llama, Mistral, Qwen, Gemma, Phi-3,
 * DeepSeek): its shape, its norm, its rotation. Each family's toSpec reads the numbers its own way
 * (defaults differ per config class) and spreads this before the fields that are its own.
 */
import type { ModelSpec } from "../../native/modelSpec";
import type { Rope } from "../ropeConfig";

export interface DecoderShape {
  vocab: number;
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

export type DecoderBase = Pick<ModelSpec,
  | "arch" | "vocab_size" | "hidden_size" | "intermediate_size" | "num_layers" | "num_heads" | "num_kv_heads"
  | "head_dim" | "max_position_embeddings" | "embed_dim" | "norm" | "norm_eps" | "norm_position" | "final_norm"
  | "positions" | "rope_theta" | "partial_rotary_factor" | "rope_scaling">;

export function rmsRopeDecoder(arch: string, s: DecoderShape, rope: Rope, normEps: number): DecoderBase {
  return {
    arch,
    vocab_size: s.vocab,
    hidden_size: s.hidden,
    intermediate_size: s.intermediate,
    num_layers: s.layers,
    num_heads: s.heads,
    num_kv_heads: s.kvHeads,
    head_dim: s.headDim,
    max_position_embeddings: rope.maxPositions,
    embed_dim: s.hidden,
    norm: "rms",
    norm_eps: normEps,
    norm_position: "pre",
    final_norm: true,
    positions: "rope",
    rope_theta: rope.theta,
    partial_rotary_factor: rope.partialRotaryFactor,
    rope_scaling: rope.scaling,
  };
}
