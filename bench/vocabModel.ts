/**
 * A small random-weight Llama with a synthetic byte-level vocabulary of any size (syntheticVocab.ts),
 * for running the whole engine at a real vocab size on the CPU (the grammar benches: a mask is
 * ceil(vocab / 32) words and XGrammar's cost grows with the vocab; the demo model has 2048 ids).
 * No network, no Python: the weights are seeded normal(0, 0.02) bf16, the tokenizer.json is the
 * demo model's with its vocab replaced (no merges: prompts are token ids, and the grammar Worker
 * reads token strings by id), and the stop token "<|endoftext|>" is the last id.
 *
 *   bun bench/vocabModel.ts OUT_DIR [--vocab 32000] [--hidden 128] [--layers 2]
 *   makeVocabModel(dir, { vocab, hidden, layers })   (skips the work when dir already holds it)
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { defaultModelDir } from "../src/model/defaultModel";
import { STOP_TOKEN, syntheticByteLevelVocab } from "./syntheticVocab";
import { writeSafetensors, type TensorToWrite } from "../test/helpers/safetensors-writer";

export interface VocabModelShape {
  vocab: number;
  hidden: number;
  layers: number;
}

export const DEFAULT_VOCAB_MODEL: VocabModelShape = { vocab: 32000, hidden: 128, layers: 2 };

/** Seeded normal(0, std) floats (Box-Muller on a 32-bit LCG). */
function normals(n: number, std: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  const u = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) + 1) / 2 ** 32;
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(u())), t = 2 * Math.PI * u();
    out[i] = r * Math.cos(t) * std;
    if (i + 1 < n) out[i + 1] = r * Math.sin(t) * std;
  }
  return out;
}

/** Writes the model into `dir` (once: a dir whose config matches the shape is kept). Returns `dir`. */
export function makeVocabModel(dir: string, shape: VocabModelShape = DEFAULT_VOCAB_MODEL): string {
  const { vocab: V, hidden: H, layers } = shape;
  const configPath = join(dir, "config.json");
  if (existsSync(configPath)) {
    const c = JSON.parse(readFileSync(configPath, "utf8")) as { vocab_size: number; hidden_size: number; num_hidden_layers: number };
    if (c.vocab_size === V && c.hidden_size === H && c.num_hidden_layers === layers && existsSync(join(dir, "model.safetensors"))) return dir;
  }
  mkdirSync(dir, { recursive: true });
  const demo = defaultModelDir();
  const heads = Math.max(1, H / 32), kvHeads = Math.max(1, heads / 2), I = H * 2, eos = V - 1;
  const config = {
    ...(JSON.parse(readFileSync(join(demo, "config.json"), "utf8")) as Record<string, unknown>),
    bos_token_id: eos, eos_token_id: eos, head_dim: 32, hidden_size: H, intermediate_size: I,
    num_attention_heads: heads, num_hidden_layers: layers, num_key_value_heads: kvHeads, vocab_size: V, tie_word_embeddings: true,
  };
  const synthetic = syntheticByteLevelVocab(V);
  const tokenizer = JSON.parse(readFileSync(join(demo, "tokenizer.json"), "utf8")) as Record<string, unknown> & { model: Record<string, unknown> };
  tokenizer.model.vocab = Object.fromEntries(synthetic.encoded.map((t, id) => [t, id]));
  tokenizer.model.merges = [];
  tokenizer.added_tokens = [{ id: eos, content: STOP_TOKEN, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }];
  const tokenizerConfig = {
    add_bos_token: false, add_eos_token: false, bos_token: null, eos_token: STOP_TOKEN, pad_token: STOP_TOKEN, unk_token: null,
    added_tokens_decoder: { [eos]: { content: STOP_TOKEN, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true } },
  };
  let seed = 1;
  const w = (name: string, dims: number[]): TensorToWrite =>
    ({ name, dtype: "BF16", shape: dims, data: normals(dims.reduce((a, b) => a * b, 1), 0.02, seed++) });
  const ones = (name: string): TensorToWrite => ({ name, dtype: "BF16", shape: [H], data: new Float32Array(H).fill(1) });
  const tensors: TensorToWrite[] = [w("model.embed_tokens.weight", [V, H]), ones("model.norm.weight")];
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    tensors.push(
      ones(`${p}.input_layernorm.weight`), ones(`${p}.post_attention_layernorm.weight`),
      w(`${p}.self_attn.q_proj.weight`, [heads * 32, H]), w(`${p}.self_attn.k_proj.weight`, [kvHeads * 32, H]),
      w(`${p}.self_attn.v_proj.weight`, [kvHeads * 32, H]), w(`${p}.self_attn.o_proj.weight`, [H, heads * 32]),
      w(`${p}.mlp.gate_proj.weight`, [I, H]), w(`${p}.mlp.up_proj.weight`, [I, H]), w(`${p}.mlp.down_proj.weight`, [H, I]),
    );
  }
  writeSafetensors(join(dir, "model.safetensors"), tensors);
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(tokenizer));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify(tokenizerConfig, null, 2));
  writeFileSync(join(dir, "generation_config.json"), JSON.stringify({ bos_token_id: eos, eos_token_id: eos, pad_token_id: eos }, null, 2));
  writeFileSync(configPath, JSON.stringify(config, null, 2));
  return dir;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({ args: process.argv.slice(2), allowPositionals: true, options: { vocab: { type: "string" }, hidden: { type: "string" }, layers: { type: "string" } } });
  const dir = positionals[0];
  if (!dir) throw new Error("usage: bun bench/vocabModel.ts OUT_DIR [--vocab 32000] [--hidden 128] [--layers 2]");
  const d = DEFAULT_VOCAB_MODEL;
  makeVocabModel(dir, { vocab: Number(values.vocab ?? d.vocab), hidden: Number(values.hidden ?? d.hidden), layers: Number(values.layers ?? d.layers) });
  console.log(`wrote ${dir}`);
}
