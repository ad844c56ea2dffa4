import { describe, expect, test } from "bun:test";
import { configToSpec } from "../config";
import { canonicalName, expectedTensors, hfNameOf, mapWeights } from "../weights";
import { expectConfigError } from "../../../test/helpers/configErrors";

// The Hub's config.json of google/gemma-2-9b, google/gemma-3-1b-it and google/gemma-3-4b-it
// (minus token ids, dtype and the vision tower's details).
const gemma2_9b = {
  architectures: ["Gemma2ForCausalLM"], model_type: "gemma2", attention_bias: false, attn_logit_softcapping: 50.0,
  cache_implementation: "hybrid", final_logit_softcapping: 30.0, head_dim: 256, hidden_act: "gelu_pytorch_tanh",
  hidden_activation: "gelu_pytorch_tanh", hidden_size: 3584, intermediate_size: 14336, max_position_embeddings: 8192,
  num_attention_heads: 16, num_hidden_layers: 42, num_key_value_heads: 8, query_pre_attn_scalar: 256, rms_norm_eps: 1e-6,
  rope_theta: 10000.0, sliding_window: 4096, sliding_window_size: 4096, vocab_size: 256000,
};
const gemma3_1b = {
  architectures: ["Gemma3ForCausalLM"], model_type: "gemma3_text", attention_bias: false, attn_logit_softcapping: null,
  cache_implementation: "hybrid", final_logit_softcapping: null, head_dim: 256, hidden_activation: "gelu_pytorch_tanh",
  hidden_size: 1152, intermediate_size: 6912, max_position_embeddings: 32768, num_attention_heads: 4, num_hidden_layers: 26,
  num_key_value_heads: 1, query_pre_attn_scalar: 256, rms_norm_eps: 1e-6, rope_local_base_freq: 10000, rope_scaling: null,
  rope_theta: 1000000, sliding_window: 512, sliding_window_pattern: 6, vocab_size: 262144,
};
const gemma3_4b = {
  architectures: ["Gemma3ForConditionalGeneration"], model_type: "gemma3", boi_token_index: 255999, eoi_token_index: 256000,
  image_token_index: 262144, mm_tokens_per_image: 256,
  text_config: {
    hidden_size: 2560, intermediate_size: 10240, model_type: "gemma3_text", num_hidden_layers: 34,
    rope_scaling: { factor: 8.0, rope_type: "linear" }, sliding_window: 1024,
  },
  vision_config: { hidden_size: 1152, image_size: 896, model_type: "siglip_vision_model", num_hidden_layers: 27, patch_size: 14 },
};

const alternate = (n: number, every: number) => Array.from({ length: n }, (_, i) => ((i + 1) % every ? "sliding" : "full"));

