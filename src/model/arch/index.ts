/**
 * Every architecture this build runs, by Hugging Face model_type, with what `fastgen models` and
 * the README say about it. RoPE scaling (linear, llama3, yarn, dynamic, longrope; rope_scaling or
 * rope_parameters) is read the same way for every RoPE family (ropeConfig.ts).
 */
import { deepseek } from "./deepseek";
import { falcon } from "./falcon";
import { gemma } from "./gemma";
import { llama } from "./llama";
import { opt } from "./opt";
import { phi } from "./phi";
import { phi3 } from "./phi3";
import { qwen } from "./qwen";
import type { Architecture } from "./types";

export interface ModelType {
  arch: Architecture;
  /** The checkpoints people know it by. */
  family: string;
  /** What of the config this build honours (and what it refuses). */
  features: string;
}

export const MODEL_TYPES: Record<string, ModelType> = {
  llama: { arch: llama, family: "Llama 1/2/3, Llama 3.1-3.3", features: "GQA; attention_bias, mlp_bias" },
  mistral: { arch: llama, family: "Mistral", features: "sliding window on every layer" },
  qwen2: { arch: llama, family: "Qwen2, Qwen2.5", features: "q/k/v biases; use_sliding_window from max_window_layers" },
  qwen3: { arch: qwen, family: "Qwen3", features: "q/k norms, explicit head_dim, attention_bias; use_sliding_window from max_window_layers" },
  qwen3_moe: {
    arch: qwen,
    family: "Qwen3-MoE (Qwen3-30B-A3B, -235B-A22B)",
    features: "q/k norms; top-k of moe_intermediate_size experts, norm_topk_prob; dense layers from decoder_sparse_step / mlp_only_layers",
  },
  qwen2_moe: {
    arch: qwen,
    family: "Qwen1.5-MoE, Qwen2-MoE",
    features: "q/k/v biases; routed experts + sigmoid-gated shared expert; dense layers from decoder_sparse_step / mlp_only_layers",
  },
  mixtral: { arch: llama, family: "Mixtral", features: "top-k experts (per-expert or transformers 5 stacked weights)" },
  deepseek_v2: { arch: deepseek, family: "DeepSeek-V2, DeepSeek-V2-Lite", features: "multi-head latent attention (the KV cache holds the latent; CUDA at tensor_parallel 1), dense first layers, routed + shared experts, greedy or group-limited routing, YaRN mscale; refuses DeepSeek-V3 routing (sigmoid, noaux_tc)" },
  gemma2: {
    arch: gemma,
    family: "Gemma 2",
    features: "GeGLU, (1 + w) norms, sandwich norms, sqrt(hidden) embeddings, query_pre_attn_scalar, logit soft-caps, alternating sliding layers",
  },
  gemma3_text: {
    arch: gemma,
    family: "Gemma 3 (text: gemma-3-1b, 270m)",
    features: "Gemma 2's block + q/k norms, 5 sliding : 1 full layers, rope_local_base_freq for sliding layers",
  },
  gemma3: { arch: gemma, family: "Gemma 3 (multimodal 4b/12b/27b)", features: "text only: text_config and language_model.* weights; vision tower skipped" },
  phi3: {
    arch: phi3,
    family: "Phi-3, Phi-3.5-mini, Phi-4, Phi-4-mini",
    features: "fused qkv_proj / gate_up_proj; LongRoPE (long factors when the served context exceeds original_max_position_embeddings); partial rotary",
  },
  opt: { arch: opt, family: "OPT", features: "learned positions, post-norm (350m), project_in/out" },
  falcon: { arch: falcon, family: "Falcon 7B/40B/180B", features: "multi-query, new decoder architecture; refuses ALiBi (falcon-rw)" },
  phi: { arch: phi, family: "Phi-1, Phi-1.5, Phi-2", features: "parallel attention + MLP, partial rotary, LM head bias" },
};

export const ARCHITECTURES: Record<string, Architecture> = Object.fromEntries(
  Object.entries(MODEL_TYPES).map(([type, { arch }]) => [type, arch]),
);
