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
 *   model.layers.{i}.mlp.experts.gate_up_proj [E, 2I, H]  (transformers v5) -> experts.{e}.gate
 *                                                        (rows e*2I ..+I) and .up (the next I)
 *   model.layers.{i}.mlp.experts.down_proj [E, H, I]   -> experts.{e}.down
 */
import {
  checkKvHeads, gatedMlp, headDimOf, type Json, ModelConfigError, optionalBool, optionalInt, optionalNumber,
  readRope, requireInt,
} from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";
import { ModelLoadError } from "../errors";
import { checkShape } from "./split";
import type { Architecture, Splitter, TensorPiece } from "./types";

/** Per-architecture transformers defaults for keys a config may leave out. */
const DEFAULTS: Record<string, { maxPositions: number; slidingWindow: number; theta: number }> = {
  llama: { maxPositions: 2048, slidingWindow: 0, theta: 10000 },
  // MistralConfig defaults sliding_window to 4096 when the key is absent (null means none).
  mistral: { maxPositions: 4096 * 32, slidingWindow: 4096, theta: 10000 },
  qwen2: { maxPositions: 32768, slidingWindow: 0, theta: 10000 },
  mixtral: { maxPositions: 4096 * 32, slidingWindow: 0, theta: 1e6 },
};

function toSpec(cfg: Json, arch: string): ModelSpec {
  const defaults = DEFAULTS[arch]!;
  const hidden = requireInt(cfg, "hidden_size");
  const heads = requireInt(cfg, "num_attention_heads");
  const kvHeads = optionalInt(cfg, "num_key_value_heads") ?? heads;
  checkKvHeads(heads, kvHeads);
  const rope = readRope(cfg, { theta: defaults.theta });
  const attentionBias = optionalBool(cfg, "attention_bias") ?? false;
  const numLayers = requireInt(cfg, "num_hidden_layers");
  const moe = arch === "mixtral" ? experts(cfg) : { num_experts: 0, num_experts_per_tok: 0 };

  return {
    arch,
    vocab_size: requireInt(cfg, "vocab_size"),
    hidden_size: hidden,
    intermediate_size: requireInt(cfg, "intermediate_size"),
    num_layers: numLayers,
    num_heads: heads,
    num_kv_heads: kvHeads,
    head_dim: headDimOf(cfg, hidden, heads),
    max_position_embeddings: optionalInt(cfg, "max_position_embeddings") ?? defaults.maxPositions,
    embed_dim: hidden,
    norm: "rms",
    norm_eps: optionalNumber(cfg, "rms_norm_eps") ?? 1e-6,
    norm_position: "pre",
    final_norm: true,
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
    mlp: gatedMlp(cfg.hidden_act ?? "silu", "hidden_act"),
    layout: "sequential",
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? false,
    ...moe,
  };
}

function experts(cfg: Json): { num_experts: number; num_experts_per_tok: number } {
  const num = requireInt(cfg, "num_local_experts");
  const topK = optionalInt(cfg, "num_experts_per_tok") ?? 2;
  if (topK > num) {
    throw new ModelConfigError(`num_experts_per_tok (${topK}) must not exceed num_local_experts (${num})`);
  }
  return { num_experts: num, num_experts_per_tok: topK };
}

/** Mistral/Mixtral: sliding_window as given (null = none). Qwen2: only with use_sliding_window. */
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

/** transformers v5's stacked experts: gate_up_proj [E, 2I, H] -> experts.{e}.gate / .up. */
const gateUpProj: Splitter = {
  bare: true,
  stems: ["experts.{e}.gate", "experts.{e}.up"],
  split(spec, param, shape, prefix) {
    const E = spec.num_experts ?? 0, I = spec.intermediate_size, H = spec.hidden_size;
    if (param !== "weight") throw new ModelLoadError("has a bias, which Mixtral experts do not");
    checkShape(shape, [E, 2 * I, H]);
    const out: TensorPiece[] = [];
    for (let e = 0; e < E; e++) {
      out.push({ name: `${prefix}experts.${e}.gate`, shape: [I, H], rows: [[e * 2 * I, I]] });
      out.push({ name: `${prefix}experts.${e}.up`, shape: [I, H], rows: [[e * 2 * I + I, I]] });
    }
    return out;
  },
};

/** down_proj [E, H, I] -> experts.{e}.down. */
const downProj: Splitter = {
  bare: true,
  stems: ["experts.{e}.down"],
  split(spec, param, shape, prefix) {
    const E = spec.num_experts ?? 0, I = spec.intermediate_size, H = spec.hidden_size;
    if (param !== "weight") throw new ModelLoadError("has a bias, which Mixtral experts do not");
    checkShape(shape, [E, H, I]);
    return Array.from({ length: E }, (_, e) => ({ name: `${prefix}experts.${e}.down`, shape: [H, I], rows: [[e * H, H]] }));
  },
};

export const llama: Architecture = {
  toSpec,
  weights: () => ({
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
      // Mixtral
      "block_sparse_moe.gate": "router",
      "block_sparse_moe.experts.{e}.w1": "experts.{e}.gate",
      "block_sparse_moe.experts.{e}.w3": "experts.{e}.up",
      "block_sparse_moe.experts.{e}.w2": "experts.{e}.down",
      "mlp.gate": "router",
      "mlp.experts.gate_up_proj": gateUpProj,
      "mlp.experts.down_proj": downProj,
    },
  }),
};
