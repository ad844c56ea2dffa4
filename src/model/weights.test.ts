import { describe, expect, test } from "bun:test";
import { configToSpec } from "./config";
import { canonicalName, canonicalTensors, expectedTensors, hfNameOf, mapWeights, ModelLoadError, sliceRows } from "./weights";

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

describe("fused and renamed tensors of OPT, Falcon, Phi, Mixtral", () => {
  const small = { hidden_size: 8, num_attention_heads: 4, num_hidden_layers: 1, vocab_size: 10 };

  test("falcon query_key_value: rows grouped per KV head (new architecture, multi-query, MHA)", () => {
    // head_dim 2; new architecture, 4 heads / 2 KV heads: | q0 q1 k0 v0 | q2 q3 k1 v1 |
    const gqa = configToSpec({ ...small, model_type: "falcon", new_decoder_architecture: true, num_kv_heads: 2 });
    const pieces = canonicalTensors(gqa, "transformer.h.0.self_attention.query_key_value.weight", [16, 8])!;
    expect(pieces).toEqual([
      { name: "layers.0.q", shape: [8, 8], rows: [[0, 4], [8, 4]] },
      { name: "layers.0.k", shape: [4, 8], rows: [[4, 2], [12, 2]] },
      { name: "layers.0.v", shape: [4, 8], rows: [[6, 2], [14, 2]] },
    ]);
    // multi-query: | q0 q1 q2 q3 k v |; with a bias (elements, not rows of a matrix)
    const mqa = configToSpec({ ...small, model_type: "falcon", bias: true });
    expect(canonicalTensors(mqa, "transformer.h.0.self_attention.query_key_value.bias", [12])).toEqual([
      { name: "layers.0.q_bias", shape: [8], rows: [[0, 8]] },
      { name: "layers.0.k_bias", shape: [2], rows: [[8, 2]] },
      { name: "layers.0.v_bias", shape: [2], rows: [[10, 2]] },
    ]);
    // MHA (multi_query false): | q0 k0 v0 | q1 k1 v1 | ...
    const mha = configToSpec({ ...small, model_type: "falcon", multi_query: false });
    const [q, k] = canonicalTensors(mha, "transformer.h.0.self_attention.query_key_value.weight", [24, 8])!;
    expect(q!.rows).toEqual([[0, 2], [6, 2], [12, 2], [18, 2]]);
    expect(k!.rows).toEqual([[2, 2], [8, 2], [14, 2], [20, 2]]);
    expectLoadError(() => canonicalTensors(gqa, "transformer.h.0.self_attention.query_key_value.weight", [24, 8]),
      /query_key_value\.weight has shape \[24, 8\], config\.json implies \[16, 8\]/);
  });

  test("falcon: a full checkpoint maps; missing q names the fused tensor", () => {
    const spec = configToSpec({ ...small, model_type: "falcon", new_decoder_architecture: true, num_kv_heads: 2, tie_word_embeddings: false });
    const headers = [
      { name: "transformer.word_embeddings.weight", shape: [10, 8] }, { name: "lm_head.weight", shape: [10, 8] },
      { name: "transformer.ln_f.weight", shape: [8] }, { name: "transformer.ln_f.bias", shape: [8] },
      ...["ln_attn", "ln_mlp"].flatMap((n) => ["weight", "bias"].map((p) => ({ name: `transformer.h.0.${n}.${p}`, shape: [8] }))),
      { name: "transformer.h.0.self_attention.query_key_value.weight", shape: [16, 8] },
      { name: "transformer.h.0.self_attention.dense.weight", shape: [8, 8] },
      { name: "transformer.h.0.mlp.dense_h_to_4h.weight", shape: [32, 8] },
      { name: "transformer.h.0.mlp.dense_4h_to_h.weight", shape: [8, 32] },
    ];
    const { mapped } = mapWeights(spec, headers);
    expect(mapped.map((m) => m.name).sort()).toEqual([...expectedTensors(spec).keys()].sort());
    expect(hfNameOf(spec, "layers.0.k")).toBe("transformer.h.0.self_attention.query_key_value.weight");
    expect(hfNameOf(spec, "layers.0.mlp_norm_bias")).toBe("transformer.h.0.ln_mlp.bias");
    expectLoadError(() => mapWeights(spec, headers.filter((h) => !h.name.includes("query_key_value"))),
      /missing 3 required tensor\(s\): layers\.0\.q \(transformer\.h\.0\.self_attention\.query_key_value\.weight\)/);
  });

  test("mixtral: per-expert (v4) and stacked (transformers v5) checkpoints give the same tensors", () => {
    const spec = configToSpec({ ...small, model_type: "mixtral", intermediate_size: 6, num_local_experts: 3, num_key_value_heads: 2 });
    const shapes = expectedTensors(spec);
    expect(shapes.get("layers.0.router")).toEqual([3, 8]);
    expect(shapes.get("layers.0.experts.2.down")).toEqual([8, 6]);
    expect(shapes.has("layers.0.up")).toBe(false);
    const v4 = checkpoint(spec);
    expect(v4.find((h) => h.name.endsWith("experts.1.w3.weight"))?.name).toBe("model.layers.0.block_sparse_moe.experts.1.w3.weight");
    expect(hfNameOf(spec, "layers.0.router")).toBe("model.layers.0.block_sparse_moe.gate.weight");
    const fromV4 = mapWeights(spec, v4).mapped;
    const v5 = [
      ...v4.filter((h) => !h.name.includes("block_sparse_moe")),
      { name: "model.layers.0.mlp.gate.weight", shape: [3, 8] },
      { name: "model.layers.0.mlp.experts.gate_up_proj", shape: [3, 12, 8] },
      { name: "model.layers.0.mlp.experts.down_proj", shape: [3, 8, 6] },
    ];
    const fromV5 = mapWeights(spec, v5).mapped;
    expect(fromV5.map((m) => m.name).sort()).toEqual(fromV4.map((m) => m.name).sort());
    const byName = new Map(fromV5.map((m) => [m.name, m]));
    expect(byName.get("layers.0.experts.1.gate")!.rows).toEqual([[12, 6]]);
    expect(byName.get("layers.0.experts.1.up")!.rows).toEqual([[18, 6]]);
    expect(byName.get("layers.0.experts.2.down")!.rows).toEqual([[16, 8]]);
    expectLoadError(() => canonicalName(spec, "model.layers.0.block_sparse_moe.experts.3.w1.weight"), /expert 3, but the config has 3 experts/);
  });

  test("opt: position table without its offset rows, both prefixes, tied head skipped", () => {
    const spec = configToSpec({ ...small, model_type: "opt", ffn_dim: 16, max_position_embeddings: 6 });
    expect(canonicalTensors(spec, "model.decoder.embed_positions.weight", [8, 8])).toEqual([
      { name: "pos_embed", shape: [6, 8], rows: [[2, 6]] },
    ]);
    expectLoadError(() => canonicalTensors(spec, "decoder.embed_positions.weight", [6, 8]), /shape \[6, 8\], config\.json implies \[8, 8\]/);
    expect(canonicalName(spec, "decoder.layers.0.fc1.bias")).toBe("layers.0.up_bias");
    expect(canonicalName(spec, "model.decoder.layers.0.final_layer_norm.weight")).toBe("layers.0.mlp_norm");
    expect(canonicalName(spec, "model.decoder.final_layer_norm.weight")).toBe("final_norm");
    expect(canonicalName(spec, "lm_head.weight")).toBeNull();
    const headers = checkpoint(spec).map((h) => (h.name.endsWith("embed_positions.weight") ? { ...h, shape: [8, 8] } : h));
    expect(mapWeights(spec, headers).mapped.length).toBe(expectedTensors(spec).size);
    const proj = configToSpec({ ...small, model_type: "opt", ffn_dim: 16, word_embed_proj_dim: 4, do_layer_norm_before: false });
    const names = [...expectedTensors(proj).keys()];
    expect(names).toContain("embed_proj_in");
    expect(names).not.toContain("final_norm");
    expect(expectedTensors(proj).get("embed")).toEqual([10, 4]);
    expect(canonicalName(proj, "model.decoder.project_out.weight")).toBe("embed_proj_out");
  });

  test("phi names, LM head bias", () => {
    // partial_rotary_factor 1: phi's default 0.5 of head_dim 2 is one rotary dim, which no engine runs
    const spec = configToSpec({ ...small, model_type: "phi", intermediate_size: 16, partial_rotary_factor: 1 });
    expect(canonicalName(spec, "model.layers.0.self_attn.dense.bias")).toBe("layers.0.o_bias");
    expect(canonicalName(spec, "model.layers.0.mlp.fc2.weight")).toBe("layers.0.down");
    expect(canonicalName(spec, "model.final_layernorm.bias")).toBe("final_norm_bias");
    expect(canonicalName(spec, "lm_head.bias")).toBe("lm_head_bias");
    for (const name of expectedTensors(spec).keys()) expect(canonicalName(spec, hfNameOf(spec, name))).toBe(name);
    expect(mapWeights(spec, checkpoint(spec)).mapped.length).toBe(expectedTensors(spec).size);
  });

  test("sliceRows: one range is a view, several are copied in order", () => {
    const data = Uint8Array.from({ length: 12 }, (_, i) => i);
    const view = sliceRows(data, 3, [[1, 2]]);
    expect(Array.from(view)).toEqual([3, 4, 5, 6, 7, 8]);
    expect(view.buffer).toBe(data.buffer);
    expect(Array.from(sliceRows(data, 2, [[5, 1], [0, 2]]))).toEqual([10, 11, 0, 1, 2, 3]);
  });
});

describe("the tensor list comes from libfastgen's table (fg_spec_tensors)", () => {
  test("MoE: each layer's router, then its experts in order; a spec the library rejects is a ModelLoadError", () => {
    const moe = configToSpec({ ...base, model_type: "mixtral", num_local_experts: 2, num_experts_per_tok: 1 });
    const names = [...expectedTensors(moe).keys()].filter((n) => n.startsWith("layers.0."));
    expect(names.slice(-7)).toEqual(["layers.0.router", "layers.0.experts.0.gate", "layers.0.experts.0.up",
      "layers.0.experts.0.down", "layers.0.experts.1.gate", "layers.0.experts.1.up", "layers.0.experts.1.down"]);
    expect(expectedTensors(moe).get("layers.1.experts.1.down")).toEqual([8, 16]);
    expectLoadError(() => expectedTensors({ ...llama, num_heads: 0 }), /model spec rejected/);
  });
});
