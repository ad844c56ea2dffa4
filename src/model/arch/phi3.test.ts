import { describe, expect, test } from "bun:test";
import { configToSpec } from "../config";
import { canonicalName, canonicalTensors, expectedTensors, hfNameOf, mapWeights } from "../weights";

/** Increasing divisors shaped like Phi-3's lists (1 at the fast end). */
const ramp = (n: number, top: number) => Array.from({ length: n }, (_, i) => Number((1 + ((top - 1) * i) / (n - 1)).toFixed(4)));

// The Hub's config.json of microsoft/Phi-3-mini-4k-instruct, Phi-3-mini-128k-instruct (first
// revision, type "su") and Phi-4-mini-instruct, minus token ids, dropout and dtype keys; the
// 48 LongRoPE factors are stand-ins of the real lists' shape.
const phi3mini4k = {
  architectures: ["Phi3ForCausalLM"], model_type: "phi3", attention_bias: false, hidden_act: "silu", hidden_size: 3072,
  intermediate_size: 8192, max_position_embeddings: 4096, num_attention_heads: 32, num_hidden_layers: 32,
  num_key_value_heads: 32, original_max_position_embeddings: 4096, rms_norm_eps: 1e-5, rope_scaling: null,
  rope_theta: 10000.0, sliding_window: 2047, tie_word_embeddings: false, vocab_size: 32064,
};
const phi3mini128k = {
  ...phi3mini4k, max_position_embeddings: 131072, sliding_window: 262144,
  rope_scaling: { long_factor: ramp(48, 64.81), short_factor: ramp(48, 2.6), type: "su" },
};
const phi4mini = {
  architectures: ["Phi3ForCausalLM"], model_type: "phi3", attention_bias: false, full_attn_mod: 1, hidden_act: "silu",
  hidden_size: 3072, intermediate_size: 8192, interpolate_factor: 1, lm_head_bias: false, max_position_embeddings: 131072,
  mlp_bias: false, num_attention_heads: 24, num_hidden_layers: 32, num_key_value_heads: 8,
  original_max_position_embeddings: 4096, partial_rotary_factor: 0.75, rms_norm_eps: 1e-5,
  rope_scaling: { long_factor: ramp(48, 40.3), short_factor: ramp(48, 1.9), type: "longrope" }, rope_theta: 10000.0,
  sliding_window: 262144, tie_word_embeddings: true, vocab_size: 200064,
};
const attention128k = Math.sqrt(1 + Math.log(32) / Math.log(4096));

describe("phi3 config -> spec", () => {
  test("Phi-3-mini-4k: Llama block, MHA, window 2047, no RoPE scaling", () => {
    expect(configToSpec(phi3mini4k)).toMatchObject({
      arch: "phi3", head_dim: 96, num_kv_heads: 32, intermediate_size: 8192, norm: "rms", norm_eps: 1e-5, mlp: "gated_silu",
      layout: "sequential", qkv_bias: false, o_bias: false, rope_scaling: null, partial_rotary_factor: 1,
      sliding_window: 2047, max_position_embeddings: 4096, tie_word_embeddings: false,
    });
  });

  test("Phi-3-mini-128k: LongRoPE ('su'), long factors for the full context, short ones under --max-model-len 4096", () => {
    const s = configToSpec(phi3mini128k);
    expect(s.rope_scaling).toEqual({ type: "longrope", factors: phi3mini128k.rope_scaling.long_factor, attention_factor: attention128k });
    expect(s.max_position_embeddings).toBe(131072);
    expect(s.sliding_window).toBe(262144);
    const short = configToSpec(phi3mini128k, { maxModelLen: 4096 });
    expect(short.rope_scaling).toEqual({ type: "longrope", factors: phi3mini128k.rope_scaling.short_factor, attention_factor: attention128k });
    expect(configToSpec(phi3mini128k, { maxModelLen: 4097 }).rope_scaling).toMatchObject({ factors: phi3mini128k.rope_scaling.long_factor });
  });

  test("Phi-4-mini: GQA, partial rotary 0.75 (48 factors of 96 rotary dims), tied", () => {
    expect(configToSpec(phi4mini)).toMatchObject({
      head_dim: 128, num_heads: 24, num_kv_heads: 8, partial_rotary_factor: 0.75, tie_word_embeddings: true, vocab_size: 200064,
      rope_scaling: { type: "longrope", factors: phi4mini.rope_scaling.long_factor, attention_factor: attention128k },
    });
    expect(() => configToSpec({ ...phi4mini, partial_rotary_factor: 1 })).toThrow(/long_factor must be a list of 64 positive numbers/);
  });
});

