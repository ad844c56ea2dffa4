// Tiny random checkpoints of the second-wave families, written with the Hugging Face tensor names
// transformers saves (spelled out here, not derived from the weight maps), load through
// openModelDir into a CPU engine: no missing, unknown or misshapen tensor. Outputs are not
// checked: the CPU backend applies q/k norms, sandwich norms, soft-caps, shared experts and
// LongRoPE once the backend work of issue #21 lands; transformers fixtures will check them.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeValues, writeSafetensors, type TensorToWrite } from "../helpers/safetensors-writer";
import { loadWeights, openModelDir } from "../../src/model/load";
import { expectedTensors } from "../../src/model/weights";
import { NativeEngine } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";

const root = mkdtempSync(join(tmpdir(), "fastgen-families-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

const H = 16, V = 64, I = 32, HD = 8, L = 2;
const rand = (shape: number[]) => Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) }, () => Math.random() - 0.5);
const w = (name: string, shape: number[]): TensorToWrite => ({ name, dtype: "F32", shape, data: rand(shape) });

function writeModel(config: object, tensors: TensorToWrite[]): string {
  const dir = join(root, `m${n++}`);
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  return dir;
}

/** Opens `dir`, loads it into a CPU engine and finalizes (which names any tensor not loaded). */
function loadIntoEngine(dir: string, opts = {}): { spec: ModelSpec; skipped: string[]; names: string[] } {
  const model = openModelDir(dir, opts);
  const engine = NativeEngine.create(model.spec, "cpu");
  try {
    const names = [...model.tensors()].map((t) => t.name);
    loadWeights(model, engine);
    const info = engine.finalize({ numBlocks: 8, blockSize: 4 });
    expect(info.vocabSize).toBe(model.spec.vocab_size);
    expect(names.sort()).toEqual([...expectedTensors(model.spec).keys()].sort());
    return { spec: model.spec, skipped: model.skipped, names };
  } finally {
    engine.destroy();
    model.close();
  }
}

/** Llama-layout attention (+ q/k norms, + biases) and the two norms of a pre-norm layer. */
function attention(p: string, heads: number, kv: number, opts: { qkNorm?: boolean; bias?: boolean } = {}): TensorToWrite[] {
  const out = [
    w(`${p}input_layernorm.weight`, [H]), w(`${p}post_attention_layernorm.weight`, [H]),
    w(`${p}self_attn.q_proj.weight`, [heads * HD, H]), w(`${p}self_attn.k_proj.weight`, [kv * HD, H]),
    w(`${p}self_attn.v_proj.weight`, [kv * HD, H]), w(`${p}self_attn.o_proj.weight`, [H, heads * HD]),
  ];
  if (opts.qkNorm) out.push(w(`${p}self_attn.q_norm.weight`, [HD]), w(`${p}self_attn.k_norm.weight`, [HD]));
  if (opts.bias) out.push(w(`${p}self_attn.q_proj.bias`, [heads * HD]), w(`${p}self_attn.k_proj.bias`, [kv * HD]), w(`${p}self_attn.v_proj.bias`, [kv * HD]));
  return out;
}
const mlp = (p: string, width: number) => [w(`${p}gate_proj.weight`, [width, H]), w(`${p}up_proj.weight`, [width, H]), w(`${p}down_proj.weight`, [H, width])];
const layers = (f: (p: string, i: number) => TensorToWrite[], prefix = "model.layers.") =>
  Array.from({ length: L }, (_, i) => f(`${prefix}${i}.`, i)).flat();
const rotary = { name: "model.layers.0.self_attn.rotary_emb.inv_freq", dtype: "F32", shape: [HD / 2], data: rand([HD / 2]) };

const shape = { hidden_size: H, intermediate_size: I, num_hidden_layers: L, vocab_size: V, head_dim: HD, num_attention_heads: 4 };

