/**
 * OPT: LayerNorm, learned absolute positions (table offset by 2), ReLU MLP, biases everywhere,
 * tied LM head; OPT-350m also has project_in/out (word_embed_proj_dim != hidden_size) and
 * post-LayerNorm blocks (do_layer_norm_before false) without a final norm.
 *
 *   model.decoder.embed_tokens.weight [vocab, D]       -> embed
 *   model.decoder.embed_positions.weight [P + 2, H]    -> pos_embed (rows 2.., so row p = position p)
 *   model.decoder.project_in.weight [H, D]             -> embed_proj_in
 *   model.decoder.project_out.weight [D, H]            -> embed_proj_out
 *   model.decoder.layers.{i}.self_attn.{q,k,v}_proj    -> layers.{i}.{q,k,v}   (.bias -> _bias)
 *   model.decoder.layers.{i}.self_attn.out_proj        -> layers.{i}.o
 *   model.decoder.layers.{i}.self_attn_layer_norm      -> layers.{i}.attn_norm
 *   model.decoder.layers.{i}.final_layer_norm          -> layers.{i}.mlp_norm
 *   model.decoder.layers.{i}.fc1 / fc2                 -> layers.{i}.up / down
 *   model.decoder.final_layer_norm                     -> final_norm
 *   lm_head.weight                                     -> lm_head (ignored when tied)
 * Hub checkpoints saved from OPTModel lack the "model." prefix; both spellings are accepted.
 */
import {
  type Json, ModelConfigError, optionalBool, optionalInt, plainMlp, requireInt,
} from "../configFields";
import { ModelLoadError } from "../errors";
import type { ModelSpec } from "../../native/modelSpec";
import { checkShape } from "./split";
import type { Architecture, Splitter, Target } from "./types";

/** OPTLearnedPositionalEmbedding looks up position + 2. */
const POSITION_OFFSET = 2;

function toSpec(cfg: Json, arch: string): ModelSpec {
  const hidden = requireInt(cfg, "hidden_size");
  const heads = requireInt(cfg, "num_attention_heads");
  if (hidden % heads !== 0) {
    throw new ModelConfigError(`hidden_size (${hidden}) must be a multiple of num_attention_heads (${heads})`);
  }
  if (optionalBool(cfg, "layer_norm_elementwise_affine") === false) {
    throw new ModelConfigError("unsupported: OPT with layer_norm_elementwise_affine false (LayerNorm without weights)");
  }
  const preNorm = optionalBool(cfg, "do_layer_norm_before") ?? true;
  const bias = optionalBool(cfg, "enable_bias") ?? true;
  return {
    arch,
    vocab_size: requireInt(cfg, "vocab_size"),
    hidden_size: hidden,
    intermediate_size: requireInt(cfg, "ffn_dim"),
    num_layers: requireInt(cfg, "num_hidden_layers"),
    num_heads: heads,
    num_kv_heads: heads,
    head_dim: hidden / heads,
    max_position_embeddings: optionalInt(cfg, "max_position_embeddings") ?? 2048,
    embed_dim: optionalInt(cfg, "word_embed_proj_dim") ?? hidden,
    norm: "layer",
    norm_eps: 1e-5,  // nn.LayerNorm's default; OPT has no config key for it
    norm_position: preNorm ? "pre" : "post",
    final_norm: preNorm && !(optionalBool(cfg, "_remove_final_layer_norm") ?? false),
    positions: "learned",
    rope_theta: 10000,
    partial_rotary_factor: 1,
    rope_scaling: null,
    sliding_window: 0,
    qkv_bias: bias,
    o_bias: bias,
    mlp_bias: bias,
    lm_head_bias: false,
    mlp: plainMlp(cfg.activation_function ?? "relu", "activation_function"),
    layout: "sequential",
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? true,
    num_experts: 0,
    num_experts_per_tok: 0,
  };
}

/** embed_positions [P + 2, H] -> pos_embed [P, H] without the two offset rows. */
const positions: Splitter = {
  stems: ["pos_embed"],
  split(spec, param, shape) {
    const P = spec.max_position_embeddings;
    if (param !== "weight") throw new ModelLoadError("is not expected (a position table has no bias)");
    checkShape(shape, [P + POSITION_OFFSET, spec.hidden_size]);
    return [{ name: "pos_embed", shape: [P, spec.hidden_size], rows: [[POSITION_OFFSET, P]] }];
  },
};

/** Both "model.decoder.X" and "decoder.X" for each top-level module X. */
function withAndWithoutModel(top: Record<string, Target>): Record<string, Target> {
  const out: Record<string, Target> = {};
  for (const [k, v] of Object.entries(top)) {
    out[`model.decoder.${k}`] = v;
    out[`decoder.${k}`] = v;
  }
  return out;
}

export const opt: Architecture = {
  toSpec,
  weights: () => ({
    top: {
      ...withAndWithoutModel({
        embed_tokens: "embed",
        embed_positions: positions,
        project_in: "embed_proj_in",
        project_out: "embed_proj_out",
        final_layer_norm: "final_norm",
      }),
      lm_head: "lm_head",
    },
    layerPrefixes: ["model.decoder.layers.", "decoder.layers."],
    layer: {
      self_attn_layer_norm: "attn_norm",
      "self_attn.q_proj": "q",
      "self_attn.k_proj": "k",
      "self_attn.v_proj": "v",
      "self_attn.out_proj": "o",
      final_layer_norm: "mlp_norm",
      fc1: "up",
      fc2: "down",
    },
  }),
};
