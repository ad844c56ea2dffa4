/**
 * DeepSeek-V2 and DeepSeek-V2-Lite (model_type "deepseek_v2"): multi-head latent attention (MLA),
 * the first first_k_dense_replace layers dense, the others routed experts plus shared experts.
 *
 *   model.layers.{i}.self_attn.q_proj                    -> layers.{i}.q        (q_lora_rank null: V2-Lite)
 *   model.layers.{i}.self_attn.q_a_proj / q_a_layernorm / q_b_proj -> layers.{i}.q_a / q_a_norm / q_b
 *   model.layers.{i}.self_attn.kv_a_proj_with_mqa        -> layers.{i}.kv_a     [kv_lora_rank + rope, hidden]
 *   model.layers.{i}.self_attn.kv_a_layernorm            -> layers.{i}.kv_a_norm
 *   model.layers.{i}.self_attn.kv_b_proj                 -> layers.{i}.kv_b     [heads * (nope + v), kv_lora_rank]
 *   model.layers.{i}.self_attn.o_proj                    -> layers.{i}.o
 *   model.layers.{i}.mlp.{gate,up,down}_proj             -> layers.{i}.{gate,up,down}   (dense layers)
 *   model.layers.{i}.mlp.gate                            -> layers.{i}.router
 *   model.layers.{i}.mlp.experts.{e}.{gate,up,down}_proj -> layers.{i}.experts.{e}.*   (or stacked: experts.ts)
 *   model.layers.{i}.mlp.shared_experts.{gate,up,down}_proj -> layers.{i}.shared_expert.*
 *
 * Which layers route follows DeepSeek's modeling code and vLLM: i >= first_k_dense_replace and
 * i % moe_layer_freq == 0 (transformers' DeepseekV2 ignores moe_layer_freq, which is 1 in every
 * released checkpoint). Routing: softmax, top-k ("greedy") or top-k within the best topk_group of
 * n_group groups ("group_limited_greedy"), renormalized when norm_topk_prob (vLLM; transformers'
 * DeepseekV2 never renormalizes, and the released checkpoints say false), times
 * routed_scaling_factor. RoPE turns (2i, 2i + 1) pairs: transformers' complex form, and DeepSeek's
 * own code after its de-interleave, give the same scores. DeepSeek-V3's routing (sigmoid scores,
 * noaux_tc with a correction bias) is refused.
 */
import { gatedMlp, type Json, ModelConfigError, optionalBool, optionalInt, optionalNumber, requireInt } from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";
import { readRope } from "../ropeConfig";
import { checkTopK, stackedDown, stackedGateUp } from "./experts";
import { LLAMA_WEIGHTS } from "./llama";
import { rmsRopeDecoder } from "./decoderBase";
import type { Architecture, SpecOptions } from "./types";

/** DeepseekV2Config's defaults for the keys a config may leave out. */
const DEFAULTS = {
  kv_lora_rank: 512, q_lora_rank: 1536, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128,
  n_routed_experts: 64, n_shared_experts: 2, moe_intermediate_size: 1407, max_position_embeddings: 2048,
};

/** An integer key that may be null (null and 0 mean none), else its default when absent. */
function nullableInt(cfg: Json, field: keyof typeof DEFAULTS): number {
  if (!(field in cfg)) return DEFAULTS[field];
  return optionalInt(cfg, field, 0) ?? 0;
}

function toSpec(cfg: Json, arch: string, opts: SpecOptions): ModelSpec {
  const hidden = requireInt(cfg, "hidden_size");
  const heads = requireInt(cfg, "num_attention_heads");
  const numLayers = requireInt(cfg, "num_hidden_layers");
  if (optionalBool(cfg, "attention_bias") === true || optionalBool(cfg, "mlp_bias") === true) {
    throw new ModelConfigError("unsupported: deepseek_v2 with attention_bias or mlp_bias true");
  }
  const mla = {
    kv_lora_rank: optionalInt(cfg, "kv_lora_rank") ?? DEFAULTS.kv_lora_rank,
    q_lora_rank: nullableInt(cfg, "q_lora_rank"),
    qk_nope_head_dim: optionalInt(cfg, "qk_nope_head_dim") ?? DEFAULTS.qk_nope_head_dim,
    qk_rope_head_dim: optionalInt(cfg, "qk_rope_head_dim") ?? DEFAULTS.qk_rope_head_dim,
    v_head_dim: optionalInt(cfg, "v_head_dim") ?? DEFAULTS.v_head_dim,
  };
  // transformers sets head_dim = qk_rope_head_dim: the RoPE tables cover the rope part only.
  const rope = readRope(cfg, {
    theta: 10000,
    maxPositions: optionalInt(cfg, "max_position_embeddings") ?? DEFAULTS.max_position_embeddings,
    headDim: mla.qk_rope_head_dim,
    servedLength: opts.maxModelLen,
  });
  if (rope.partialRotaryFactor !== 1) throw new ModelConfigError("unsupported: deepseek_v2 with partial_rotary_factor");
  return {
    ...rmsRopeDecoder(arch, {
      vocab: requireInt(cfg, "vocab_size"), hidden, intermediate: requireInt(cfg, "intermediate_size"),
      layers: numLayers, heads, kvHeads: 1, headDim: mla.qk_nope_head_dim + mla.qk_rope_head_dim,
    }, rope, optionalNumber(cfg, "rms_norm_eps") ?? 1e-6),
    partial_rotary_factor: 1,
    rope_interleaved: true,
    sliding_window: 0,
    attention: "mla",
    ...mla,
    latent_norm_eps: 1e-6,  // DeepseekV2RMSNorm's default: q_a_layernorm and kv_a_layernorm ignore rms_norm_eps
    qkv_bias: false,
    o_bias: false,
    mlp_bias: false,
    lm_head_bias: false,
    mlp: gatedMlp(cfg.hidden_act ?? "silu", "hidden_act"),
    layout: "sequential",
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? false,
    ...experts(cfg, numLayers),
  };
}

