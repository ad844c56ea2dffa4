import { describe, expect, test } from "bun:test";
import { configToSpec } from "../config";
import { canonicalName, canonicalTensors, expectedTensors } from "../weights";
import { expectConfigError } from "../../../test/helpers/configErrors";

// The Hub's config.json of deepseek-ai/DeepSeek-V2-Lite and DeepSeek-V2 (minus auto_map, token
// ids, aux-loss and dtype keys).
const v2Lite = {
  architectures: ["DeepseekV2ForCausalLM"], model_type: "deepseek_v2", attention_bias: false, first_k_dense_replace: 1,
  hidden_act: "silu", hidden_size: 2048, intermediate_size: 10944, kv_lora_rank: 512, max_position_embeddings: 163840,
  moe_intermediate_size: 1408, moe_layer_freq: 1, n_group: 1, n_routed_experts: 64, n_shared_experts: 2,
  norm_topk_prob: false, num_attention_heads: 16, num_experts_per_tok: 6, num_hidden_layers: 27, num_key_value_heads: 16,
  q_lora_rank: null, qk_nope_head_dim: 128, qk_rope_head_dim: 64, rms_norm_eps: 1e-6,
  rope_scaling: { beta_fast: 32, beta_slow: 1, factor: 40, mscale: 0.707, mscale_all_dim: 0.707,
    original_max_position_embeddings: 4096, type: "yarn" },
  rope_theta: 10000, routed_scaling_factor: 1.0, scoring_func: "softmax", tie_word_embeddings: false, topk_group: 1,
  topk_method: "greedy", v_head_dim: 128, vocab_size: 102400,
};
const v2 = {
  ...v2Lite, hidden_size: 5120, intermediate_size: 12288, moe_intermediate_size: 1536, n_group: 8, n_routed_experts: 160,
  num_attention_heads: 128, num_key_value_heads: 128, num_hidden_layers: 60, q_lora_rank: 1536, routed_scaling_factor: 16.0,
  topk_group: 3, topk_method: "group_limited_greedy",
};

describe("deepseek_v2 config -> spec", () => {
  test("DeepSeek-V2-Lite: MLA without q compression, layer 0 dense, 64 experts top-6 + 2 shared, YaRN", () => {
    const spec = configToSpec(v2Lite);
    expect(spec).toMatchObject({
      arch: "deepseek_v2", attention: "mla", num_heads: 16, num_kv_heads: 1, head_dim: 192, kv_lora_rank: 512,
      q_lora_rank: 0, qk_nope_head_dim: 128, qk_rope_head_dim: 64, v_head_dim: 128, latent_norm_eps: 1e-6,
      rope_interleaved: true, max_position_embeddings: 163840, rope_theta: 10000, num_experts: 64,
      num_experts_per_tok: 6, moe_intermediate_size: 1408, shared_expert_intermediate_size: 2816,
      moe_renormalize: false, moe_routed_scale: 1, dense_layers: [0], intermediate_size: 10944, mlp: "gated_silu",
      rope_scaling: { type: "yarn", factor: 40, original_max_position_embeddings: 4096, mscale: 0.707, mscale_all_dim: 0.707 },
    });
    expect(spec.moe_num_groups).toBeUndefined();  // greedy: n_group 1 is not group-limited
    expect(spec.shared_expert_gate).toBeUndefined();
  });

  test("DeepSeek-V2: q_lora_rank 1536, group-limited greedy (8 groups, best 3), routed_scaling_factor 16", () => {
    expect(configToSpec(v2)).toMatchObject({
      q_lora_rank: 1536, num_heads: 128, num_experts: 160, moe_num_groups: 8, moe_topk_groups: 3, moe_routed_scale: 16,
      shared_expert_intermediate_size: 3072, dense_layers: [0],
    });
  });

  test("the library takes the spec: MLA tensor shapes, dense layer 0, experts from layer 1", () => {
    const t = expectedTensors(configToSpec({ ...v2Lite, num_hidden_layers: 2 }));
    expect(t.get("layers.0.q")).toEqual([16 * 192, 2048]);
    expect(t.get("layers.0.kv_a")).toEqual([576, 2048]);
    expect(t.get("layers.0.kv_a_norm")).toEqual([512]);
    expect(t.get("layers.0.kv_b")).toEqual([16 * 256, 512]);
    expect(t.get("layers.0.o")).toEqual([2048, 16 * 128]);
    expect(t.get("layers.0.gate")).toEqual([10944, 2048]);
    expect(t.has("layers.0.router")).toBe(false);
    expect(t.get("layers.1.router")).toEqual([64, 2048]);
    expect(t.get("layers.1.experts.63.down")).toEqual([2048, 1408]);
    expect(t.get("layers.1.shared_expert.up")).toEqual([2816, 2048]);
    expect(t.has("layers.1.gate")).toBe(false);
    const q = expectedTensors(configToSpec({ ...v2, num_hidden_layers: 1 }));
    expect(q.get("layers.0.q_a")).toEqual([1536, 5120]);
    expect(q.get("layers.0.q_b")).toEqual([128 * 192, 1536]);
  });

  test("moe_layer_freq, a dense model (n_routed_experts null), absent keys take DeepseekV2Config's defaults", () => {
    expect(configToSpec({ ...v2Lite, num_hidden_layers: 6, moe_layer_freq: 2 }).dense_layers).toEqual([0, 1, 3, 5]);
    expect(configToSpec({ ...v2Lite, n_routed_experts: null })).toMatchObject({ num_experts: 0, num_experts_per_tok: 0 });
    const { q_lora_rank, n_shared_experts, first_k_dense_replace, ...sparse } = v2Lite;
    expect(configToSpec(sparse)).toMatchObject({ q_lora_rank: 1536, shared_expert_intermediate_size: 2 * 1408, dense_layers: [] });
  });

  test("refused: DeepSeek-V3 routing, biases, group-limited without groups, missing top-k", () => {
    expectConfigError({ ...v2Lite, topk_method: "noaux_tc" }, /noaux_tc.*DeepSeek-V3/);
    expectConfigError({ ...v2Lite, scoring_func: "sigmoid" }, /scoring_func "sigmoid"/);
    expectConfigError({ ...v2Lite, attention_bias: true }, /attention_bias/);
    expectConfigError({ ...v2, n_group: null }, /needs n_group and topk_group/);
    expectConfigError({ ...v2, n_group: 7 }, /n_group \(7\) must divide/);
    expectConfigError({ ...v2Lite, num_experts_per_tok: null }, /num_experts_per_tok/);
    expectConfigError({ ...v2Lite, model_type: "deepseek_v3" }, /unsupported model_type "deepseek_v3"/);
  });
});

