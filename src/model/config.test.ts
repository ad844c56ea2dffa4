import { describe, expect, test } from "bun:test";
import { configToSpec } from "./config";
import { expectConfigError } from "../../test/helpers/configErrors";

// Trimmed from the real config.json files of these models.
const llama2 = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_act: "silu",
  hidden_size: 4096,
  intermediate_size: 11008,
  max_position_embeddings: 4096,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 32,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  tie_word_embeddings: false,
  vocab_size: 32000,
};

const llama31 = {
  model_type: "llama",
  hidden_act: "silu",
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 131072,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_scaling: {
    factor: 8.0,
    low_freq_factor: 1.0,
    high_freq_factor: 4.0,
    original_max_position_embeddings: 8192,
    rope_type: "llama3",
  },
  rope_theta: 500000.0,
  vocab_size: 128256,
  attention_bias: false,
  mlp_bias: false,
};

const qwen2 = {
  model_type: "qwen2",
  hidden_act: "silu",
  hidden_size: 896,
  intermediate_size: 4864,
  max_position_embeddings: 32768,
  max_window_layers: 24,
  num_attention_heads: 14,
  num_hidden_layers: 24,
  num_key_value_heads: 2,
  rms_norm_eps: 1e-6,
  rope_theta: 1000000.0,
  sliding_window: 32768,
  tie_word_embeddings: true,
  use_sliding_window: false,
  vocab_size: 151936,
};

const mistral = {
  model_type: "mistral",
  hidden_act: "silu",
  hidden_size: 4096,
  intermediate_size: 14336,
  max_position_embeddings: 32768,
  num_attention_heads: 32,
  num_hidden_layers: 32,
  num_key_value_heads: 8,
  rms_norm_eps: 1e-5,
  rope_theta: 10000.0,
  sliding_window: 4096,
  vocab_size: 32000,
};

