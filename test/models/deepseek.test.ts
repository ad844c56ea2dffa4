// Tiny random DeepSeek-V2 checkpoints written with the Hugging Face names transformers saves
// (spelled out here, not derived from the weight map) load through openModelDir into a CPU engine,
// and its logits match the float64 reference run on the same weights under canonical names.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeSafetensors, type TensorToWrite } from "../helpers/safetensors-writer";
import { loadWeights, openModelDir } from "../../src/model/load";
import { NativeEngine } from "../../src/native";
import { makeBatch, randomTokens, relErr, rng } from "../native/helpers";
import { referenceLogits, type Weights } from "../native/reference";

const root = mkdtempSync(join(tmpdir(), "fastgen-deepseek-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const H = 32, V = 64, I = 48, L = 3, HEADS = 4, KL = 16, QL = 12, NOPE = 8, ROPE = 4, VD = 6, E = 4, MI = 8;
const r = rng(5);

/** HF name -> canonical name, for the reference (the test's own reading of modeling_deepseek_v2.py). */
function canonical(hf: string): string {
  const m = /^model\.layers\.(\d+)\.(.+)\.weight$/.exec(hf);
  if (!m) return { "model.embed_tokens.weight": "embed", "model.norm.weight": "final_norm", "lm_head.weight": "lm_head" }[hf]!;
  const rest = m[2]!
    .replace("input_layernorm", "attn_norm").replace("post_attention_layernorm", "mlp_norm")
    .replace(/^self_attn\.q_proj$/, "q").replace("self_attn.q_a_proj", "q_a").replace("self_attn.q_a_layernorm", "q_a_norm")
    .replace("self_attn.q_b_proj", "q_b").replace("self_attn.kv_a_proj_with_mqa", "kv_a")
    .replace("self_attn.kv_a_layernorm", "kv_a_norm").replace("self_attn.kv_b_proj", "kv_b").replace("self_attn.o_proj", "o")
    .replace(/^mlp\.gate$/, "router").replace("mlp.shared_experts.", "shared_expert.").replace("mlp.experts.", "experts.")
    .replace(/^mlp\./, "").replace(/_proj$/, "");
  return `layers.${m[1]}.${rest}`;
}

function checkpoint(qLora: boolean): TensorToWrite[] {
  const t: TensorToWrite[] = [];
  const w = (name: string, shape: number[], norm = false) => {
    const scale = shape.length === 2 ? Math.sqrt(3 / shape[1]!) : 0.1;
    t.push({ name, dtype: "F32", shape, data: Float32Array.from({ length: shape.reduce((a, d) => a * d, 1) },
      () => (norm ? 1 : 0) + (2 * r() - 1) * scale) });
  };
  w("model.embed_tokens.weight", [V, H]);
  for (let i = 0; i < L; i++) {
    const p = `model.layers.${i}.`;
    w(`${p}input_layernorm.weight`, [H], true);
    w(`${p}post_attention_layernorm.weight`, [H], true);
    if (qLora) {
      w(`${p}self_attn.q_a_proj.weight`, [QL, H]);
      w(`${p}self_attn.q_a_layernorm.weight`, [QL], true);
      w(`${p}self_attn.q_b_proj.weight`, [HEADS * (NOPE + ROPE), QL]);
    } else {
      w(`${p}self_attn.q_proj.weight`, [HEADS * (NOPE + ROPE), H]);
    }
    w(`${p}self_attn.kv_a_proj_with_mqa.weight`, [KL + ROPE, H]);
    w(`${p}self_attn.kv_a_layernorm.weight`, [KL], true);
    w(`${p}self_attn.kv_b_proj.weight`, [HEADS * (NOPE + VD), KL]);
    w(`${p}self_attn.o_proj.weight`, [H, HEADS * VD]);
    const mlp = (q: string, width: number) => {
      w(`${q}gate_proj.weight`, [width, H]);
      w(`${q}up_proj.weight`, [width, H]);
      w(`${q}down_proj.weight`, [H, width]);
    };
    if (i === 0) {
      mlp(`${p}mlp.`, I);
    } else {
      w(`${p}mlp.gate.weight`, [E, H]);
      for (let e = 0; e < E; e++) mlp(`${p}mlp.experts.${e}.`, MI);
      mlp(`${p}mlp.shared_experts.`, 2 * MI);
    }
  }
  w("model.norm.weight", [H], true);
  w("lm_head.weight", [V, H]);
  return t;
}

function run(config: object, tensors: TensorToWrite[], name: string) {
  const dir = join(root, name);
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  const model = openModelDir(dir);
  const engine = NativeEngine.create(model.spec, "cpu");
  loadWeights(model, engine);
  const spec = model.spec;
  model.close();
  engine.finalize({ numBlocks: 16, blockSize: 4 });
  const tokens = randomTokens(r, 13, V);
  const out = engine.step(makeBatch([{ tokens, context: 0, blocks: [3, 1, 4, 0], rows: tokens.map((_, at) => ({ at })) }],
    { returnLogits: true })).logits!;
  engine.destroy();
  const weights: Weights = new Map(tensors.map((t) => [canonical(t.name), t.data as Float32Array]));
  const ref = referenceLogits(spec, weights, tokens);
  ref.forEach((row, i) => expect(relErr(out.subarray(i * V, (i + 1) * V), row)).toBeLessThan(1e-5));
  return spec;
}

const base = {
  model_type: "deepseek_v2", hidden_size: H, intermediate_size: I, num_hidden_layers: L, vocab_size: V,
  num_attention_heads: HEADS, num_key_value_heads: HEADS, kv_lora_rank: KL, qk_nope_head_dim: NOPE,
  qk_rope_head_dim: ROPE, v_head_dim: VD, head_dim: ROPE, n_routed_experts: E, n_shared_experts: 2,
  num_experts_per_tok: 2, moe_intermediate_size: MI, first_k_dense_replace: 1, moe_layer_freq: 1,
  max_position_embeddings: 64, rms_norm_eps: 1e-6, tie_word_embeddings: false,
};

describe("tiny deepseek_v2 checkpoints through the loader", () => {
  test("V2-Lite layout: q_proj, YaRN (rope_parameters), greedy top-2", () => {
    const spec = run({
      ...base, q_lora_rank: null, topk_method: "greedy", norm_topk_prob: false,
      rope_parameters: { rope_type: "yarn", factor: 4, original_max_position_embeddings: 16, mscale: 0.707, mscale_all_dim: 0.707, rope_theta: 10000 },
    }, checkpoint(false), "lite");
    expect(spec).toMatchObject({ q_lora_rank: 0, dense_layers: [0], rope_scaling: { type: "yarn", factor: 4 } });
  });

  test("V2 layout: q_a / q_a_layernorm / q_b, group-limited routing, routed_scaling_factor 2", () => {
    const spec = run({
      ...base, q_lora_rank: QL, topk_method: "group_limited_greedy", n_group: 2, topk_group: 1, routed_scaling_factor: 2,
      rope_theta: 10000,
    }, checkpoint(true), "v2");
    expect(spec).toMatchObject({ q_lora_rank: QL, moe_num_groups: 2, moe_topk_groups: 1, moe_routed_scale: 2 });
  });
});
