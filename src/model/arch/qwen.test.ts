import { describe, expect, test } from "bun:test";
import { configToSpec } from "../config";
import { canonicalName, canonicalTensors, expectedTensors, hfNameOf, mapWeights } from "../weights";
import { expectConfigError } from "../../../test/helpers/configErrors";

// The Hub's config.json of Qwen/Qwen3-8B, Qwen/Qwen3-30B-A3B and Qwen/Qwen1.5-MoE-A2.7B (minus
// token ids, dropout and dtype keys).
const qwen3_8b = {
  architectures: ["Qwen3ForCausalLM"], model_type: "qwen3", attention_bias: false, head_dim: 128, hidden_act: "silu",
  hidden_size: 4096, intermediate_size: 12288, max_position_embeddings: 40960, max_window_layers: 36,
  num_attention_heads: 32, num_hidden_layers: 36, num_key_value_heads: 8, rms_norm_eps: 1e-6, rope_scaling: null,
  rope_theta: 1000000, sliding_window: null, tie_word_embeddings: false, use_sliding_window: false, vocab_size: 151936,
};
const qwen3_30b_a3b = {
  architectures: ["Qwen3MoeForCausalLM"], model_type: "qwen3_moe", attention_bias: false, decoder_sparse_step: 1,
  head_dim: 128, hidden_act: "silu", hidden_size: 2048, intermediate_size: 6144, max_position_embeddings: 40960,
  max_window_layers: 48, mlp_only_layers: [], moe_intermediate_size: 768, norm_topk_prob: true, num_attention_heads: 32,
  num_experts: 128, num_experts_per_tok: 8, num_hidden_layers: 48, num_key_value_heads: 4, rms_norm_eps: 1e-6,
  rope_scaling: null, rope_theta: 1000000.0, sliding_window: null, tie_word_embeddings: false, use_sliding_window: false,
  vocab_size: 151936,
};
const qwen15_moe = {
  architectures: ["Qwen2MoeForCausalLM"], model_type: "qwen2_moe", decoder_sparse_step: 1, hidden_act: "silu",
  hidden_size: 2048, intermediate_size: 5632, max_position_embeddings: 8192, max_window_layers: 21,
  moe_intermediate_size: 1408, norm_topk_prob: false, num_attention_heads: 16, num_experts: 60, num_experts_per_tok: 4,
  num_hidden_layers: 24, num_key_value_heads: 16, rms_norm_eps: 1e-6, rope_theta: 1000000.0,
  shared_expert_intermediate_size: 5632, sliding_window: 32768, tie_word_embeddings: false, use_sliding_window: false,
  vocab_size: 151936,
};

