import { describe, expect, test } from "bun:test";
import { configToSpec } from "./config";
import { canonicalName, expectedTensors, hfNameOf, mapWeights, ModelLoadError } from "./weights";

const base = {
  model_type: "llama",
  hidden_size: 8,
  intermediate_size: 16,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  num_hidden_layers: 2,
  vocab_size: 10,
};
const llama = configToSpec(base);

/** HF headers of a complete checkpoint for `spec`, built from the canonical list. */
function checkpoint(spec: ReturnType<typeof configToSpec>) {
  return [...expectedTensors(spec)].map(([name, shape]) => ({ name: hfNameOf(spec, name), shape }));
}

function expectLoadError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelLoadError);
  expect((err as Error).message).toMatch(pattern);
}

describe("canonicalName", () => {
  test("llama names", () => {
    const cases: [string, string | null][] = [
      ["model.embed_tokens.weight", "embed"],
      ["model.layers.0.input_layernorm.weight", "layers.0.attn_norm"],
      ["model.layers.1.self_attn.q_proj.weight", "layers.1.q"],
      ["model.layers.1.self_attn.k_proj.weight", "layers.1.k"],
      ["model.layers.1.self_attn.v_proj.bias", "layers.1.v_bias"],
      ["model.layers.0.self_attn.o_proj.weight", "layers.0.o"],
      ["model.layers.0.post_attention_layernorm.weight", "layers.0.mlp_norm"],
      ["model.layers.0.mlp.gate_proj.weight", "layers.0.gate"],
      ["model.layers.0.mlp.up_proj.weight", "layers.0.up"],
      ["model.layers.0.mlp.down_proj.bias", "layers.0.down_bias"],
      ["model.norm.weight", "final_norm"],
      ["lm_head.weight", "lm_head"],
      ["model.layers.0.self_attn.rotary_emb.inv_freq", null],
      ["model.layers.0.constructor.weight", null],
      ["something.else.weight", null],
    ];
    for (const [hf, want] of cases) expect(canonicalName(llama, hf)).toBe(want);
  });

  test("tied lm_head is ignored; layer beyond the config is an error", () => {
    const tied = configToSpec({ ...base, tie_word_embeddings: true });
    expect(canonicalName(tied, "lm_head.weight")).toBeNull();
    expectLoadError(() => canonicalName(llama, "model.layers.2.mlp.up_proj.weight"), /layer 2, but the config has 2 layers/);
  });

  test("hfNameOf inverts canonicalName", () => {
    const spec = configToSpec({ ...base, attention_bias: true, mlp_bias: true });
    for (const name of expectedTensors(spec).keys()) expect(canonicalName(spec, hfNameOf(spec, name))).toBe(name);
  });
});

describe("mapWeights", () => {
  test("a full checkpoint maps; extras are skipped", () => {
    const headers = checkpoint(llama);
    headers.push({ name: "model.layers.0.self_attn.rotary_emb.inv_freq", shape: [2] });
    const { mapped, skipped } = mapWeights(llama, headers);
    expect(mapped.length).toBe(3 + 2 * 9); // embed, final_norm, lm_head + 9 per layer
    expect(skipped).toEqual(["model.layers.0.self_attn.rotary_emb.inv_freq"]);
    expect(mapped.find((m) => m.name === "layers.1.k")!.hfName).toBe("model.layers.1.self_attn.k_proj.weight");
  });

  test("qwen2 needs q/k/v biases; tied lm_head in the file is skipped", () => {
    const qwen = configToSpec({ ...base, model_type: "qwen2", tie_word_embeddings: true });
    const headers = checkpoint(qwen);
    expect(headers.some((h) => h.name === "model.layers.0.self_attn.q_proj.bias")).toBe(true);
    headers.push({ name: "lm_head.weight", shape: [10, 8] });
    const { mapped, skipped } = mapWeights(qwen, headers);
    expect(mapped.some((m) => m.name === "lm_head")).toBe(false);
    expect(skipped).toEqual(["lm_head.weight"]);
    expectLoadError(
      () => mapWeights(qwen, headers.filter((h) => !h.name.endsWith("k_proj.bias"))),
      /missing 2 required tensor\(s\): layers\.0\.k_bias \(model\.layers\.0\.self_attn\.k_proj\.bias\), layers\.1\.k_bias/,
    );
  });

  test("missing, unexpected and misshapen tensors are named", () => {
    const headers = checkpoint(llama);
    expectLoadError(() => mapWeights(llama, headers.filter((h) => h.name !== "lm_head.weight")), /missing 1 required tensor\(s\): lm_head \(lm_head\.weight\)/);
    expectLoadError(
      () => mapWeights(llama, [...headers, { name: "model.layers.0.self_attn.q_proj.bias", shape: [8] }]),
      /q_proj\.bias \(-> layers\.0\.q_bias\) is not part of this model's spec/,
    );
    const bad = headers.map((h) => (h.name === "model.layers.1.self_attn.k_proj.weight" ? { ...h, shape: [8, 8] } : h));
    expectLoadError(() => mapWeights(llama, bad), /model\.layers\.1\.self_attn\.k_proj\.weight \(-> layers\.1\.k\) has shape \[8, 8\], config\.json implies \[4, 8\]/);
  });
});
