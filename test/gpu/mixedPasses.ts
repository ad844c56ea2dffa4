/**
 * The mixed-pass scenario for test/gpu/piecewise.test.ts: tiny random models run through passes
 * that mix decodes with a prompt chunk, so that runs with FASTGEN_PIECEWISE_GRAPHS 0 and 1 (one
 * process each: knobs are read once a process) compare logit for logit. Each composition
 * [decodes, chunk tokens] runs three passes in a row (the pieces of its bucket run live, are
 * captured, then replayed: libfastgen/src/cuda/piecewise.cu), its chunk continuing one sequence,
 * so attention's metadata differs between the three while the bucket stays. The tokens are fixed
 * in advance, not the model's picks, so runs that differ cannot drift.
 *   - "exact": every pass's token count is a bucket (64, 128, 256, 512): no pad rows, the same
 *     GEMM shapes as eager, so on equals off bit for bit;
 *   - "padded": token counts between buckets (44 -> 64, 108 -> 128, 216 -> 256, 316 -> 320, a
 *     prompt-only pass of 30 -> 64): cuBLASLt may pick other algorithms at the padded M, so
 *     logits agree within bf16 noise and greedy ids up to near-ties.
 * Rows: each decode's token and, in the chunk, every 13th token and its last.
 *
 *   bun test/gpu/mixedPasses.ts <out-dir>   writes <out-dir>/<family>.<scenario>.f32 (logits) and
 *                                           .ids.json (greedy ids) and .passes.json (rows a pass)
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Backend } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";
import { makeBatch, randomTokens, randomWeights, rng, tinySpec, type SeqChunk } from "../native/helpers";
import { engineFor, roundBf16 } from "./gpuHelpers";

const base: Partial<ModelSpec> = {
  vocab_size: 1000, hidden_size: 256, intermediate_size: 512, num_heads: 8, num_kv_heads: 2, head_dim: 32,
  max_position_embeddings: 2048,
};

/** [name, spec]: the dense pre-norm models piecewise.cu takes. */
export const FAMILIES: [string, Partial<ModelSpec>][] = [
  ["llama GQA 4:1", { ...base }],
  ["biases (qkv, o, mlp: the down bias owed across a piece boundary), gated gelu", {
    ...base, qkv_bias: true, o_bias: true, mlp_bias: true, mlp: "gated_gelu",
  }],
  ["qwen3-like: qk_norm, hd 64, tied embeddings, 3 layers", {
    ...base, num_layers: 3, num_heads: 8, num_kv_heads: 4, head_dim: 64, qk_norm: true, rope_theta: 1e6,
    tie_word_embeddings: true,
  }],
];

/** [decodes, chunk tokens] per composition; the prompt pass before them prefills 16 x 8 tokens (128). */
export const SCENARIOS: Record<string, [number, number][]> = {
  exact: [[4, 60], [8, 120], [16, 240], [16, 496], [0, 64]],
  padded: [[4, 40], [8, 100], [16, 200], [16, 300], [0, 30]],
};

const DECODERS = 16, PROMPT = 8, BLOCK = 16, REPEATS = 3;
const DECODE_BLOCKS = 4;    // 64 tokens: the prompt and every decode step
const CHUNK_BLOCKS = 100;   // 1600 tokens: three chunks of the largest composition

export interface MixedRun {
  logits: Float32Array;  // [rows of every pass, V]
  ids: number[];
  passes: number[];      // rows of each pass
}

export function familyModel(i: number) {
  const spec = tinySpec(FAMILIES[i]![1]);
  const w = randomWeights(spec, 700 + i);
  for (const [k, v] of w) w.set(k, roundBf16(v));
  return { spec, w };
}

/** Runs scenario `name` of family `i` (on the CUDA backend; the CPU one checks the scenario itself). */
export function runMixed(i: number, name: string, backend: Backend = "cuda"): MixedRun {
  const { spec, w } = familyModel(i);
  const comps = SCENARIOS[name]!;
  const numBlocks = DECODERS * DECODE_BLOCKS + comps.length * CHUNK_BLOCKS;
  const engine = engineFor(backend, spec, w, { numBlocks, blockSize: BLOCK });
  try {
    const r = rng(1100 + i), V = spec.vocab_size;
    const blocksFrom = (at: number, n: number) => Array.from({ length: n }, (_, b) => at + b);
    const decoders = Array.from({ length: DECODERS }, (_, s) => ({
      tokens: randomTokens(r, PROMPT + comps.length * REPEATS + 1, V), done: 0,
      blocks: blocksFrom(s * DECODE_BLOCKS, DECODE_BLOCKS),
    }));
    const logits: Float32Array[] = [], ids: number[] = [], passes: number[] = [];
    const run = (chunks: SeqChunk[]) => {
      const out = engine.step(makeBatch(chunks, { returnLogits: true }));
      ids.push(...out.ids);
      passes.push(out.ids.length);
      logits.push(out.logits!.slice(0, out.ids.length * V));
    };
    // the prompts: 128 tokens, a bucket
    run(decoders.map((d) => ({ tokens: d.tokens.slice(0, PROMPT), context: 0, blocks: d.blocks, wants: true })));
    decoders.forEach((d) => (d.done = PROMPT));
    comps.forEach(([decodes, n], c) => {
      const chunkSeq = { tokens: randomTokens(r, n * REPEATS, V), blocks: blocksFrom(DECODERS * DECODE_BLOCKS + c * CHUNK_BLOCKS, CHUNK_BLOCKS) };
      for (let k = 0; k < REPEATS; k++) {
        const live = decoders.slice(0, decodes);
        const chunks: SeqChunk[] = live.map((d) => ({ tokens: [d.tokens[d.done]!], context: d.done, blocks: d.blocks, wants: true }));
        const rows = Array.from({ length: Math.ceil((n - 1) / 13) }, (_, j) => ({ at: j * 13 }));
        chunks.push({ tokens: chunkSeq.tokens.slice(k * n, (k + 1) * n), context: k * n, blocks: chunkSeq.blocks, rows, wants: true });
        run(chunks);
        live.forEach((d) => d.done++);
      }
    });
    const all = new Float32Array(logits.reduce((a, l) => a + l.length, 0));
    let at = 0;
    for (const l of logits) all.set(l, at), (at += l.length);
    return { logits: all, ids, passes };
  } finally {
    engine.destroy();
  }
}

if (import.meta.main) {
  const dir = process.argv[2];
  if (!dir) throw new Error("usage: bun test/gpu/mixedPasses.ts <out-dir>");
  mkdirSync(dir, { recursive: true });
  FAMILIES.forEach((_, i) => {
    for (const name of Object.keys(SCENARIOS)) {
      const run = runMixed(i, name);
      writeFileSync(join(dir, `${i}.${name}.f32`), new Uint8Array(run.logits.buffer));
      writeFileSync(join(dir, `${i}.${name}.ids.json`), JSON.stringify(run.ids));
      writeFileSync(join(dir, `${i}.${name}.passes.json`), JSON.stringify(run.passes));
    }
  });
}
