import { describe, expect, test } from "bun:test";
import { configToSpec, ModelConfigError } from "./config";

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

function expectConfigError(config: object, pattern: RegExp): void {
  let err: unknown;
  try {
    configToSpec(config);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelConfigError);
  expect((err as Error).message).toMatch(pattern);
}

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

  test("dynamic, yarn and others are refused", () => {
    expectConfigError({ ...llama2, rope_scaling: { type: "dynamic", factor: 2 } }, /unsupported rope scaling "dynamic"/);
    expectConfigError({ ...llama2, rope_parameters: { rope_type: "yarn", factor: 4, rope_theta: 1e6 } }, /"yarn" in rope_parameters/);
    expectConfigError({ ...llama2, rope_scaling: { rope_type: "llama3", factor: 8 } }, /rope_scaling\.low_freq_factor/);
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
    expectConfigError({ ...qwen2, use_sliding_window: true, max_window_layers: 12 }, /sliding window on 12 of 24 layers/);
  });

  test("mistral: sliding window, null means none, absent means 4096", () => {
    expect(configToSpec(mistral)).toMatchObject({ arch: "mistral", sliding_window: 4096, num_kv_heads: 8, qkv_bias: false });
    expect(configToSpec({ ...mistral, sliding_window: null }).sliding_window).toBe(0);
    const { sliding_window, ...noKey } = mistral;
    expect(configToSpec(noKey).sliding_window).toBe(sliding_window);
  });

  test("defaults: kv heads = heads, gelu maps to gated_gelu", () => {
    const { num_key_value_heads, ...noKv } = llama2;
    expect(configToSpec(noKv).num_kv_heads).toBe(32);
    expect(configToSpec({ ...llama2, hidden_act: "gelu_pytorch_tanh" }).mlp).toBe("gated_gelu");
    expectConfigError({ ...llama2, hidden_act: "relu" }, /unsupported hidden_act "relu"/);
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