describe("tiny second-wave checkpoints load into the CPU engine", () => {
  test("qwen3: q/k norms, untied LM head", () => {
    const config = { ...shape, model_type: "qwen3", num_key_value_heads: 2, tie_word_embeddings: false };
    const dir = writeModel(config, [
      w("model.embed_tokens.weight", [V, H]), w("model.norm.weight", [H]), w("lm_head.weight", [V, H]), rotary,
      ...layers((p) => [...attention(p, 4, 2, { qkNorm: true }), ...mlp(`${p}mlp.`, I)]),
    ]);
    const { spec, names, skipped } = loadIntoEngine(dir);
    expect(spec).toMatchObject({ arch: "qwen3", qk_norm: true, head_dim: HD });
    expect(names).toContain("layers.1.k_norm");
    expect(skipped).toEqual([rotary.name]);
  });

  test("qwen3_moe: per-expert and transformers 5 stacked experts give the same bytes", () => {
    const E = 4, MI = 8;
    const config = { ...shape, model_type: "qwen3_moe", num_key_value_heads: 2, num_experts: E, num_experts_per_tok: 2,
      moe_intermediate_size: MI, norm_topk_prob: true, decoder_sparse_step: 1, mlp_only_layers: [] };
    const common = [w("model.embed_tokens.weight", [V, H]), w("model.norm.weight", [H]), w("lm_head.weight", [V, H])];
    const perExpert = [
      ...common,
      ...layers((p) => [...attention(p, 4, 2, { qkNorm: true }), w(`${p}mlp.gate.weight`, [E, H]),
        ...Array.from({ length: E }, (_, e) => mlp(`${p}mlp.experts.${e}.`, MI)).flat()]),
    ];
    const { spec } = loadIntoEngine(writeModel(config, perExpert));
    expect(spec).toMatchObject({ num_experts: E, moe_intermediate_size: MI, moe_renormalize: true });

    // the same weights stacked: gate_up_proj [E, 2 MI, H] = per expert | gate | up |, down_proj [E, H, MI]
    const byName = new Map(perExpert.map((t) => [t.name, t.data as Float32Array]));
    const stack = (parts: Float32Array[]) => Float32Array.from(parts.flatMap((a) => Array.from(a)));
    const stacked = [
      ...perExpert.filter((t) => !t.name.includes("mlp.experts.")),
      ...layers((p) => [
        { name: `${p}mlp.experts.gate_up_proj`, dtype: "F32", shape: [E, 2 * MI, H],
          data: stack(Array.from({ length: E }, (_, e) => [byName.get(`${p}mlp.experts.${e}.gate_proj.weight`)!, byName.get(`${p}mlp.experts.${e}.up_proj.weight`)!]).flat()) },
        { name: `${p}mlp.experts.down_proj`, dtype: "F32", shape: [E, H, MI],
          data: stack(Array.from({ length: E }, (_, e) => byName.get(`${p}mlp.experts.${e}.down_proj.weight`)!)) },
      ]),
    ];
    const dir = writeModel(config, stacked);
    loadIntoEngine(dir);
    const model = openModelDir(dir);
    for (const t of model.tensors()) {
      const m = /^layers\.(\d+)\.experts\.(\d+)\.(gate|up|down)$/.exec(t.name);
      if (!m) continue;
      const want = byName.get(`model.layers.${m[1]}.mlp.experts.${m[2]}.${m[3]}_proj.weight`)!;
      expect(Array.from(decodeValues("F32", t.data))).toEqual(Array.from(want));
    }
    model.close();
  });

  test("qwen2_moe: q/k/v biases, routed experts and a gated shared expert", () => {
    // Qwen2-MoE configs have no head_dim key: 4 heads of hidden / heads = 8 = HD at hidden 32
    const E = 4, MI = 8, SI = 24, H2 = 4 * HD;
    const config = {
      model_type: "qwen2_moe", hidden_size: H2, intermediate_size: I, num_hidden_layers: L, vocab_size: V, num_attention_heads: 4,
      num_key_value_heads: 4, num_experts: E, num_experts_per_tok: 2, moe_intermediate_size: MI, shared_expert_intermediate_size: SI,
    };
    const dir = writeModel(config, [
      w("model.embed_tokens.weight", [V, H2]), w("model.norm.weight", [H2]), w("lm_head.weight", [V, H2]),
      ...layers((p) => [
        w(`${p}input_layernorm.weight`, [H2]), w(`${p}post_attention_layernorm.weight`, [H2]),
        ...["q", "k", "v"].flatMap((x) => [w(`${p}self_attn.${x}_proj.weight`, [H2, H2]), w(`${p}self_attn.${x}_proj.bias`, [H2])]),
        w(`${p}self_attn.o_proj.weight`, [H2, H2]),
        w(`${p}mlp.gate.weight`, [E, H2]),
        ...Array.from({ length: E }, (_, e) => [
          w(`${p}mlp.experts.${e}.gate_proj.weight`, [MI, H2]), w(`${p}mlp.experts.${e}.up_proj.weight`, [MI, H2]),
          w(`${p}mlp.experts.${e}.down_proj.weight`, [H2, MI]),
        ]).flat(),
        w(`${p}mlp.shared_expert.gate_proj.weight`, [SI, H2]), w(`${p}mlp.shared_expert.up_proj.weight`, [SI, H2]),
        w(`${p}mlp.shared_expert.down_proj.weight`, [H2, SI]), w(`${p}mlp.shared_expert_gate.weight`, [1, H2]),
      ]),
    ]);
    const { spec, names } = loadIntoEngine(dir);
    expect(spec).toMatchObject({ qkv_bias: true, moe_renormalize: false, shared_expert_intermediate_size: SI, shared_expert_gate: true });
    expect(names).toContain("layers.1.shared_expert_gate");
  });

  const gemmaLayer = (p: string, qkNorm: boolean) => [
    ...attention(p, 2, 1, { qkNorm }), w(`${p}pre_feedforward_layernorm.weight`, [H]), w(`${p}post_feedforward_layernorm.weight`, [H]),
    ...mlp(`${p}mlp.`, I),
  ];
  const gemmaShape = { ...shape, num_attention_heads: 2, num_key_value_heads: 1, query_pre_attn_scalar: HD, sliding_window: 4 };

  test("gemma2: four norms per layer, tied embeddings, alternating window", () => {
    const dir = writeModel({ ...gemmaShape, model_type: "gemma2" }, [
      w("model.embed_tokens.weight", [V, H]), w("model.norm.weight", [H]), ...layers((p) => gemmaLayer(p, false)),
    ]);
    const { spec, names } = loadIntoEngine(dir);
    expect(spec).toMatchObject({ sandwich_norms: true, norm_weight_offset: 1, layer_types: ["sliding", "full"], attn_logit_softcap: 50 });
    expect(names).toContain("layers.0.post_mlp_norm");
    expect(names).not.toContain("lm_head");
  });

  test("gemma3_text and gemma3 (multimodal: language model only, vision tower skipped)", () => {
    const text = { ...gemmaShape, model_type: "gemma3_text", sliding_window_pattern: 2 };
    const dir = writeModel(text, [w("model.embed_tokens.weight", [V, H]), w("model.norm.weight", [H]), ...layers((p) => gemmaLayer(p, true))]);
    expect(loadIntoEngine(dir).spec).toMatchObject({ qk_norm: true, sliding_rope_theta: 10000, layer_types: ["sliding", "full"] });

    const vision = w("vision_tower.vision_model.embeddings.patch_embedding.weight", [4, 3]);
    const mm = writeModel({ model_type: "gemma3", text_config: text, vision_config: { model_type: "siglip_vision_model" } }, [
      w("language_model.model.embed_tokens.weight", [V, H]), w("language_model.model.norm.weight", [H]), vision,
      w("multi_modal_projector.mm_soft_emb_norm.weight", [4]),
      ...layers((p) => gemmaLayer(p, true), "language_model.model.layers."),
    ]);
    const { spec, skipped } = loadIntoEngine(mm);
    expect(spec.arch).toBe("gemma3");
    expect(skipped.sort()).toEqual([vision.name, "multi_modal_projector.mm_soft_emb_norm.weight"].sort());
  });

  test("phi3: fused qkv_proj and gate_up_proj are cut into the right rows; LongRoPE with partial rotary", () => {
    // Phi-3 configs have no head_dim key: hidden 32 / 4 heads = HD; rotary dims 4 -> 2 factors
    const heads = 4, kv = 2, QD = heads * HD, KVD = kv * HD, H3 = heads * HD;
    const config = {
      model_type: "phi3", hidden_size: H3, intermediate_size: I, num_hidden_layers: L, vocab_size: V, num_attention_heads: heads,
      num_key_value_heads: kv, partial_rotary_factor: 0.5, max_position_embeddings: 64, original_max_position_embeddings: 16,
      rope_scaling: { type: "longrope", short_factor: [1.5, 1.5], long_factor: [4, 4] },
    };
    const tensors = [
      w("model.embed_tokens.weight", [V, H3]), w("model.norm.weight", [H3]), w("lm_head.weight", [V, H3]),
      ...layers((p) => [
        w(`${p}input_layernorm.weight`, [H3]), w(`${p}post_attention_layernorm.weight`, [H3]),
        w(`${p}self_attn.qkv_proj.weight`, [QD + 2 * KVD, H3]), w(`${p}self_attn.o_proj.weight`, [H3, QD]),
        w(`${p}mlp.gate_up_proj.weight`, [2 * I, H3]), w(`${p}mlp.down_proj.weight`, [H3, I]),
      ]),
    ];
    const dir = writeModel(config, tensors);
    expect(loadIntoEngine(dir).spec.rope_scaling).toMatchObject({ type: "longrope", factors: [4, 4] });
    expect(loadIntoEngine(dir, { maxModelLen: 16 }).spec.rope_scaling).toMatchObject({ factors: [1.5, 1.5] });

    const model = openModelDir(dir);
    const got = new Map([...model.tensors()].map((t) => [t.name, decodeValues("F32", t.data)]));
    model.close();
    const rows = (name: string, start: number, count: number) =>
      Array.from((tensors.find((t) => t.name === name)!.data as Float32Array).subarray(start * H3, (start + count) * H3));
    const qkv = "model.layers.1.self_attn.qkv_proj.weight", gateUp = "model.layers.1.mlp.gate_up_proj.weight";
    expect(Array.from(got.get("layers.1.q")!)).toEqual(rows(qkv, 0, QD));
    expect(Array.from(got.get("layers.1.k")!)).toEqual(rows(qkv, QD, KVD));
    expect(Array.from(got.get("layers.1.v")!)).toEqual(rows(qkv, QD + KVD, KVD));
    expect(Array.from(got.get("layers.1.gate")!)).toEqual(rows(gateUp, 0, I));
    expect(Array.from(got.get("layers.1.up")!)).toEqual(rows(gateUp, I, I));
  });
});
