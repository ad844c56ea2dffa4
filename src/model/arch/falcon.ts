/**
 * Falcon: LayerNorm, RoPE, plain GELU MLP, fused query_key_value, tied LM head by default.
 *   Falcon-7B style:  parallel_attn, multi_query (1 KV head), one norm (input_layernorm)
 *   Falcon-40B/180B:  new_decoder_architecture: grouped KV heads (num_kv_heads), ln_attn + ln_mlp
 *   sequential:       parallel_attn false: input_layernorm, then post_attention_layernorm
 * ALiBi Falcon (falcon-rw-*) is refused.
 *
 *   transformer.word_embeddings.weight                    -> embed
 *   transformer.h.{i}.self_attention.query_key_value      -> layers.{i}.q, .k, .v (see qkv below)
 *   transformer.h.{i}.self_attention.dense                -> layers.{i}.o
 *   transformer.h.{i}.input_layernorm | ln_attn           -> layers.{i}.attn_norm
 *   transformer.h.{i}.post_attention_layernorm | ln_mlp   -> layers.{i}.mlp_norm
 *   transformer.h.{i}.mlp.dense_h_to_4h / dense_4h_to_h   -> layers.{i}.up / down
 *   transformer.ln_f                                      -> final_norm
 *   lm_head.weight                                        -> lm_head (ignored when tied)
 */
import {
  type Json, ModelConfigError, optionalBool, optionalInt, optionalNumber, plainMlp, requireInt, requireIntOf,
} from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";
import { readRope } from "../ropeConfig";
import { checkShape } from "./split";
import type { Architecture, SpecOptions, Splitter } from "./types";

function toSpec(cfg: Json, arch: string, opts: SpecOptions): ModelSpec {
  if (optionalBool(cfg, "alibi") === true) {
    throw new ModelConfigError("unsupported: Falcon with alibi true (ALiBi positions, e.g. falcon-rw-1b); only rotary Falcon models run");
  }
  const hidden = requireIntOf(cfg, "hidden_size", "n_embed");
  const heads = requireIntOf(cfg, "num_attention_heads", "n_head");
  if (hidden % heads !== 0) {
    throw new ModelConfigError(`hidden_size (${hidden}) must be a multiple of num_attention_heads (${heads})`);
  }
  const newArch = optionalBool(cfg, "new_decoder_architecture") ?? false;
  const multiQuery = optionalBool(cfg, "multi_query") ?? true;
  const parallel = optionalBool(cfg, "parallel_attn") ?? true;
  const bias = optionalBool(cfg, "bias") ?? false;
  // FalconAttention: grouped KV only in the new architecture; else one KV head (multi_query) or MHA.
  const kvHeads = newArch ? (optionalInt(cfg, "num_kv_heads") ?? optionalInt(cfg, "n_head_kv") ?? heads) : multiQuery ? 1 : heads;
  if (heads % kvHeads !== 0) {
    throw new ModelConfigError(`num_attention_heads (${heads}) must be a multiple of num_kv_heads (${kvHeads})`);
  }
  let layout: ModelSpec["layout"];
  if (newArch) {
    // FalconDecoderLayer: the new architecture always adds attention and MLP in parallel.
    if (!parallel) throw new ModelConfigError("unsupported: Falcon new_decoder_architecture with parallel_attn false");
    const norms = optionalInt(cfg, "num_ln_in_parallel_attn") ?? 2;
    layout = norms === 2 ? "parallel_two_norms" : "parallel";
  } else {
    layout = parallel ? "parallel" : "sequential";
  }
  const rope = readRope(cfg, {
    maxPositions: optionalInt(cfg, "max_position_embeddings") ?? 2048,
    headDim: hidden / heads,
    servedLength: opts.maxModelLen,
  });
  return {
    arch,
    vocab_size: requireInt(cfg, "vocab_size"),
    hidden_size: hidden,
    intermediate_size: optionalInt(cfg, "ffn_hidden_size") ?? 4 * hidden,
    num_layers: requireIntOf(cfg, "num_hidden_layers", "n_layer"),
    num_heads: heads,
    num_kv_heads: kvHeads,
    head_dim: hidden / heads,
    max_position_embeddings: rope.maxPositions,
    embed_dim: hidden,
    norm: "layer",
    norm_eps: optionalNumber(cfg, "layer_norm_epsilon") ?? 1e-5,
    norm_position: "pre",
    final_norm: true,
    positions: "rope",
    rope_theta: rope.theta,
    partial_rotary_factor: rope.partialRotaryFactor,
    rope_scaling: rope.scaling,
    sliding_window: 0,
    qkv_bias: bias,
    o_bias: bias,
    mlp_bias: bias,
    lm_head_bias: false,
    mlp: plainMlp(cfg.activation ?? "gelu", "activation"),
    layout,
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? true,
    num_experts: 0,
    num_experts_per_tok: 0,
  };
}

/**
 * query_key_value [(heads + 2 * kv_heads) * d, H], rows grouped per KV head g (G = heads / kv_heads):
 *
 *   | q head gG .. q head gG+G-1 | k head g | v head g |   for g = 0 .. kv_heads-1
 *
 * The new architecture's layout; Falcon-7B's multi-query layout [all q | k | v] is the same with
 * one group, and the MHA layout [q0 k0 v0 | q1 k1 v1 | ...] the same with groups of one.
 */
const qkv: Splitter = {
  stems: ["q", "k", "v"],
  split(spec, param, shape, prefix) {
    const d = spec.head_dim, n = spec.num_heads, g = spec.num_kv_heads, G = n / g;
    const rows = (n + 2 * g) * d;
    checkShape(shape, param === "weight" ? [rows, spec.hidden_size] : [rows]);
    const q: [number, number][] = [], k: [number, number][] = [], v: [number, number][] = [];
    for (let j = 0; j < g; j++) {
      const base = j * (G + 2) * d;
      q.push([base, G * d]);
      k.push([base + G * d, d]);
      v.push([base + (G + 1) * d, d]);
    }
    const suffix = param === "bias" ? "_bias" : "";
    const shapeOf = (r: number) => (param === "weight" ? [r, spec.hidden_size] : [r]);
    return [
      { name: `${prefix}q${suffix}`, shape: shapeOf(n * d), rows: q },
      { name: `${prefix}k${suffix}`, shape: shapeOf(g * d), rows: k },
      { name: `${prefix}v${suffix}`, shape: shapeOf(g * d), rows: v },
    ];
  },
};

export const falcon: Architecture = {
  toSpec,
  weights: (spec) => {
    // ln_attn + ln_mlp only in the two-norm layout; elsewhere input_layernorm (+ post_attention_layernorm).
    const twoNorms = spec.layout === "parallel_two_norms";
    return {
      top: { "transformer.word_embeddings": "embed", "transformer.ln_f": "final_norm", lm_head: "lm_head" },
      layerPrefixes: ["transformer.h."],
      layer: {
        ...(twoNorms ? { ln_attn: "attn_norm", ln_mlp: "mlp_norm" } : { input_layernorm: "attn_norm", post_attention_layernorm: "mlp_norm" }),
        "self_attention.query_key_value": qkv,
        "self_attention.dense": "o",
        "mlp.dense_h_to_4h": "up",
        "mlp.dense_4h_to_h": "down",
      },
    };
  },
};
