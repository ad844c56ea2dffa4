// The CPU engine's logits against the float64 reference forward pass (reference.ts), for each
// family of the generic decoder: prefill a prompt in one pass, then decode token by token.
import { describe, expect, test } from "bun:test";
import type { ModelSpec } from "../../src/native/modelSpec";
import { buildEngine, makeBatch, randomTokens, randomWeights, relErr, rng, tinySpec } from "./helpers";
import { referenceLogits } from "./reference";

const CASES: [string, Partial<ModelSpec>][] = [
  ["llama GQA", {}],
  ["qwen2-like: qkv bias, tied embeddings, head_dim * heads != hidden",
    { arch: "qwen2", qkv_bias: true, tie_word_embeddings: true, head_dim: 10, rope_theta: 1e6 }],
  ["mistral-like: sliding window shorter than the prompt", { arch: "mistral", sliding_window: 5 }],
  ["llama3 rope scaling",
    { head_dim: 16, num_heads: 3, num_kv_heads: 1,
      rope_scaling: { type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 64 } }],
  ["linear rope scaling", { rope_scaling: { type: "linear", factor: 4 } }],
  ["phi-like: partial rotary, parallel layout, LayerNorm, gelu, every bias",
    { arch: "phi", head_dim: 12, num_heads: 4, num_kv_heads: 4, partial_rotary_factor: 0.5, layout: "parallel",
      norm: "layer", mlp: "gelu", qkv_bias: true, o_bias: true, mlp_bias: true, lm_head_bias: true }],
  ["gated gelu with MLP biases, MQA", { mlp: "gated_gelu", mlp_bias: true, num_kv_heads: 1 }],
  ["relu MLP, LayerNorm, sequential", { mlp: "relu", norm: "layer", o_bias: true }],
  ["opt-like: learned positions, LayerNorm, relu, every bias, tied",
    { arch: "opt", positions: "learned", norm: "layer", mlp: "relu", num_kv_heads: 6, qkv_bias: true,
      o_bias: true, mlp_bias: true, tie_word_embeddings: true, max_position_embeddings: 20 }],
  ["opt-350m-like: post-norm, no final norm, project_in/out (embed_dim 24 != hidden 48)",
    { arch: "opt", positions: "learned", norm: "layer", norm_position: "post", final_norm: false, embed_dim: 24,
      mlp: "relu", num_kv_heads: 6, qkv_bias: true, o_bias: true, mlp_bias: true, tie_word_embeddings: true }],
  ["opt-like project_in/out with an untied head and a final norm",
    { arch: "opt", positions: "learned", norm: "layer", embed_dim: 32, mlp: "gelu", num_kv_heads: 6 }],
  ["falcon new decoder architecture: two norms in parallel, GQA, exact gelu, tied",
    { arch: "falcon", norm: "layer", layout: "parallel_two_norms", mlp: "gelu", num_kv_heads: 2, tie_word_embeddings: true }],
  ["falcon-7b-like: parallel, one norm, multi-query, biases",
    { arch: "falcon", norm: "layer", layout: "parallel", mlp: "gelu", num_kv_heads: 1, qkv_bias: true, o_bias: true, mlp_bias: true }],
  ["phi-2-like: partial rotary 0.4, parallel, tanh gelu, every bias, LM head bias",
    { arch: "phi", head_dim: 10, num_heads: 4, num_kv_heads: 4, partial_rotary_factor: 0.4, layout: "parallel",
      norm: "layer", mlp: "gelu_tanh", qkv_bias: true, o_bias: true, mlp_bias: true, lm_head_bias: true }],
  ["gated tanh gelu (gelu_pytorch_tanh)", { mlp: "gated_gelu_tanh" }],
  ["mixtral-like: 4 experts, top-2, sliding window", { arch: "mixtral", num_experts: 4, num_experts_per_tok: 2, sliding_window: 6 }],
  ["MoE top-1 of 3 experts", { arch: "mixtral", num_experts: 3, num_experts_per_tok: 1 }],
  ["MoE top-3 of 8 experts with expert biases, gated gelu, parallel layout",
    { num_experts: 8, num_experts_per_tok: 3, mlp: "gated_gelu", mlp_bias: true, layout: "parallel", norm: "layer" }],
  ["MoE with plain relu experts, all experts chosen (top-4 of 4)", { num_experts: 4, num_experts_per_tok: 4, mlp: "relu" }],
  ["qwen3-like: q/k norms before RoPE, head_dim * heads != hidden",
    { arch: "qwen3", qk_norm: true, head_dim: 16, num_heads: 4, num_kv_heads: 2, rope_theta: 1e6 }],
  ["gemma2-like: (1 + w) norms, sandwich norms, embed scale, attn scale, both softcaps, sliding/full layers",
    { arch: "gemma2", norm_weight_offset: 1, sandwich_norms: true, embed_scale: Math.sqrt(48), attn_scale: 0.3,
      attn_logit_softcap: 2, final_logit_softcap: 3, sliding_window: 5, layer_types: ["sliding", "full", "sliding"],
      num_layers: 3, mlp: "gated_gelu_tanh", tie_word_embeddings: true, head_dim: 12, num_heads: 4 }],
  ["gemma3-like: q/k norms, sandwich, local rope base on sliding layers, linear scaling on full ones",
    { arch: "gemma3_text", qk_norm: true, norm_weight_offset: 1, sandwich_norms: true, embed_scale: Math.sqrt(48),
      attn_scale: 1 / 4, sliding_window: 4, layer_types: ["sliding", "sliding", "full"], num_layers: 3,
      rope_theta: 1e6, sliding_rope_theta: 10000, rope_scaling: { type: "linear", factor: 8 }, mlp: "gated_gelu_tanh",
      tie_word_embeddings: true, head_dim: 16, num_heads: 4 }],
  ["qwen2-moe-like: softmax weights not renormalized, expert width != dense width, gated shared expert",
    { arch: "qwen2_moe", qkv_bias: true, num_experts: 6, num_experts_per_tok: 2, moe_intermediate_size: 24,
      moe_renormalize: false, shared_expert_intermediate_size: 40, shared_expert_gate: true }],
  ["qwen3-moe-like: q/k norms, renormalized top-2 of 8, narrow experts",
    { arch: "qwen3_moe", qk_norm: true, head_dim: 16, num_heads: 4, num_experts: 8, num_experts_per_tok: 2,
      moe_intermediate_size: 16 }],
  ["MoE with an ungated shared expert, parallel layout, plain gelu",
    { num_experts: 4, num_experts_per_tok: 1, moe_intermediate_size: 32, shared_expert_intermediate_size: 24,
      mlp: "gelu", layout: "parallel", norm: "layer", mlp_bias: true }],
  ["phi3-like longrope: per-frequency factors and attention factor",
    { arch: "phi3", head_dim: 16, num_heads: 3, num_kv_heads: 3,
      rope_scaling: { type: "longrope", factors: [1, 1.3, 2, 3.5, 6, 9, 14, 20], attention_factor: 1.19 } }],
  // Ramps over dims 5..12 of 16 (truncated) and 2.6..4.4 of 8 (not): both ends inside the head.
  ["yarn: default betas, truncated ramp, attention factor 0.1 ln(s) + 1",
    { head_dim: 32, num_heads: 3, num_kv_heads: 1, rope_scaling: { type: "yarn", factor: 4, original_max_position_embeddings: 4096 } }],
  ["yarn with mscale / mscale_all_dim, untruncated ramp, partial rotary",
    { head_dim: 32, num_heads: 3, num_kv_heads: 1, partial_rotary_factor: 0.5,
      rope_scaling: { type: "yarn", factor: 8, original_max_position_embeddings: 2048, beta_fast: 16, beta_slow: 2,
        truncate: false, mscale: 1, mscale_all_dim: 0.5 } }],
  ["yarn with an explicit attention factor",
    { head_dim: 16, rope_scaling: { type: "yarn", factor: 3, original_max_position_embeddings: 10, attention_factor: 1.5 } }],
  ["dynamic NTK (vLLM's static base)",
    { head_dim: 16, rope_scaling: { type: "dynamic", factor: 4, original_max_position_embeddings: 8 } }],
];

describe("CPU forward pass matches the reference", () => {
  for (const [name, over] of CASES) {
    test(name, () => {
      const spec = tinySpec(over);
      const weights = randomWeights(spec, 1234);
      const engine = buildEngine(spec, weights);
      const r = rng(99);
      const tokens = randomTokens(r, 16, spec.vocab_size);
      const ref = referenceLogits(spec, weights, tokens);
      const blocks = [7, 2, 9, 4];
      const prompt = 12;

      const first = engine.step(makeBatch([{ tokens: tokens.slice(0, prompt), context: 0, blocks, wants: true }],
        { returnLogits: true }));
      expect(relErr(first.logits!, ref[prompt - 1]!)).toBeLessThan(1e-5);
      for (let p = prompt; p < tokens.length; p++) {
        const out = engine.step(makeBatch([{ tokens: [tokens[p]!], context: p, blocks, wants: true }],
          { returnLogits: true }));
        expect(relErr(out.logits!, ref[p]!)).toBeLessThan(1e-5);
      }
      engine.destroy();
    });
  }
});