/** Routed and shared experts, which layers have them, and how tokens are routed. */
function experts(cfg: Json, numLayers: number): Partial<ModelSpec> {
  const num = nullableInt(cfg, "n_routed_experts");
  const firstMoe = optionalInt(cfg, "first_k_dense_replace", 0) ?? 0;
  const freq = optionalInt(cfg, "moe_layer_freq") ?? 1;
  const moeLayer = (i: number) => num > 0 && i >= firstMoe && i % freq === 0;
  if (!Array.from({ length: numLayers }, (_, i) => i).some(moeLayer)) return { num_experts: 0, num_experts_per_tok: 0 };

  const scoring = cfg.scoring_func ?? "softmax";
  const method = cfg.topk_method ?? "greedy";
  if (scoring !== "softmax" || (method !== "greedy" && method !== "group_limited_greedy")) {
    throw new ModelConfigError(
      `unsupported: deepseek_v2 routing scoring_func ${JSON.stringify(scoring)} / topk_method ${JSON.stringify(method)} ` +
        '(supported: softmax with "greedy" or "group_limited_greedy"; DeepSeek-V3\'s sigmoid / noaux_tc is not)',
    );
  }
  const topK = optionalInt(cfg, "num_experts_per_tok");
  if (topK === undefined) throw new ModelConfigError("config.json is missing required field num_experts_per_tok");
  checkTopK(topK, num, "n_routed_experts");
  const width = optionalInt(cfg, "moe_intermediate_size") ?? DEFAULTS.moe_intermediate_size;
  const shared = nullableInt(cfg, "n_shared_experts");
  const spec: Partial<ModelSpec> = {
    num_experts: num,
    num_experts_per_tok: topK,
    moe_intermediate_size: width,
    moe_renormalize: optionalBool(cfg, "norm_topk_prob") ?? false,
    moe_routed_scale: optionalNumber(cfg, "routed_scaling_factor") ?? 1,
    dense_layers: Array.from({ length: numLayers }, (_, i) => i).filter((i) => !moeLayer(i)),
  };
  if (shared > 0) spec.shared_expert_intermediate_size = width * shared;
  if (method === "group_limited_greedy") {
    const groups = optionalInt(cfg, "n_group"), topGroups = optionalInt(cfg, "topk_group");
    if (groups === undefined || topGroups === undefined) {
      throw new ModelConfigError('topk_method "group_limited_greedy" needs n_group and topk_group in config.json');
    }
    if (num % groups !== 0 || topGroups > groups || topK > topGroups * (num / groups)) {
      throw new ModelConfigError(
        `n_group (${groups}) must divide n_routed_experts (${num}) and topk_group (${topGroups}) groups must hold num_experts_per_tok (${topK})`,
      );
    }
    Object.assign(spec, { moe_num_groups: groups, moe_topk_groups: topGroups });
  }
  return spec;
}

export const deepseek: Architecture = {
  toSpec,
  weights: () => ({
    ...LLAMA_WEIGHTS,
    layer: {
      input_layernorm: "attn_norm",
      post_attention_layernorm: "mlp_norm",
      "self_attn.q_proj": "q",
      "self_attn.q_a_proj": "q_a",
      "self_attn.q_a_layernorm": "q_a_norm",
      "self_attn.q_b_proj": "q_b",
      "self_attn.kv_a_proj_with_mqa": "kv_a",
      "self_attn.kv_a_layernorm": "kv_a_norm",
      "self_attn.kv_b_proj": "kv_b",
      "self_attn.o_proj": "o",
      "mlp.gate_proj": "gate",
      "mlp.up_proj": "up",
      "mlp.down_proj": "down",
      "mlp.gate": "router",
      "mlp.experts.{e}.gate_proj": "experts.{e}.gate",
      "mlp.experts.{e}.up_proj": "experts.{e}.up",
      "mlp.experts.{e}.down_proj": "experts.{e}.down",
      "mlp.experts.gate_up_proj": stackedGateUp,
      "mlp.experts.down_proj": stackedDown,
      "mlp.shared_experts.gate_proj": "shared_expert.gate",
      "mlp.shared_experts.up_proj": "shared_expert.up",
      "mlp.shared_experts.down_proj": "shared_expert.down",
    },
  }),
};
