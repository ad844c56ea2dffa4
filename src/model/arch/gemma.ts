/**
 * Gemma 2 and Gemma 3 (text, and the text half of Gemma 3's multimodal checkpoints): RMSNorm
 * times (1 + w), embeddings times sqrt(hidden), GeGLU with tanh GELU, a norm before and after
 * each sublayer, softmax scale query_pre_attn_scalar^-0.5, sliding-window and full layers, tied
 * LM head.
 *   Gemma 2  attention-logit and final-logit soft-capping; layers alternate, layer 0 sliding
 *   Gemma 3  q/k norms; five sliding layers per full one (sliding_window_pattern 6); sliding
 *            layers rotate with rope_local_base_freq, full ones with rope_theta and rope_scaling
 *
 *   model.embed_tokens                           -> embed
 *   model.layers.{i}.input_layernorm             -> layers.{i}.attn_norm
 *   model.layers.{i}.self_attn.{q,k,v,o}_proj    -> layers.{i}.{q,k,v,o}     (+ _bias with attention_bias)
 *   model.layers.{i}.self_attn.q_norm / k_norm   -> layers.{i}.q_norm / k_norm   (Gemma 3)
 *   model.layers.{i}.post_attention_layernorm    -> layers.{i}.post_attn_norm
 *   model.layers.{i}.pre_feedforward_layernorm   -> layers.{i}.mlp_norm
 *   model.layers.{i}.mlp.{gate,up,down}_proj     -> layers.{i}.{gate,up,down}
 *   model.layers.{i}.post_feedforward_layernorm  -> layers.{i}.post_mlp_norm
 *   model.norm                                   -> final_norm
 * model_type "gemma3" (Gemma3ForConditionalGeneration): the spec comes from text_config and the
 * weights from language_model.model.* (Hub checkpoints) or model.language_model.* (saved by
 * transformers 4.52+); the vision tower and projector are skipped, so only text is served.
 */
import {
  checkKvHeads, gatedMlp, type Json, ModelConfigError, optionalBool, optionalInt, optionalNumber,
} from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";
import { readRope } from "../ropeConfig";
import { LLAMA_WEIGHTS } from "./llama";
import { readLayerTypes, readWindow, windowFields } from "./slidingLayers";
import { rmsRopeDecoder } from "./decoderBase";
import type { Architecture, ArchWeights, SpecOptions } from "./types";

/**
 * Gemma2Config / Gemma3TextConfig defaults. Gemma 3's multimodal configs leave most of the text
 * shape to them (google/gemma-3-4b-it's text_config gives only 6 keys), so every key has one.
 */
const DEFAULTS = {
  gemma2: {
    vocab_size: 256000, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8,
    num_key_value_heads: 4, head_dim: 256, max_position_embeddings: 8192, rope_theta: 10000, sliding_window: 4096,
    attn_logit_softcapping: 50, final_logit_softcapping: 30, slidingEvery: 2,
  },
  gemma3_text: {
    vocab_size: 262208, hidden_size: 2304, intermediate_size: 9216, num_hidden_layers: 26, num_attention_heads: 8,
    num_key_value_heads: 4, head_dim: 256, max_position_embeddings: 131072, rope_theta: 1e6, sliding_window: 4096,
    attn_logit_softcapping: 0, final_logit_softcapping: 0, slidingEvery: 6,
  },
};

