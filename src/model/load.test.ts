import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeValues, writeSafetensors, writeShardedSafetensors } from "../../test/helpers/safetensors-writer";
import type { TensorToWrite } from "../../test/helpers/safetensors-writer";
import { ModelConfigError } from "./config";
import { loadWeights, ModelLoadError, openModelDir } from "./load";
import { SafetensorsError } from "./safetensors";
import type { DType } from "./safetensors";
import type { ModelSpec } from "../native/modelSpec";
import { expectedTensors, hfNameOf } from "./weights";

const root = mkdtempSync(join(tmpdir(), "fastgen-load-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const config = {
  model_type: "llama",
  hidden_size: 8,
  intermediate_size: 16,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  num_hidden_layers: 2,
  vocab_size: 12,
  tie_word_embeddings: true,
};

/** A random tiny llama checkpoint in HF layout; `edit` may change the tensor list. */
function tinyModel(opts: { dtype?: DType; shards?: number; edit?: (t: TensorToWrite[]) => TensorToWrite[] } = {}) {
  const dir = join(root, `m${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  const spec = fullSpec();
  const tensors: TensorToWrite[] = [...expectedTensors(spec)].map(([name, shape]) => ({
    name: hfNameOf(spec, name),
    dtype: opts.dtype ?? "BF16",
    shape,
    data: Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => Math.random() - 0.5),
  }));
  tensors.push({ name: "model.layers.0.self_attn.rotary_emb.inv_freq", dtype: "F32", shape: [2], data: [1, 0.01] });
  const final = opts.edit ? opts.edit(tensors) : tensors;
  if ((opts.shards ?? 1) > 1) {
    const k = Math.ceil(final.length / opts.shards!);
    writeShardedSafetensors(dir, Array.from({ length: opts.shards! }, (_, i) => final.slice(i * k, (i + 1) * k)));
  } else {
    writeSafetensors(join(dir, "model.safetensors"), final);
  }
  return { dir, tensors: final };
}

function fullSpec(): ModelSpec {
  // The spec configToSpec gives for `config`; written out so the fixture does not depend on it.
  return {
    arch: "llama", vocab_size: 12, hidden_size: 8, intermediate_size: 16, num_layers: 2, num_heads: 2,
    num_kv_heads: 1, head_dim: 4, max_position_embeddings: 2048, norm: "rms", norm_eps: 1e-6,
    positions: "rope", rope_theta: 10000, partial_rotary_factor: 1, rope_scaling: null, sliding_window: 0,
    qkv_bias: false, o_bias: false, mlp_bias: false, lm_head_bias: false, mlp: "gated_silu",
    layout: "sequential", tie_word_embeddings: true, embed_dim: 8, norm_position: "pre", final_norm: true,
    num_experts: 0, num_experts_per_tok: 0,
  };
}

function caught(fn: () => unknown): Error {
  try {
    fn();
  } catch (e) {
    return e as Error;
  }
  throw new Error("expected a throw");
}

class RecordingSink {
  loaded = new Map<string, { dtype: string; shape: number[]; data: Uint8Array }>();
  loadTensor(name: string, dtype: DType, shape: number[], data: Uint8Array) {
    this.loaded.set(name, { dtype, shape, data });
  }
}

describe("openModelDir + loadWeights", () => {
  test("single file: spec, canonical tensors, skips, progress", () => {
    const { dir, tensors } = tinyModel();
    writeFileSync(join(dir, "tokenizer.json"), "{}");
    const model = openModelDir(dir);
    expect(model.spec).toEqual(fullSpec());
    expect(model.tokenizerPath).toBe(join(dir, "tokenizer.json"));
    expect(model.skipped).toEqual(["model.layers.0.self_attn.rotary_emb.inv_freq"]);
    const sink = new RecordingSink();
    const progress: number[][] = [];
    loadWeights(model, sink, (done, total) => progress.push([done, total]));
    expect(sink.loaded.size).toBe(model.numTensors);
    expect(progress.at(-1)).toEqual([model.numTensors, model.numTensors]);
    const q = tensors.find((t) => t.name === "model.layers.1.self_attn.q_proj.weight")!;
    const got = sink.loaded.get("layers.1.q")!;
    expect(got.shape).toEqual([8, 8]);
    const want = q.data as Float32Array;
    decodeValues("BF16", got.data).forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThan(4e-3));
    model.close();
  });

  test("sharded checkpoint loads the same set", () => {
    const { dir } = tinyModel({ shards: 3, dtype: "F16" });
    const model = openModelDir(dir);
    const names = [...model.tensors()].map((t) => t.name).sort();
    expect(names).toEqual([...expectedTensors(fullSpec()).keys()].sort());
    expect([...model.tensors()].every((t) => t.dtype === "F16")).toBe(true);
  });

  test("a sink error becomes a ModelLoadError naming the HF tensor", () => {
    const { dir } = tinyModel();
    const model = openModelDir(dir);
    const sink = { loadTensor: (name: string) => { if (name === "layers.1.v") throw new Error("shape mismatch: want [4, 8]"); } };
    const err = caught(() => loadWeights(model, sink));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toMatch(/loading model\.layers\.1\.self_attn\.v_proj\.weight as layers\.1\.v \(BF16 \[4, 8\]\) failed: shape mismatch/);
    expect(err.cause).toBeInstanceOf(Error);
  });

  test("directory problems are clear", () => {
    expect(caught(() => openModelDir(join(root, "nope"))).message).toMatch(/nope does not exist/);
    const empty = join(root, `m${n++}`);
    mkdirSync(empty);
    expect(caught(() => openModelDir(empty)).message).toMatch(/has no config\.json/);
    writeFileSync(join(empty, "config.json"), "{ bad json");
    const bad = caught(() => openModelDir(empty));
    expect(bad).toBeInstanceOf(ModelLoadError);
    expect(bad.message).toMatch(/config\.json is not valid JSON/);
    writeFileSync(join(empty, "config.json"), JSON.stringify({ ...config, model_type: "gpt_neox" }));
    const unsup = caught(() => openModelDir(empty));
    expect(unsup).toBeInstanceOf(ModelConfigError);
    expect(unsup.message).toMatch(/config\.json: unsupported model_type "gpt_neox"/);
    writeFileSync(join(empty, "config.json"), JSON.stringify(config));
    writeFileSync(join(empty, "pytorch_model.bin"), "x");
    expect(caught(() => openModelDir(empty)).message).toMatch(/has no safetensors weights/);
  });

  test("missing tensors and corrupt files fail at open", () => {
    const { dir } = tinyModel({ edit: (t) => t.filter((x) => x.name !== "model.norm.weight") });
    const err = caught(() => openModelDir(dir));
    expect(err).toBeInstanceOf(ModelLoadError);
    expect(err.message).toMatch(/missing 1 required tensor\(s\): final_norm \(model\.norm\.weight\)/);

    const { dir: d2 } = tinyModel();
    writeFileSync(join(d2, "model.safetensors"), new Uint8Array([1, 2, 3]));
    const corrupt = caught(() => openModelDir(d2));
    expect(corrupt).toBeInstanceOf(SafetensorsError);
    expect(corrupt.message).toMatch(/model\.safetensors: truncated/);
  });
});
