/**
 * Phi-1/1.5/2 (model_type "phi"): LayerNorm, partial RoPE (partial_rotary_factor, 0.4 in Phi-2),
 * parallel attention + MLP from one norm, gelu_new (tanh GELU) MLP, biases everywhere including
 * the LM head.
 *
 *   model.embed_tokens.weight                          -> embed
 *   model.layers.{i}.input_layernorm                   -> layers.{i}.attn_norm   (+ bias)
 *   model.layers.{i}.self_attn.{q,k,v}_proj            -> layers.{i}.{q,k,v}     (+ bias)
 *   model.layers.{i}.self_attn.dense                   -> layers.{i}.o           (+ bias)
 *   model.layers.{i}.mlp.fc1 / fc2                     -> layers.{i}.up / down   (+ bias)
 *   model.final_layernorm                              -> final_norm             (+ bias)
 *   lm_head.weight / .bias                             -> lm_head / lm_head_bias
 */
import {
  checkKvHeads, headDimOf, type Json, ModelConfigError, optionalBool, optionalInt, optionalNumber, plainMlp,
  requireInt,
} from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";
import { readRope } from "../ropeConfig";
import type { Architecture, SpecOptions } from "./types";

function toSpec(cfg: Json, arch: string, opts: SpecOptions): ModelSpec {
  if (optionalBool(cfg, "qk_layernorm") === true) {
    throw new ModelConfigError("unsupported: Phi with qk_layernorm true (LayerNorm on q and k)");
  }
  const hidden = requireInt(cfg, "hidden_size");
  const heads = requireInt(cfg, "num_attention_heads");
  const kvHeads = optionalInt(cfg, "num_key_value_heads") ?? heads;
  checkKvHeads(heads, kvHeads);
  const headDim = headDimOf(cfg, hidden, heads);
  const rope = readRope(cfg, {
    partialRotaryFactor: 0.5,  // PhiConfig's default
    maxPositions: optionalInt(cfg, "max_position_embeddings") ?? 2048,
    headDim,
    servedLength: opts.maxModelLen,
  });
  return {
    arch,
    vocab_size: requireInt(cfg, "vocab_size"),
    hidden_size: hidden,
    intermediate_size: requireInt(cfg, "intermediate_size"),
    num_layers: requireInt(cfg, "num_hidden_layers"),
    num_heads: heads,
    num_kv_heads: kvHeads,
    head_dim: headDim,
    max_position_embeddings: rope.maxPositions,
    embed_dim: hidden,
    norm: "layer",
    norm_eps: optionalNumber(cfg, "layer_norm_eps") ?? 1e-5,
    norm_position: "pre",
    final_norm: true,
    positions: "rope",
    rope_theta: rope.theta,
    partial_rotary_factor: rope.partialRotaryFactor,
    rope_scaling: rope.scaling,
    sliding_window: 0,
    qkv_bias: true,
    o_bias: true,
    mlp_bias: true,
    lm_head_bias: true,
    mlp: plainMlp(cfg.hidden_act ?? "gelu_new", "hidden_act"),
    layout: "parallel",
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? false,
    num_experts: 0,
    num_experts_per_tok: 0,
  };
}

export const phi: Architecture = {
  toSpec,
  weights: () => ({
    top: { "model.embed_tokens": "embed", "model.final_layernorm": "final_norm", lm_head: "lm_head" },
    layerPrefixes: ["model.layers."],
    layer: {
      input_layernorm: "attn_norm",
      "self_attn.q_proj": "q",
      "self_attn.k_proj": "k",
      "self_attn.v_proj": "v",
      "self_attn.dense": "o",
      "mlp.fc1": "up",
      "mlp.fc2": "down",
    },
  }),
};