describe("phi3 fused weights", () => {
  // head_dim 2: q is 4 heads x 2 = 8 rows, k and v 2 KV heads x 2 = 4 rows each; intermediate 6
  const spec = configToSpec({
    model_type: "phi3", hidden_size: 8, intermediate_size: 6, num_attention_heads: 4, num_key_value_heads: 2,
    num_hidden_layers: 2, vocab_size: 10,
  });

  test("qkv_proj [QD + 2 KVD, H] -> q | k | v; gate_up_proj [2I, H] -> gate | up", () => {
    expect(canonicalTensors(spec, "model.layers.1.self_attn.qkv_proj.weight", [16, 8])).toEqual([
      { name: "layers.1.q", shape: [8, 8], rows: [[0, 8]] },
      { name: "layers.1.k", shape: [4, 8], rows: [[8, 4]] },
      { name: "layers.1.v", shape: [4, 8], rows: [[12, 4]] },
    ]);
    expect(canonicalTensors(spec, "model.layers.0.mlp.gate_up_proj.weight", [12, 8])).toEqual([
      { name: "layers.0.gate", shape: [6, 8], rows: [[0, 6]] },
      { name: "layers.0.up", shape: [6, 8], rows: [[6, 6]] },
    ]);
    expect(() => canonicalTensors(spec, "model.layers.0.self_attn.qkv_proj.weight", [24, 8])).toThrow(
      /qkv_proj\.weight has shape \[24, 8\], config\.json implies \[16, 8\]/,
    );
  });

  test("a full checkpoint maps; a missing fused tensor is named by its HF name", () => {
    expect(canonicalName(spec, "model.layers.0.self_attn.o_proj.weight")).toBe("layers.0.o");
    expect(canonicalName(spec, "model.layers.0.mlp.down_proj.weight")).toBe("layers.0.down");
    expect(canonicalName(spec, "model.layers.0.self_attn.q_proj.weight")).toBeNull();
    expect(hfNameOf(spec, "layers.0.v")).toBe("model.layers.0.self_attn.qkv_proj.weight");
    expect(hfNameOf(spec, "layers.1.up")).toBe("model.layers.1.mlp.gate_up_proj.weight");
    const headers = [
      { name: "model.embed_tokens.weight", shape: [10, 8] }, { name: "model.norm.weight", shape: [8] },
      { name: "lm_head.weight", shape: [10, 8] },
      ...[0, 1].flatMap((i) => [
        { name: `model.layers.${i}.input_layernorm.weight`, shape: [8] },
        { name: `model.layers.${i}.self_attn.qkv_proj.weight`, shape: [16, 8] },
        { name: `model.layers.${i}.self_attn.o_proj.weight`, shape: [8, 8] },
        { name: `model.layers.${i}.post_attention_layernorm.weight`, shape: [8] },
        { name: `model.layers.${i}.mlp.gate_up_proj.weight`, shape: [12, 8] },
        { name: `model.layers.${i}.mlp.down_proj.weight`, shape: [8, 6] },
      ]),
    ];
    const { mapped } = mapWeights(spec, headers);
    expect(mapped.map((m) => m.name).sort()).toEqual([...expectedTensors(spec).keys()].sort());
    expect(() => mapWeights(spec, headers.filter((h) => !h.name.includes("layers.1.mlp.gate_up")))).toThrow(
      /missing 2 required tensor\(s\): layers\.1\.gate \(model\.layers\.1\.mlp\.gate_up_proj\.weight\)/,
    );
  });
});