describe("configToSpec", () => {
  test("llama 2: MHA, no scaling, untied", () => {
    const s = configToSpec(llama2);
    expect(s).toMatchObject({
      arch: "llama",
      num_heads: 32,
      num_kv_heads: 32,
      head_dim: 128,
      norm: "rms",
      norm_eps: 1e-5,
      rope_theta: 10000,
      rope_scaling: null,
      partial_rotary_factor: 1,
      sliding_window: 0,
      qkv_bias: false,
      o_bias: false,
      mlp_bias: false,
      mlp: "gated_silu",
      layout: "sequential",
      tie_word_embeddings: false,
    });
  });

  test("llama 3.1: old keys, rope_type llama3", () => {
    const s = configToSpec(llama31);
    expect(s.num_kv_heads).toBe(8);
    expect(s.rope_theta).toBe(500000);
    expect(s.rope_scaling).toEqual({
      type: "llama3",
      factor: 8,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    });
  });

  test("transformers v5 rope_parameters", () => {
    const { rope_scaling, rope_theta, ...rest } = llama31;
    const s = configToSpec({ ...rest, rope_parameters: { ...rope_scaling, rope_theta } });
    expect(s).toEqual(configToSpec(llama31));
    const d = configToSpec({ ...llama2, rope_parameters: { rope_type: "default", rope_theta: 20000 } });
    expect(d.rope_theta).toBe(20000);
    expect(d.rope_scaling).toBeNull();
  });

  test("linear scaling with the old 'type' key", () => {
    const s = configToSpec({ ...llama2, rope_scaling: { type: "linear", factor: 4 } });
    expect(s.rope_scaling).toEqual({ type: "linear", factor: 4 });
  });

  test("unknown scaling types and missing fields are refused (yarn, dynamic, longrope: ropeConfig.test.ts)", () => {
    expectConfigError({ ...llama2, rope_scaling: { type: "ntk-by-parts", factor: 2 } }, /unsupported rope scaling "ntk-by-parts"/);
    expectConfigError({ ...llama2, rope_parameters: { rope_type: "mrope", rope_theta: 1e6 } }, /"mrope" in rope_parameters/);
    expectConfigError({ ...llama2, rope_scaling: { rope_type: "llama3", factor: 8 } }, /rope_scaling\.low_freq_factor/);
    // Phi-3's old spelling "su" means LongRoPE only for model_type phi3
    expectConfigError({ ...llama2, rope_scaling: { type: "su", short_factor: [], long_factor: [] } }, /unsupported rope scaling "su"/);
  });

  test("llama attention_bias and mlp_bias; head_dim from config", () => {
    const s = configToSpec({ ...llama2, attention_bias: true, mlp_bias: true, head_dim: 64 });
    expect(s).toMatchObject({ qkv_bias: true, o_bias: true, mlp_bias: true, head_dim: 64 });
  });

  test("qwen2: qkv bias, tied embeddings, window off unless use_sliding_window", () => {
    const s = configToSpec(qwen2);
    expect(s).toMatchObject({ arch: "qwen2", qkv_bias: true, o_bias: false, tie_word_embeddings: true, sliding_window: 0, head_dim: 64 });
    expect(configToSpec({ ...qwen2, tie_word_embeddings: false }).tie_word_embeddings).toBe(false);
    expect(configToSpec({ ...qwen2, use_sliding_window: true, max_window_layers: 0 }).sliding_window).toBe(32768);
    expect(configToSpec({ ...qwen2, use_sliding_window: true, sliding_window: null, max_window_layers: 0 }).sliding_window).toBe(0);
    // all layers are below max_window_layers: full attention everywhere
    expect(configToSpec({ ...qwen2, use_sliding_window: true }).sliding_window).toBe(0);
    // layers i >= max_window_layers slide; the rest are full (Qwen2Config's layer_types)
    const mixed = configToSpec({ ...qwen2, use_sliding_window: true, max_window_layers: 12 });
    expect(mixed.sliding_window).toBe(32768);
    expect(mixed.layer_types).toEqual([...Array(12).fill("full"), ...Array(12).fill("sliding")]);
    const explicit = Array.from({ length: 24 }, (_, i) => (i % 2 ? "full_attention" : "sliding_attention"));
    expect(configToSpec({ ...qwen2, use_sliding_window: true, layer_types: explicit }).layer_types![0]).toBe("sliding");
    expect(configToSpec({ ...qwen2, layer_types: explicit }).sliding_window).toBe(0);  // use_sliding_window false wins
  });

  test("mistral: sliding window, null means none, absent means 4096", () => {
    expect(configToSpec(mistral)).toMatchObject({ arch: "mistral", sliding_window: 4096, num_kv_heads: 8, qkv_bias: false });
    expect(configToSpec({ ...mistral, sliding_window: null }).sliding_window).toBe(0);
    const { sliding_window, ...noKey } = mistral;
    expect(configToSpec(noKey).sliding_window).toBe(sliding_window);
  });

  test("defaults: kv heads = heads; exact and tanh GELU are told apart", () => {
    const { num_key_value_heads, ...noKv } = llama2;
    expect(configToSpec(noKv).num_kv_heads).toBe(32);
    expect(configToSpec({ ...llama2, hidden_act: "gelu" }).mlp).toBe("gated_gelu");
    expect(configToSpec({ ...llama2, hidden_act: "gelu_pytorch_tanh" }).mlp).toBe("gated_gelu_tanh");
    expect(configToSpec({ ...llama2, hidden_act: "gelu_new" }).mlp).toBe("gated_gelu_tanh");
    expectConfigError({ ...llama2, hidden_act: "relu" }, /unsupported hidden_act "relu"/);
    expectConfigError({ ...llama2, hidden_act: "quick_gelu" }, /unsupported hidden_act "quick_gelu"/);
  });

  test("unsupported model_type lists the supported ones", () => {
    expectConfigError({ ...llama2, model_type: "gpt2" }, /unsupported model_type "gpt2"; supported: llama, mistral, qwen2/);
    expectConfigError({ hidden_size: 1 }, /missing required field model_type/);
  });

  test("missing and malformed fields are named", () => {
    const { intermediate_size, ...noInter } = llama2;
    expectConfigError(noInter, /missing required field intermediate_size/);
    expectConfigError({ ...llama2, vocab_size: "32000" }, /vocab_size must be a number/);
    expectConfigError({ ...llama2, num_hidden_layers: 1.5 }, /num_hidden_layers must be a positive integer/);
    expectConfigError({ ...llama2, num_key_value_heads: 5 }, /multiple of num_key_value_heads/);
    expectConfigError({ ...llama2, tie_word_embeddings: "yes" }, /tie_word_embeddings must be a boolean/);
  });
});