describe("gemma2 / gemma3 config -> spec", () => {
  test("Gemma-2-9B: GeGLU, (1 + w) norms, sandwich norms, scaled embeddings, soft-caps, alternating window", () => {
    const s = configToSpec(gemma2_9b);
    expect(s).toMatchObject({
      arch: "gemma2", hidden_size: 3584, num_heads: 16, num_kv_heads: 8, head_dim: 256, norm: "rms", norm_eps: 1e-6,
      mlp: "gated_gelu_tanh", norm_weight_offset: 1, sandwich_norms: true, qk_norm: false, embed_scale: Math.sqrt(3584),
      attn_scale: 1 / 16, attn_logit_softcap: 50, final_logit_softcap: 30, sliding_window: 4096, rope_theta: 10000,
      rope_scaling: null, tie_word_embeddings: true, qkv_bias: false, o_bias: false, max_position_embeddings: 8192,
    });
    expect(s.layer_types).toEqual(alternate(42, 2));
    expect(s.layer_types!.slice(0, 2)).toEqual(["sliding", "full"]);
    expect(s.sliding_rope_theta).toBeUndefined();
  });

  test("Gemma 2: soft-caps null mean none, absent mean Gemma2Config's; query_pre_attn_scalar sets the scale", () => {
    expect(configToSpec({ ...gemma2_9b, attn_logit_softcapping: null, final_logit_softcapping: null }))
      .toMatchObject({ attn_logit_softcap: 0, final_logit_softcap: 0 });
    const { attn_logit_softcapping, final_logit_softcapping, ...noCaps } = gemma2_9b;
    expect(configToSpec(noCaps)).toMatchObject({ attn_logit_softcap: 50, final_logit_softcap: 30 });
    // gemma-2-27b: query_pre_attn_scalar 144 (hidden / heads)
    expect(configToSpec({ ...gemma2_9b, query_pre_attn_scalar: 144 }).attn_scale).toBeCloseTo(1 / 12, 12);
    expect(configToSpec({ ...gemma2_9b, sliding_window: null })).toMatchObject({ sliding_window: 0 });
    expectConfigError({ ...gemma2_9b, hidden_activation: "relu" }, /unsupported hidden_activation "relu"/);
  });

  test("Gemma-3-1B: q/k norms, 5 sliding : 1 full, local RoPE base for sliding layers, no soft-caps", () => {
    const s = configToSpec(gemma3_1b);
    expect(s).toMatchObject({
      arch: "gemma3_text", head_dim: 256, num_kv_heads: 1, qk_norm: true, norm_weight_offset: 1, sandwich_norms: true,
      embed_scale: Math.sqrt(1152), attn_scale: 1 / 16, attn_logit_softcap: 0, final_logit_softcap: 0, sliding_window: 512,
      rope_theta: 1e6, sliding_rope_theta: 10000, rope_scaling: null, tie_word_embeddings: true, vocab_size: 262144,
    });
    expect(s.layer_types).toEqual(alternate(26, 6));
    expect(s.layer_types!.filter((t) => t === "full").length).toBe(4);
  });

  test("Gemma-3-4B (multimodal): text_config over Gemma3TextConfig's defaults; linear scaling on full layers", () => {
    const s = configToSpec(gemma3_4b);
    expect(s).toMatchObject({
      arch: "gemma3", vocab_size: 262208, hidden_size: 2560, intermediate_size: 10240, num_layers: 34, num_heads: 8,
      num_kv_heads: 4, head_dim: 256, max_position_embeddings: 131072, rope_theta: 1e6, sliding_rope_theta: 10000,
      rope_scaling: { type: "linear", factor: 8 }, sliding_window: 1024, qk_norm: true, attn_scale: 1 / 16,
      tie_word_embeddings: true,
    });
    expect(s.layer_types).toEqual(alternate(34, 6));
    expectConfigError({ ...gemma3_4b, text_config: { model_type: "llama" } }, /text_config\.model_type "llama"/);
    expectConfigError({ ...gemma3_4b, text_config: [] }, /text_config must be an object/);
  });

  test("transformers 5 configs: rope_parameters per layer type, layer_types written out", () => {
    const { rope_theta, rope_local_base_freq, rope_scaling, sliding_window_pattern, ...rest } = gemma3_1b;
    const v5 = {
      ...rest,
      layer_types: alternate(26, 6).map((t) => `${t}_attention`),
      rope_parameters: {
        full_attention: { rope_type: "linear", factor: 8.0, rope_theta: 1000000.0 },
        sliding_attention: { rope_type: "default", rope_theta: 10000.0 },
      },
    };
    const s = configToSpec(v5);
    expect(s).toMatchObject({ rope_theta: 1e6, sliding_rope_theta: 10000, rope_scaling: { type: "linear", factor: 8 } });
    expect(s.layer_types).toEqual(alternate(26, 6));
    const gemma2v5 = { ...gemma2_9b, rope_parameters: { full_attention: { rope_type: "default", rope_theta: 10000 }, sliding_attention: { rope_type: "default", rope_theta: 10000 } } };
    expect(configToSpec(gemma2v5).rope_theta).toBe(10000);
    expectConfigError({ ...v5, layer_types: ["sliding_attention"] }, /layer_types must be a list of num_hidden_layers \(26\)/);
    expectConfigError({ ...gemma3_1b, use_bidirectional_attention: true }, /use_bidirectional_attention/);
  });
});

describe("gemma weight names", () => {
  const small = {
    hidden_size: 8, intermediate_size: 16, num_attention_heads: 2, num_key_value_heads: 1, head_dim: 4, num_hidden_layers: 2,
    vocab_size: 10, sliding_window: 4,
  };

  test("four norms per layer: input, post-attention, pre- and post-feedforward", () => {
    const spec = configToSpec({ ...small, model_type: "gemma2" });
    const names: [string, string | null][] = [
      ["model.layers.0.input_layernorm.weight", "layers.0.attn_norm"],
      ["model.layers.0.post_attention_layernorm.weight", "layers.0.post_attn_norm"],
      ["model.layers.0.pre_feedforward_layernorm.weight", "layers.0.mlp_norm"],
      ["model.layers.0.post_feedforward_layernorm.weight", "layers.0.post_mlp_norm"],
      ["model.layers.1.mlp.gate_proj.weight", "layers.1.gate"],
      ["model.norm.weight", "final_norm"],
      ["lm_head.weight", null],  // tied
    ];
    for (const [hf, want] of names) expect(canonicalName(spec, hf)).toBe(want);
    for (const name of expectedTensors(spec).keys()) expect(canonicalName(spec, hfNameOf(spec, name))).toBe(name);
  });

  test("gemma3 multimodal: both language-model layouts map; the vision tower is skipped", () => {
    const spec = configToSpec({ model_type: "gemma3", text_config: { ...small, model_type: "gemma3_text" } });
    expect(canonicalName(spec, "language_model.model.layers.1.self_attn.q_norm.weight")).toBe("layers.1.q_norm");
    expect(canonicalName(spec, "model.language_model.layers.1.self_attn.k_norm.weight")).toBe("layers.1.k_norm");
    expect(canonicalName(spec, "language_model.model.embed_tokens.weight")).toBe("embed");
    expect(canonicalName(spec, "model.language_model.norm.weight")).toBe("final_norm");
    expect(hfNameOf(spec, "layers.0.post_mlp_norm")).toBe("language_model.model.layers.0.post_feedforward_layernorm.weight");
    const headers = [...expectedTensors(spec)].map(([name, shape]) => ({ name: hfNameOf(spec, name), shape }));
    headers.push(
      { name: "vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight", shape: [4, 4] },
      { name: "multi_modal_projector.mm_input_projection_weight", shape: [4, 8] },
    );
    const { mapped, skipped } = mapWeights(spec, headers);
    expect(mapped.length).toBe(expectedTensors(spec).size);
    expect(skipped).toEqual(["vision_tower.vision_model.encoder.layers.0.self_attn.q_proj.weight", "multi_modal_projector.mm_input_projection_weight"]);
  });
});