function toSpec(config: Json, arch: string, opts: SpecOptions): ModelSpec {
  const cfg = arch === "gemma3" ? textConfig(config) : config;
  const gemma3 = arch !== "gemma2";
  const d = gemma3 ? DEFAULTS.gemma3_text : DEFAULTS.gemma2;
  if (optionalBool(cfg, "use_bidirectional_attention") === true) {
    throw new ModelConfigError("unsupported: Gemma with use_bidirectional_attention true (an embedding model)");
  }
  const int = (field: keyof typeof d) => optionalInt(cfg, field) ?? (d[field] as number);
  const hidden = int("hidden_size"), heads = int("num_attention_heads"), kvHeads = int("num_key_value_heads");
  checkKvHeads(heads, kvHeads);
  const headDim = int("head_dim"), numLayers = int("num_hidden_layers");
  const rope = readRope(cfg, {
    theta: d.rope_theta,
    maxPositions: int("max_position_embeddings"),
    headDim,
    servedLength: opts.maxModelLen,
    slidingBase: gemma3,
  });
  // Gemma2: layer i slides iff (i + 1) % 2 != 0; Gemma3: iff (i + 1) % sliding_window_pattern != 0.
  const every = gemma3 ? (optionalInt(cfg, "sliding_window_pattern") ?? d.slidingEvery) : d.slidingEvery;
  const types = readLayerTypes(cfg, numLayers, (i) => ((i + 1) % every !== 0 ? "sliding" : "full"));
  const window = windowFields(readWindow(cfg, d.sliding_window), types);
  const attentionBias = optionalBool(cfg, "attention_bias") ?? false;
  const spec: ModelSpec = {
    ...rmsRopeDecoder(arch, {
      vocab: int("vocab_size"), hidden, intermediate: int("intermediate_size"), layers: numLayers, heads,
      kvHeads, headDim,
    }, rope, optionalNumber(cfg, "rms_norm_eps") ?? 1e-6),
    ...window,
    qk_norm: gemma3,
    norm_weight_offset: 1,
    sandwich_norms: true,
    embed_scale: Math.sqrt(hidden),
    attn_scale: (optionalNumber(cfg, "query_pre_attn_scalar") ?? 256) ** -0.5,
    attn_logit_softcap: softcap(cfg, "attn_logit_softcapping", d.attn_logit_softcapping),
    final_logit_softcap: softcap(cfg, "final_logit_softcapping", d.final_logit_softcapping),
    qkv_bias: attentionBias,
    o_bias: attentionBias,
    mlp_bias: false,
    lm_head_bias: false,
    mlp: gatedMlp(cfg.hidden_activation ?? "gelu_pytorch_tanh", "hidden_activation"),
    layout: "sequential",
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? optionalBool(config, "tie_word_embeddings") ?? true,
    num_experts: 0,
    num_experts_per_tok: 0,
  };
  if (gemma3) {
    const local = rope.slidingTheta ?? optionalNumber(cfg, "rope_local_base_freq") ?? 10000;
    if (window.sliding_window > 0) spec.sliding_rope_theta = local;
    else if (types.includes("sliding") && local !== rope.theta) {
      // transformers still rotates "sliding" layers with the local base when there is no window.
      throw new ModelConfigError("unsupported: Gemma 3 with sliding_window null but sliding layers of their own RoPE base");
    }
  }
  return spec;
}

/** Gemma3ForConditionalGeneration's text_config (absent: every Gemma3TextConfig default). */
function textConfig(config: Json): Json {
  const text = config.text_config ?? {};
  if (typeof text !== "object" || text === null || Array.isArray(text)) {
    throw new ModelConfigError("config.json field text_config must be an object");
  }
  const t = text as Json;
  if (t.model_type !== undefined && t.model_type !== "gemma3_text") {
    throw new ModelConfigError(`unsupported text_config.model_type ${JSON.stringify(t.model_type)} for model_type "gemma3"; expected "gemma3_text"`);
  }
  return { ...t, model_type: "gemma3" };
}

/** A soft-cap: absent -> the config class's default, null -> none (0). */
function softcap(cfg: Json, field: string, dflt: number): number {
  return field in cfg ? (optionalNumber(cfg, field) ?? 0) : dflt;
}

const GEMMA_LAYER: ArchWeights["layer"] = {
  ...LLAMA_WEIGHTS.layer,
  "self_attn.q_norm": "q_norm",
  "self_attn.k_norm": "k_norm",
  post_attention_layernorm: "post_attn_norm",
  pre_feedforward_layernorm: "mlp_norm",
  post_feedforward_layernorm: "post_mlp_norm",
};

/** The text model's modules under both multimodal layouts; the Hub's first (it names missing tensors). */
const MULTIMODAL: ArchWeights = {
  top: {
    "language_model.model.embed_tokens": "embed",
    "language_model.model.norm": "final_norm",
    "language_model.lm_head": "lm_head",
    "model.language_model.embed_tokens": "embed",
    "model.language_model.norm": "final_norm",
    lm_head: "lm_head",
  },
  layerPrefixes: ["language_model.model.layers.", "model.language_model.layers."],
  layer: GEMMA_LAYER,
};

export const gemma: Architecture = {
  toSpec,
  weights: (spec) => (spec.arch === "gemma3" ? MULTIMODAL : { ...LLAMA_WEIGHTS, layer: GEMMA_LAYER }),
};