// Trimmed from the Hub configs of facebook/opt-125m, facebook/opt-350m, tiiuae/falcon-7b,
// tiiuae/falcon-40b, microsoft/phi-2 and mistralai/Mixtral-8x7B-v0.1.
const opt125m = {
  model_type: "opt", activation_function: "relu", do_layer_norm_before: true, ffn_dim: 3072, hidden_size: 768,
  max_position_embeddings: 2048, num_attention_heads: 12, num_hidden_layers: 12, vocab_size: 50272,
  word_embed_proj_dim: 768, _remove_final_layer_norm: false,
};
const opt350m = { ...opt125m, hidden_size: 1024, ffn_dim: 4096, num_attention_heads: 16, num_hidden_layers: 24,
  word_embed_proj_dim: 512, do_layer_norm_before: false };
const falcon7b = {
  model_type: "falcon", alibi: false, bias: false, hidden_size: 4544, layer_norm_epsilon: 1e-5, multi_query: true,
  new_decoder_architecture: false, num_attention_heads: 71, num_hidden_layers: 32, parallel_attn: true, vocab_size: 65024,
};
const falcon40b = {
  model_type: "falcon", alibi: false, bias: false, hidden_size: 8192, new_decoder_architecture: true,
  num_attention_heads: 128, num_hidden_layers: 60, num_kv_heads: 8, parallel_attn: true, vocab_size: 65024,
};
const phi2 = {
  model_type: "phi", hidden_act: "gelu_new", hidden_size: 2560, intermediate_size: 10240, layer_norm_eps: 1e-5,
  max_position_embeddings: 2048, num_attention_heads: 32, num_hidden_layers: 32, num_key_value_heads: 32,
  partial_rotary_factor: 0.4, qk_layernorm: false, rope_theta: 10000.0, tie_word_embeddings: false, vocab_size: 51200,
};
const mixtral = {
  model_type: "mixtral", hidden_act: "silu", hidden_size: 4096, intermediate_size: 14336, max_position_embeddings: 32768,
  num_attention_heads: 32, num_experts_per_tok: 2, num_hidden_layers: 32, num_key_value_heads: 8, num_local_experts: 8,
  rms_norm_eps: 1e-5, rope_theta: 1e6, sliding_window: null, tie_word_embeddings: false, vocab_size: 32000,
};