describe("qwen3 / qwen3_moe / qwen2_moe config -> spec", () => {
  test("Qwen3-8B: q/k norms, explicit head_dim, no biases, untied", () => {
    expect(configToSpec(qwen3_8b)).toMatchObject({
      arch: "qwen3", hidden_size: 4096, num_heads: 32, num_kv_heads: 8, head_dim: 128, intermediate_size: 12288,
      max_position_embeddings: 40960, rope_theta: 1e6, rope_scaling: null, sliding_window: 0, qk_norm: true,
      qkv_bias: false, o_bias: false, mlp: "gated_silu", tie_word_embeddings: false, num_experts: 0, norm_eps: 1e-6,
    });
    // Qwen3-0.6B ties; Qwen3Config's head_dim default is 128 whatever hidden / heads is
    const { head_dim, ...noHeadDim } = qwen3_8b;
    expect(configToSpec({ ...noHeadDim, hidden_size: 1024, num_attention_heads: 16, tie_word_embeddings: true }))
      .toMatchObject({ head_dim: 128, tie_word_embeddings: true });
    expect(configToSpec({ ...qwen3_8b, attention_bias: true })).toMatchObject({ qkv_bias: true, o_bias: true });
  });

  test("Qwen3 with the documented YaRN override serves 4 x 32768 positions", () => {
    const s = configToSpec({ ...qwen3_8b, rope_scaling: { rope_type: "yarn", factor: 4.0, original_max_position_embeddings: 32768 } });
    expect(s.rope_scaling).toEqual({ type: "yarn", factor: 4, original_max_position_embeddings: 32768 });
    expect(s.max_position_embeddings).toBe(131072);
  });

  test("Qwen3 sliding window from max_window_layers, like Qwen2", () => {
    const s = configToSpec({ ...qwen3_8b, use_sliding_window: true, sliding_window: 4096, max_window_layers: 30 });
    expect(s.sliding_window).toBe(4096);
    expect(s.layer_types!.filter((t) => t === "sliding").length).toBe(6);
    expect(s.layer_types![29]).toBe("full");
    expect(configToSpec({ ...qwen3_8b, use_sliding_window: true, sliding_window: 4096, max_window_layers: 0 }).layer_types).toBeUndefined();
  });

  test("Qwen3-30B-A3B: 128 experts of width 768, top-8 renormalized", () => {
    expect(configToSpec(qwen3_30b_a3b)).toMatchObject({
      arch: "qwen3_moe", head_dim: 128, num_heads: 32, num_kv_heads: 4, qk_norm: true, qkv_bias: false,
      num_experts: 128, num_experts_per_tok: 8, moe_intermediate_size: 768, moe_renormalize: true, intermediate_size: 6144,
    });
    const s = configToSpec(qwen3_30b_a3b);
    expect(s.shared_expert_intermediate_size).toBeUndefined();
    // Qwen3MoeConfig's defaults: norm_topk_prob false, head_dim hidden / heads
    const { norm_topk_prob, head_dim, ...sparse } = qwen3_30b_a3b;
    expect(configToSpec(sparse)).toMatchObject({ moe_renormalize: false, head_dim: 64 });
  });

  test("Qwen1.5-MoE-A2.7B: q/k/v biases, 60 experts top-4 without renormalization, gated shared expert", () => {
    expect(configToSpec(qwen15_moe)).toMatchObject({
      arch: "qwen2_moe", head_dim: 128, num_kv_heads: 16, qk_norm: false, qkv_bias: true, o_bias: false,
      num_experts: 60, num_experts_per_tok: 4, moe_intermediate_size: 1408, moe_renormalize: false,
      shared_expert_intermediate_size: 5632, shared_expert_gate: true, sliding_window: 0, rope_theta: 1e6,
      max_position_embeddings: 8192,
    });
    expect(configToSpec({ ...qwen15_moe, qkv_bias: false }).qkv_bias).toBe(false);  // transformers 5's key
  });

  test("dense layers in a MoE config: mlp_only_layers and decoder_sparse_step give dense_layers", () => {
    expect(configToSpec({ ...qwen3_30b_a3b, mlp_only_layers: [0, 47] }).dense_layers).toEqual([0, 47]);
    expect(configToSpec({ ...qwen15_moe, decoder_sparse_step: 2 }).dense_layers!.slice(0, 4)).toEqual([0, 2, 4, 6]);
    expect(configToSpec(qwen3_30b_a3b).dense_layers).toBeUndefined();
    expectConfigError({ ...qwen3_30b_a3b, num_experts_per_tok: 129 }, /num_experts_per_tok \(129\) must not exceed num_experts \(128\)/);
    expectConfigError({ ...qwen3_30b_a3b, mlp_only_layers: "none" }, /mlp_only_layers must be a list/);
  });
});

