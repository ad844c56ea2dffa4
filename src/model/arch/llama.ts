/**
 * The Llama family: Llama 1-3, Mistral, Qwen2, and Mixtral (Mistral with a mixture-of-experts
 * MLP). RMSNorm, RoPE, gated SiLU MLP, sequential layout.
 *
 *   model.embed_tokens.weight                          -> embed
 *   model.layers.{i}.input_layernorm.weight            -> layers.{i}.attn_norm
 *   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight   -> layers.{i}.{q,k,v,o}     (.bias -> _bias)
 *   model.layers.{i}.post_attention_layernorm.weight   -> layers.{i}.mlp_norm
 *   model.layers.{i}.mlp.{gate,up,down}_proj.weight    -> layers.{i}.{gate,up,down} (.bias -> _bias)
 *   model.norm.weight                                  -> final_norm
 *   lm_head.weight                                     -> lm_head  (ignored when tied)
 * Mixtral, either checkpoint layout:
 *   model.layers.{i}.block_sparse_moe.gate.weight      -> layers.{i}.router   (or mlp.gate)
 *   ...block_sparse_moe.experts.{e}.{w1,w3,w2}.weight  -> layers.{i}.experts.{e}.{gate,up,down}
 *   model.layers.{i}.mlp.experts.gate_up_proj / down_proj (transformers v5, stacked: experts.ts)
 */
import {
  checkKvHeads, gatedMlp, headDimOf, type Json, optionalBool, optionalInt, optionalNumber, requireInt,
} from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";
import { readRope } from "../ropeConfig";
import { checkTopK, stackedDown, stackedGateUp } from "./experts";
import { qwenWindow, readWindow } from "./slidingLayers";
import { rmsRopeDecoder } from "./decoderBase";
import type { Architecture, ArchWeights, SpecOptions } from "./types";

/** Per-architecture transformers defaults for keys a config may leave out. */
const DEFAULTS: Record<string, { maxPositions: number; slidingWindow: number; theta: number }> = {
  llama: { maxPositions: 2048, slidingWindow: 0, theta: 10000 },
  // MistralConfig defaults sliding_window to 4096 when the key is absent (null means none).
  mistral: { maxPositions: 4096 * 32, slidingWindow: 4096, theta: 10000 },
  qwen2: { maxPositions: 32768, slidingWindow: 4096, theta: 10000 },
  mixtral: { maxPositions: 4096 * 32, slidingWindow: 0, theta: 1e6 },
};

function toSpec(cfg: Json, arch: string, opts: SpecOptions): ModelSpec {
  const defaults = DEFAULTS[arch]!;
  const hidden = requireInt(cfg, "hidden_size");
  const heads = requireInt(cfg, "num_attention_heads");
  const kvHeads = optionalInt(cfg, "num_key_value_heads") ?? heads;
  checkKvHeads(heads, kvHeads);
  const headDim = headDimOf(cfg, hidden, heads);
  const rope = readRope(cfg, {
    theta: defaults.theta,
    maxPositions: optionalInt(cfg, "max_position_embeddings") ?? defaults.maxPositions,
    headDim,
    servedLength: opts.maxModelLen,
  });
  const attentionBias = optionalBool(cfg, "attention_bias") ?? false;
  const numLayers = requireInt(cfg, "num_hidden_layers");
  const moe = arch === "mixtral" ? experts(cfg) : { num_experts: 0, num_experts_per_tok: 0 };

  return {
    ...rmsRopeDecoder(arch, {
      vocab: requireInt(cfg, "vocab_size"), hidden, intermediate: requireInt(cfg, "intermediate_size"),
      layers: numLayers, heads, kvHeads, headDim,
    }, rope, optionalNumber(cfg, "rms_norm_eps") ?? 1e-6),
    // Llama: none. Mistral/Mixtral: one window for every layer. Qwen2: see qwenWindow.
    ...(arch === "llama" ? { sliding_window: 0 } : arch === "qwen2" ? qwenWindow(cfg, numLayers) : { sliding_window: readWindow(cfg, defaults.slidingWindow) }),
    // Qwen2 always has q/k/v biases; Llama's attention_bias adds them to q, k, v and o alike.
    qkv_bias: arch === "qwen2" ? true : arch === "llama" && attentionBias,
    o_bias: arch === "llama" && attentionBias,
    mlp_bias: arch === "llama" && (optionalBool(cfg, "mlp_bias") ?? false),
    lm_head_bias: false,
    mlp: gatedMlp(cfg.hidden_act ?? "silu", "hidden_act"),
    layout: "sequential",
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? false,
    ...moe,
  };
}

function experts(cfg: Json): { num_experts: number; num_experts_per_tok: number } {
  const num = requireInt(cfg, "num_local_experts");
  const topK = optionalInt(cfg, "num_experts_per_tok") ?? 2;
  checkTopK(topK, num, "num_local_experts");
  return { num_experts: num, num_experts_per_tok: topK };
}

/** The Llama weight map; the Qwen families (qwen.ts) and Phi-3 (phi3.ts) extend or edit it. */
export const LLAMA_WEIGHTS: ArchWeights = {
  top: { "model.embed_tokens": "embed", "model.norm": "final_norm", lm_head: "lm_head" },
  layerPrefixes: ["model.layers."],
  layer: {
    input_layernorm: "attn_norm",
    "self_attn.q_proj": "q",
    "self_attn.k_proj": "k",
    "self_attn.v_proj": "v",
    "self_attn.o_proj": "o",
    post_attention_layernorm: "mlp_norm",
    "mlp.gate_proj": "gate",
    "mlp.up_proj": "up",
    "mlp.down_proj": "down",
  },
};

export const llama: Architecture = {
  toSpec,
  weights: () => ({
    ...LLAMA_WEIGHTS,
    layer: {
      ...LLAMA_WEIGHTS.layer,
      // Mixtral
      "block_sparse_moe.gate": "router",
      "block_sparse_moe.experts.{e}.w1": "experts.{e}.gate",
      "block_sparse_moe.experts.{e}.w3": "experts.{e}.up",
      "block_sparse_moe.experts.{e}.w2": "experts.{e}.down",
      "mlp.gate": "router",
      "mlp.experts.gate_up_proj": stackedGateUp,
      "mlp.experts.down_proj": stackedDown,
    },
  }),
};
