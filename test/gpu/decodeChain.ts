/**
 * The decode chain's scenario for test/gpu/pdl.test.ts: tiny random models of several families,
 * each through the same passes on fixed inputs, so that runs under different knob settings (one
 * process each: libfastgen reads its knobs once) compare logit for logit. Every model gets 16
 * prompts in one prefill pass (cuBLASLt's shapes), then decode passes at batch 1, 2, 4, 8, 3 and
 * 16, each shape three times in a row (eager, captured, replayed as a CUDA graph). The tokens fed
 * are fixed in advance, not the model's own picks, so a run that differs cannot drift.
 *
 *   bun test/gpu/decodeChain.ts <out-dir>     writes <out-dir>/<family>.f32 (every row's logits)
 *                                             and <out-dir>/<family>.ids.json (greedy ids)
 * DECODE_CHAIN_QUANTIZATION=fp8: the models quantized at load (--quantization fp8; projections whose
 * width is not a multiple of 16 stay bf16).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Backend, NativeEngine } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";
import { makeBatch, randomTokens, randomWeights, rng, tinySpec, type SeqChunk } from "../native/helpers";
import { engineFor, roundBf16 } from "./gpuHelpers";

const base: Partial<ModelSpec> = {
  vocab_size: 1000, hidden_size: 256, intermediate_size: 512, num_heads: 8, num_kv_heads: 2, head_dim: 32,
  max_position_embeddings: 512,
};

/** [name, spec]: which norms fold is said in each name (libfastgen/src/cuda/forward.cu). */
export const FAMILIES: [string, Partial<ModelSpec>][] = [
  ["llama GQA 4:1, qkv 384 rows (the narrow one-token GEMV): both norms fold", { ...base }],
  ["llama, hidden 200, 64 heads: qkv 8192 rows (the wide one-token GEMV), K tails: both norms fold", {
    ...base, vocab_size: 997, hidden_size: 200, intermediate_size: 264, num_heads: 64, num_kv_heads: 32, head_dim: 64,
  }],
  ["llama at the 7B width (hidden 4096, GQA 32/8, hd 128), 1 layer: 8 tokens' x take 66 KB of shared memory", {
    ...base, vocab_size: 512, hidden_size: 4096, intermediate_size: 1024, num_layers: 1, num_heads: 32, num_kv_heads: 8,
    head_dim: 128,
  }],
  ["qwen3-like: qk_norm, hd 64, tied embeddings: both norms fold", {
    ...base, num_heads: 8, num_kv_heads: 4, head_dim: 64, qk_norm: true, rope_theta: 1e6, tie_word_embeddings: true,
  }],
  ["biases, gated gelu: the attention norm folds in layer 0 only (then a down bias is owed), the MLP norm never (o bias)", {
    ...base, qkv_bias: true, o_bias: true, mlp_bias: true, mlp: "gated_gelu",
  }],
  ["gemma2-like: sandwich norms, offset 1, softcaps, sliding/full layers, hd 256: the old path", {
    ...base, hidden_size: 320, intermediate_size: 640, num_layers: 4, num_heads: 2, num_kv_heads: 1, head_dim: 256,
    sandwich_norms: true, norm_weight_offset: 1, mlp: "gated_gelu_tanh", tie_word_embeddings: true, norm_eps: 1e-6,
    embed_scale: Math.sqrt(320), attn_scale: 144 ** -0.5, attn_logit_softcap: 2, final_logit_softcap: 30,
    sliding_window: 16, layer_types: ["sliding", "full", "sliding", "full"],
  }],
];

const SEQS = 16, BLOCK = 8, BLOCKS_PER_SEQ = 6;
/** Sequences decoding in each decode pass (the first pass is every prompt). */
export const SCHEDULE = [1, 1, 1, 2, 2, 2, 4, 4, 4, 8, 8, 8, 3, 3, 3, 16, 16, 16];

export interface ChainRun {
  logits: Float32Array;  // [rows of every pass, V]
  ids: number[];         // the greedy pick of each row
}

/** The spec of family `i` and its bf16-rounded random weights (the same in every process). */
export function familyModel(i: number, quantization: ModelSpec["quantization"] = "none") {
  const spec = tinySpec({ ...FAMILIES[i]![1], quantization });
  const w = randomWeights(spec, 500 + i);
  for (const [k, v] of w) w.set(k, roundBf16(v));
  return { spec, w };
}

/** Runs the scenario of family `i` on `backend`. */
export function runChain(backend: Backend, i: number, quantization: ModelSpec["quantization"] = "none"): ChainRun {
  const { spec, w } = familyModel(i, quantization);
  const engine: NativeEngine = engineFor(backend, spec, w, { numBlocks: SEQS * BLOCKS_PER_SEQ, blockSize: BLOCK });
  try {
    const r = rng(900 + i), V = spec.vocab_size;
    const seqs = Array.from({ length: SEQS }, (_, s) => ({
      tokens: randomTokens(r, 12 + SCHEDULE.length, V), prompt: 3 + (s % 10), done: 0,
      blocks: Array.from({ length: BLOCKS_PER_SEQ }, (_, b) => s * BLOCKS_PER_SEQ + b),
    }));
    const logits: Float32Array[] = [], ids: number[] = [];
    for (const B of [SEQS, ...SCHEDULE]) {
      const live = seqs.slice(0, B);
      const chunks: SeqChunk[] = live.map((s) => {
        const n = s.done === 0 ? s.prompt : 1;
        return { tokens: s.tokens.slice(s.done, s.done + n), context: s.done, blocks: s.blocks, wants: true };
      });
      const out = engine.step(makeBatch(chunks, { returnLogits: true }));
      live.forEach((s, k) => {
        s.done += chunks[k]!.tokens.length;
        ids.push(out.ids[k]!);
      });
      logits.push(out.logits!.slice(0, B * V));
    }
    const all = new Float32Array(logits.reduce((a, l) => a + l.length, 0));
    let at = 0;
    for (const l of logits) all.set(l, at), (at += l.length);
    return { logits: all, ids };
  } finally {
    engine.destroy();
  }
}

if (import.meta.main) {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: bun test/gpu/decodeChain.ts <out-dir>");
  mkdirSync(dir, { recursive: true });
  FAMILIES.forEach((_, i) => {
    const run = runChain("cuda", i, process.env.DECODE_CHAIN_QUANTIZATION === "fp8" ? "fp8" : "none");
    writeFileSync(join(dir, `${i}.f32`), new Uint8Array(run.logits.buffer));
    writeFileSync(join(dir, `${i}.ids.json`), JSON.stringify(run.ids));
  });
}
