/**
 * Qwen3, Qwen3-MoE and Qwen2-MoE: the Llama block (llama.ts) with
 *   Qwen3       per-head RMSNorm of q and k before RoPE, an explicit head_dim, attention_bias
 *   Qwen3-MoE   Qwen3 attention + top-k of many small experts (moe_intermediate_size), no shared expert
 *   Qwen2-MoE   Qwen2 attention (q/k/v biases) + routed experts + a shared expert behind a sigmoid gate
 *
 *   model.layers.{i}.self_attn.q_norm / k_norm          -> layers.{i}.q_norm / k_norm  [head_dim]
 *   model.layers.{i}.mlp.gate                           -> layers.{i}.router
 *   model.layers.{i}.mlp.experts.{e}.{gate,up,down}_proj -> layers.{i}.experts.{e}.{gate,up,down}
 *   model.layers.{i}.mlp.experts.gate_up_proj / down_proj (transformers v5, stacked: experts.ts)
 *   model.layers.{i}.mlp.shared_expert.{gate,up,down}_proj -> layers.{i}.shared_expert.{gate,up,down}
 *   model.layers.{i}.mlp.shared_expert_gate             -> layers.{i}.shared_expert_gate  [1, hidden]
 *
 * Layers that decoder_sparse_step > 1 or mlp_only_layers leave dense keep mlp.{gate,up,down}_proj
 * (width intermediate_size): the spec's dense_layers.
 */
import {
  checkKvHeads, gatedMlp, headDimOf, type Json, ModelConfigError, optionalBool, optionalInt, optionalNumber,
  requireInt,
} from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";
import { readRope } from "../ropeConfig";
import { checkTopK, stackedDown, stackedGateUp } from "./experts";
import { LLAMA_WEIGHTS } from "./llama";
import { qwenWindow } from "./slidingLayers";
import { rmsRopeDecoder } from "./decoderBase";
import type { Architecture, SpecOptions } from "./types";

/** The transformers config classes' defaults for keys a config may leave out. */
const DEFAULTS: Record<string, { kvHeads: number; headDim?: number; experts?: { num: number; topK: number; width: number } }> = {
  qwen3: { kvHeads: 32, headDim: 128 },
  qwen3_moe: { kvHeads: 4, experts: { num: 128, topK: 8, width: 768 } },
  qwen2_moe: { kvHeads: 16, experts: { num: 60, topK: 4, width: 1408 } },
};

function toSpec(cfg: Json, arch: string, opts: SpecOptions): ModelSpec {
  const defaults = DEFAULTS[arch]!;
  const hidden = requireInt(cfg, "hidden_size");
  const heads = requireInt(cfg, "num_attention_heads");
  const kvHeads = optionalInt(cfg, "num_key_value_heads") ?? defaults.kvHeads;
  checkKvHeads(heads, kvHeads);
  const headDim = defaults.headDim !== undefined ? (optionalInt(cfg, "head_dim") ?? defaults.headDim) : headDimOf(cfg, hidden, heads);
  const numLayers = requireInt(cfg, "num_hidden_layers");
  const rope = readRope(cfg, {
    theta: 10000,
    maxPositions: optionalInt(cfg, "max_position_embeddings") ?? 32768,
    headDim,
    servedLength: opts.maxModelLen,
  });
  const qwen3 = arch !== "qwen2_moe";
  const attentionBias = optionalBool(cfg, "attention_bias") ?? false;
  return {
    ...rmsRopeDecoder(arch, {
      vocab: requireInt(cfg, "vocab_size"), hidden, intermediate: requireInt(cfg, "intermediate_size"),
      layers: numLayers, heads, kvHeads, headDim,
    }, rope, optionalNumber(cfg, "rms_norm_eps") ?? 1e-6),
    ...qwenWindow(cfg, numLayers),
    qk_norm: qwen3,
    // Qwen3 (like Llama) puts attention_bias on q, k, v and o; Qwen2-MoE has q/k/v biases only
    // (transformers 5 names the switch qkv_bias).
    qkv_bias: qwen3 ? attentionBias : (optionalBool(cfg, "qkv_bias") ?? true),
    o_bias: qwen3 && attentionBias,
    mlp_bias: false,
    lm_head_bias: false,
    mlp: gatedMlp(cfg.hidden_act ?? "silu", "hidden_act"),
    layout: "sequential",
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? false,
    ...(defaults.experts ? experts(cfg, arch, numLayers, defaults.experts) : { num_experts: 0, num_experts_per_tok: 0 }),
  };
}

/** Routed (and for Qwen2-MoE shared) experts; dense layers from decoder_sparse_step / mlp_only_layers. */
function experts(cfg: Json, arch: string, numLayers: number, dflt: { num: number; topK: number; width: number }): Partial<ModelSpec> {
  // transformers 5 writes Qwen3-MoE's count as num_local_experts (its attribute map), 4.x as num_experts.
  const num = optionalInt(cfg, "num_experts") ?? optionalInt(cfg, "num_local_experts") ?? dflt.num;
  const topK = optionalInt(cfg, "num_experts_per_tok") ?? dflt.topK;
  checkTopK(topK, num, "num_experts");
  // Qwen*MoeDecoderLayer: sparse iff i not in mlp_only_layers and (i + 1) % decoder_sparse_step == 0.
  const step = optionalInt(cfg, "decoder_sparse_step") ?? 1;
  const mlpOnly = cfg.mlp_only_layers ?? [];
  if (!Array.isArray(mlpOnly) || !mlpOnly.every((i) => Number.isInteger(i))) {
    throw new ModelConfigError("config.json field mlp_only_layers must be a list of layer indices");
  }
  // Those layers keep the dense MLP of width intermediate_size (and, in Qwen2-MoE, no shared expert).
  const dense = Array.from({ length: numLayers }, (_, i) => i).filter((i) => mlpOnly.includes(i) || (i + 1) % step !== 0);
  const spec: Partial<ModelSpec> = {
    num_experts: num,
    num_experts_per_tok: topK,
    moe_intermediate_size: optionalInt(cfg, "moe_intermediate_size") ?? dflt.width,
    // Qwen2MoeConfig and Qwen3MoeConfig both default norm_topk_prob to false.
    moe_renormalize: optionalBool(cfg, "norm_topk_prob") ?? false,
    ...(dense.length > 0 ? { dense_layers: dense } : {}),
  };
  if (arch === "qwen2_moe") {
    const shared = optionalInt(cfg, "shared_expert_intermediate_size", 0) ?? 5632;
    if (shared > 0) Object.assign(spec, { shared_expert_intermediate_size: shared, shared_expert_gate: true });
  }
  return spec;
}

export const qwen: Architecture = {
  toSpec,
  weights: () => ({
    ...LLAMA_WEIGHTS,
    layer: {
      ...LLAMA_WEIGHTS.layer,
      "self_attn.q_norm": "q_norm",
      "self_attn.k_norm": "k_norm",
      "mlp.gate": "router",
      "mlp.experts.{e}.gate_proj": "experts.{e}.gate",
      "mlp.experts.{e}.up_proj": "experts.{e}.up",
      "mlp.experts.{e}.down_proj": "experts.{e}.down",
      "mlp.experts.gate_up_proj": stackedGateUp,
      "mlp.experts.down_proj": stackedDown,
      "mlp.shared_expert.gate_proj": "shared_expert.gate",
      "mlp.shared_expert.up_proj": "shared_expert.up",
      "mlp.shared_expert.down_proj": "shared_expert.down",
      "mlp.shared_expert_gate": "shared_expert_gate",
    },
  }),
};