describe("deepseek_v2 weight map", () => {
  const spec = configToSpec({ ...v2Lite, num_hidden_layers: 2 });
  test("attention, dense and expert names", () => {
    const name = (hf: string) => canonicalName(spec, hf);
    expect(name("model.layers.0.self_attn.q_proj.weight")).toBe("layers.0.q");
    expect(name("model.layers.0.self_attn.q_a_proj.weight")).toBe("layers.0.q_a");
    expect(name("model.layers.0.self_attn.q_a_layernorm.weight")).toBe("layers.0.q_a_norm");
    expect(name("model.layers.0.self_attn.q_b_proj.weight")).toBe("layers.0.q_b");
    expect(name("model.layers.0.self_attn.kv_a_proj_with_mqa.weight")).toBe("layers.0.kv_a");
    expect(name("model.layers.0.self_attn.kv_a_layernorm.weight")).toBe("layers.0.kv_a_norm");
    expect(name("model.layers.0.self_attn.kv_b_proj.weight")).toBe("layers.0.kv_b");
    expect(name("model.layers.1.self_attn.o_proj.weight")).toBe("layers.1.o");
    expect(name("model.layers.0.mlp.gate_proj.weight")).toBe("layers.0.gate");
    expect(name("model.layers.1.mlp.gate.weight")).toBe("layers.1.router");
    expect(name("model.layers.1.mlp.experts.5.up_proj.weight")).toBe("layers.1.experts.5.up");
    expect(name("model.layers.1.mlp.shared_experts.down_proj.weight")).toBe("layers.1.shared_expert.down");
    expect(name("model.layers.0.self_attn.rotary_emb.inv_freq")).toBeNull();
  });

  test("transformers 5 stacked experts split per expert", () => {
    const pieces = canonicalTensors(spec, "model.layers.1.mlp.experts.gate_up_proj", [64, 2 * 1408, 2048])!;
    expect(pieces).toHaveLength(128);
    expect(pieces[3]).toEqual({ name: "layers.1.experts.1.up", shape: [1408, 2048], rows: [[3 * 1408, 1408]] });
  });
});
