// The CPU engine's logits against the float64 reference forward pass (reference.ts), for each
// family of the generic decoder: prefill a prompt in one pass, then decode token by token.
import { describe, expect, test } from "bun:test";
import type { ModelSpec } from "../../src/model/spec";
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