describe("configToSpec: OPT, Falcon, Phi, Mixtral", () => {
  test("opt-125m: learned positions, LayerNorm, relu, biases, tied", () => {
    expect(configToSpec(opt125m)).toMatchObject({
      arch: "opt", hidden_size: 768, intermediate_size: 3072, num_heads: 12, num_kv_heads: 12, head_dim: 64,
      embed_dim: 768, norm: "layer", norm_eps: 1e-5, norm_position: "pre", final_norm: true, positions: "learned",
      qkv_bias: true, o_bias: true, mlp_bias: true, lm_head_bias: false, mlp: "relu", layout: "sequential",
      tie_word_embeddings: true, num_experts: 0,
    });
    expect(configToSpec({ ...opt125m, enable_bias: false })).toMatchObject({ qkv_bias: false, o_bias: false, mlp_bias: false });
    expect(configToSpec({ ...opt125m, _remove_final_layer_norm: true }).final_norm).toBe(false);
    expect(configToSpec({ ...opt125m, activation_function: "gelu" }).mlp).toBe("gelu");
  });

  test("opt-350m: post-norm without a final norm, project_in/out", () => {
    expect(configToSpec(opt350m)).toMatchObject({ embed_dim: 512, hidden_size: 1024, norm_position: "post", final_norm: false });
  });

  test("opt refusals", () => {
    expectConfigError({ ...opt125m, layer_norm_elementwise_affine: false }, /layer_norm_elementwise_affine/);
    expectConfigError({ ...opt125m, activation_function: "silu" }, /"silu" for a plain/);
    const { ffn_dim, ...noFfn } = opt125m;
    expectConfigError(noFfn, /missing required field ffn_dim/);
  });

  test("falcon-7b: multi-query, one norm in parallel, exact gelu, tied", () => {
    expect(configToSpec(falcon7b)).toMatchObject({
      arch: "falcon", num_heads: 71, num_kv_heads: 1, head_dim: 64, intermediate_size: 4 * 4544, norm: "layer",
      layout: "parallel", mlp: "gelu", qkv_bias: false, tie_word_embeddings: true, positions: "rope", rope_theta: 10000,
      max_position_embeddings: 2048,
    });
  });

  test("falcon-40b: new decoder architecture, grouped KV, two norms; old key spellings", () => {
    expect(configToSpec(falcon40b)).toMatchObject({ num_heads: 128, num_kv_heads: 8, layout: "parallel_two_norms" });
    expect(configToSpec({ ...falcon40b, num_ln_in_parallel_attn: 1 }).layout).toBe("parallel");
    const { hidden_size, num_attention_heads, num_hidden_layers, num_kv_heads, ...rest } = falcon40b;
    const old = { ...rest, n_embed: hidden_size, n_head: num_attention_heads, n_layer: num_hidden_layers, n_head_kv: num_kv_heads };
    expect(configToSpec(old)).toEqual(configToSpec(falcon40b));
  });

  test("falcon: sequential MHA, biases, tanh gelu; alibi is refused", () => {
    const s = configToSpec({ ...falcon7b, parallel_attn: false, multi_query: false, bias: true, activation: "gelu_new",
      num_attention_heads: 8, hidden_size: 512, ffn_hidden_size: 1000 });
    expect(s).toMatchObject({ layout: "sequential", num_kv_heads: 8, qkv_bias: true, o_bias: true, mlp_bias: true,
      mlp: "gelu_tanh", intermediate_size: 1000 });
    expectConfigError({ ...falcon7b, alibi: true }, /alibi/);
    expectConfigError({ ...falcon40b, parallel_attn: false }, /parallel_attn false/);
    expectConfigError({ ...falcon7b, hidden_size: 4545 }, /multiple of num_attention_heads/);
  });

  test("phi-2: partial rotary 0.4, tanh gelu, parallel, biases including the LM head", () => {
    expect(configToSpec(phi2)).toMatchObject({
      arch: "phi", head_dim: 80, partial_rotary_factor: 0.4, mlp: "gelu_tanh", layout: "parallel", norm: "layer",
      qkv_bias: true, o_bias: true, mlp_bias: true, lm_head_bias: true, tie_word_embeddings: false, final_norm: true,
    });
    const { partial_rotary_factor, rope_theta, ...noRope } = phi2;
    expect(configToSpec(noRope).partial_rotary_factor).toBe(0.5);  // PhiConfig's default
    expect(configToSpec({ ...noRope, rope_parameters: { rope_type: "default", rope_theta: 1e4, partial_rotary_factor: 0.4 } })
      .partial_rotary_factor).toBe(0.4);
    expectConfigError({ ...phi2, qk_layernorm: true }, /qk_layernorm/);
  });

  test("mixtral: experts, top-k, no window, theta 1e6", () => {
    expect(configToSpec(mixtral)).toMatchObject({
      arch: "mixtral", num_experts: 8, num_experts_per_tok: 2, sliding_window: 0, rope_theta: 1e6, mlp: "gated_silu",
      num_kv_heads: 8, norm: "rms",
    });
    const { rope_theta, ...noTheta } = mixtral;
    expect(configToSpec(noTheta).rope_theta).toBe(1e6);
    expect(configToSpec({ ...mixtral, sliding_window: 4096 }).sliding_window).toBe(4096);
    expectConfigError({ ...mixtral, num_experts_per_tok: 9 }, /num_experts_per_tok \(9\)/);
    const { num_local_experts, ...noExperts } = mixtral;
    expectConfigError(noExperts, /num_local_experts/);
  });
});