describe("qwen weight names", () => {
  const small = {
    hidden_size: 8, intermediate_size: 16, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4, num_hidden_layers: 2,
    vocab_size: 10,
  };
  const checkpoint = (spec: ReturnType<typeof configToSpec>) =>
    [...expectedTensors(spec)].map(([name, shape]) => ({ name: hfNameOf(spec, name), shape }));

  test("qwen3: q_norm / k_norm of head_dim", () => {
    const spec = configToSpec({ ...small, model_type: "qwen3" });
    expect(expectedTensors(spec).get("layers.1.q_norm")).toEqual([4]);
    expect(canonicalName(spec, "model.layers.1.self_attn.k_norm.weight")).toBe("layers.1.k_norm");
    expect(hfNameOf(spec, "layers.0.q_norm")).toBe("model.layers.0.self_attn.q_norm.weight");
    expect(mapWeights(spec, checkpoint(spec)).mapped.length).toBe(3 + 2 * 11);
  });

  test("qwen3_moe: per-expert and transformers 5 stacked checkpoints give the same tensors, cut by moe_intermediate_size", () => {
    const spec = configToSpec({ ...small, model_type: "qwen3_moe", num_experts: 3, num_experts_per_tok: 2, moe_intermediate_size: 6 });
    expect(expectedTensors(spec).get("layers.0.experts.2.up")).toEqual([6, 8]);
    expect(hfNameOf(spec, "layers.0.experts.2.up")).toBe("model.layers.0.mlp.experts.2.up_proj.weight");
    expect(hfNameOf(spec, "layers.1.router")).toBe("model.layers.1.mlp.gate.weight");
    const v4 = checkpoint(spec);
    const fromV4 = mapWeights(spec, v4).mapped;
    const v5 = [
      ...v4.filter((h) => !h.name.includes("mlp.experts.")),
      ...[0, 1].flatMap((i) => [
        { name: `model.layers.${i}.mlp.experts.gate_up_proj`, shape: [3, 12, 8] },
        { name: `model.layers.${i}.mlp.experts.down_proj`, shape: [3, 8, 6] },
      ]),
    ];
    const fromV5 = mapWeights(spec, v5).mapped;
    expect(fromV5.map((m) => m.name).sort()).toEqual(fromV4.map((m) => m.name).sort());
    const byName = new Map(fromV5.map((m) => [m.name, m]));
    expect(byName.get("layers.1.experts.2.gate")!.rows).toEqual([[24, 6]]);
    expect(byName.get("layers.1.experts.2.up")!.rows).toEqual([[30, 6]]);
    expect(byName.get("layers.0.experts.1.down")!.rows).toEqual([[8, 8]]);
    // a stacked tensor of the dense width is caught from its header
    expect(() => canonicalTensors(spec, "model.layers.0.mlp.experts.gate_up_proj", [3, 32, 8])).toThrow(/config\.json implies \[3, 12, 8\]/);
  });

  test("qwen2_moe: shared expert and its gate, q/k/v biases", () => {
    const spec = configToSpec({
      ...small, model_type: "qwen2_moe", num_key_value_heads: 2, num_experts: 2, num_experts_per_tok: 1,
      moe_intermediate_size: 4, shared_expert_intermediate_size: 12,
    });
    const shapes = expectedTensors(spec);
    expect(shapes.get("layers.0.shared_expert.gate")).toEqual([12, 8]);
    expect(shapes.get("layers.0.shared_expert.down")).toEqual([8, 12]);
    expect(shapes.get("layers.0.shared_expert_gate")).toEqual([1, 8]);
    expect(shapes.get("layers.0.q_bias")).toEqual([8]);
    const names: [string, string][] = [
      ["model.layers.0.mlp.shared_expert.gate_proj.weight", "layers.0.shared_expert.gate"],
      ["model.layers.0.mlp.shared_expert.up_proj.weight", "layers.0.shared_expert.up"],
      ["model.layers.1.mlp.shared_expert.down_proj.weight", "layers.1.shared_expert.down"],
      ["model.layers.1.mlp.shared_expert_gate.weight", "layers.1.shared_expert_gate"],
      ["model.layers.1.mlp.experts.1.down_proj.weight", "layers.1.experts.1.down"],
      ["model.layers.1.mlp.gate.weight", "layers.1.router"],
      ["model.layers.0.self_attn.v_proj.bias", "layers.0.v_bias"],
    ];
    for (const [hf, want] of names) expect(canonicalName(spec, hf)).toBe(want);
    for (const name of shapes.keys()) expect(canonicalName(spec, hfNameOf(spec, name))).toBe(name);
    expect(mapWeights(spec, checkpoint(spec)).mapped.length).toBe(shapes.size);
  });
});
