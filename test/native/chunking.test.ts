// Chunk invariance: a sequence prefilled in one pass, or split into random chunks spread over
// many passes that also carry other sequences' prompt chunks and decode tokens (shuffled,
// non-contiguous KV blocks), must give the same logits within fp32 rounding.
import { describe, expect, test } from "bun:test";
import type { ModelSpec } from "../../src/native/modelSpec";
import type { NativeEngine } from "../../src/native";
import {
  buildEngine, DEEPSEEK_LITE_LIKE, DEEPSEEK_V2_LIKE, makeBatch, maxAbsDiff, randomTokens, randomWeights, rng, type SeqChunk,
  tinySpec,
} from "./helpers";

const BLOCK = 4;

interface Seq {
  tokens: number[];     // prompt, then decode tokens as they become known
  promptLen: number;
  decodes: number;      // decode steps wanted after the prompt
  forced?: number[];    // decode tokens to feed instead of the sampled ones
  computed: number;     // tokens in the KV cache
  blocks: number[];
  logits: Float32Array[];  // one per sampled position
}

/** Runs every sequence to completion with a random SplitFuse-like schedule (random budgets unless one is fixed). */
function runMixed(engine: NativeEngine, seqs: Seq[], r: () => number, vocab: number, fixedBudget?: number) {
  const free = Array.from({ length: 256 }, (_, i) => i).sort(() => r() - 0.5);
  for (let pass = 0; pass < 1000; pass++) {
    const active = seqs.filter((s) => s.computed < s.promptLen + s.decodes).sort(() => r() - 0.5);
    if (!active.length) return;
    let budget = fixedBudget ?? 3 + Math.floor(r() * 14);
    const chunks: { seq: Seq; chunk: SeqChunk }[] = [];
    for (const s of active) {
      if (budget <= 0) break;
      const known = s.tokens.length - s.computed;  // tokens not yet in the cache
      const n = s.computed < s.promptLen ? Math.min(budget, 1 + Math.floor(r() * known)) : 1;
      budget -= n;
      while (s.blocks.length * BLOCK < s.computed + n) s.blocks.push(free.pop()!);
      chunks.push({ seq: s, chunk: {
        tokens: s.tokens.slice(s.computed, s.computed + n), context: s.computed, blocks: [...s.blocks],
        wants: s.computed + n === s.tokens.length,
      } });
    }
    const batch = makeBatch(chunks.map((c) => c.chunk), { returnLogits: true });
    const out = engine.step(batch);
    chunks.forEach(({ seq, chunk }, i) => {
      seq.computed += chunk.tokens.length;
      if (!chunk.wants) return;
      const row = batch.rowIndptr[i + 1]! - 1;  // its sampled row
      seq.logits.push(out.logits!.slice(row * vocab, (row + 1) * vocab));
      const next = seq.forced ? seq.forced[seq.logits.length - 1] : out.ids[row];
      if (seq.logits.length <= seq.decodes && next !== undefined) seq.tokens.push(next);
    });
  }
  throw new Error("schedule did not finish");
}

function checkInvariance(over: Partial<ModelSpec>, trial: number, fixedBudget?: number) {
  const spec = tinySpec(over);
  const weights = randomWeights(spec, 77 + trial);
  const r = rng(1000 + trial);
  const prompt = randomTokens(r, 30 + Math.floor(r() * 20), spec.vocab_size);
  const forced = randomTokens(r, 4, spec.vocab_size);

  // Reference: the whole prompt in one pass, then one decode token per pass.
  const solo = buildEngine(spec, weights, { numBlocks: 64, blockSize: BLOCK });
  const blocks = Array.from({ length: 16 }, (_, i) => 63 - 2 * i);
  const expected: Float32Array[] = [];
  const all = [...prompt, ...forced];
  for (let n = prompt.length; n <= all.length; n++) {
    const context = n === prompt.length ? 0 : n - 1;
    const out = solo.step(makeBatch([{ tokens: all.slice(context, n), context, blocks, wants: true }], { returnLogits: true }));
    expected.push(out.logits!);
  }
  solo.destroy();

  const mixed = buildEngine(spec, weights, { numBlocks: 256, blockSize: BLOCK });
  const target: Seq = { tokens: [...prompt], promptLen: prompt.length, decodes: forced.length, forced,
    computed: 0, blocks: [], logits: [] };
  const others: Seq[] = Array.from({ length: 4 }, () => {
    const p = randomTokens(r, 3 + Math.floor(r() * 25), spec.vocab_size);
    return { tokens: p, promptLen: p.length, decodes: 2 + Math.floor(r() * 8), computed: 0, blocks: [], logits: [] };
  });
  runMixed(mixed, [target, ...others], r, spec.vocab_size, fixedBudget);
  mixed.destroy();

  expect(target.logits.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(maxAbsDiff(target.logits[i]!, expected[i]!)).toBeLessThan(1e-4);
}

describe("chunk invariance", () => {
  for (const trial of [0, 1, 2]) {
    test(`full attention, trial ${trial}`, () => checkInvariance({}, trial));
    test(`sliding window 6, trial ${trial}`, () => checkInvariance({ sliding_window: 6 }, trial));
  }
  test("qkv bias + partial rotary + parallel layout", () =>
    checkInvariance({ qkv_bias: true, partial_rotary_factor: 0.5, layout: "parallel", norm: "layer", mlp: "gelu" }, 5));
  for (const trial of [6, 7]) {
    test(`mixture of experts (8 experts, top-2), trial ${trial}`, () =>
      checkInvariance({ arch: "mixtral", num_experts: 8, num_experts_per_tok: 2 }, trial));
  }
  test("learned positions, post-norm, project_in/out (OPT-350m-like)", () =>
    checkInvariance({ arch: "opt", positions: "learned", norm: "layer", norm_position: "post", final_norm: false,
      embed_dim: 24, mlp: "relu", qkv_bias: true, o_bias: true, mlp_bias: true, tie_word_embeddings: true }, 8));
  test("two norms in parallel (Falcon new decoder architecture)", () =>
    checkInvariance({ arch: "falcon", norm: "layer", layout: "parallel_two_norms", mlp: "gelu_tanh" }, 9));
});

// Every second-wave field at once: Gemma-2/3-like (sandwich and (1 + w) norms, q/k norms, embed
// scale, attn scale, both softcaps, alternating sliding/full layers with their own RoPE bases and
// yarn on the full ones) and Qwen2-MoE-like (narrow experts, unrenormalized top-k, gated shared expert).
const GEMMA_LIKE: Partial<ModelSpec> = {
  arch: "gemma3_text", num_layers: 4, head_dim: 16, num_heads: 4, num_kv_heads: 2, qk_norm: true, norm_weight_offset: 1,
  sandwich_norms: true, embed_scale: Math.sqrt(48), attn_scale: 0.2, attn_logit_softcap: 3, final_logit_softcap: 4,
  sliding_window: 6, layer_types: ["sliding", "full", "sliding", "full"], rope_theta: 1e6, sliding_rope_theta: 10000,
  rope_scaling: { type: "yarn", factor: 4, original_max_position_embeddings: 4096 }, mlp: "gated_gelu_tanh",
  tie_word_embeddings: true,
};
const QWEN2_MOE_LIKE: Partial<ModelSpec> = {
  arch: "qwen2_moe", qkv_bias: true, num_experts: 8, num_experts_per_tok: 2, moe_intermediate_size: 24,
  moe_renormalize: false, shared_expert_intermediate_size: 56, shared_expert_gate: true, sliding_window: 7,
  layer_types: ["full", "sliding"],
};

describe("chunk invariance of the second-wave fields", () => {
  for (const [name, over] of [["gemma-like", GEMMA_LIKE], ["qwen2-moe-like", QWEN2_MOE_LIKE]] as const) {
    test(`${name}, random budgets`, () => checkInvariance(over, 10));
    test(`${name}, budget 7`, () => checkInvariance(over, 11, 7));
  }
});

// DeepSeek-V2: latent rows in the cache, read back by later chunks and decodes of the same sequence.
describe("chunk invariance of multi-head latent attention", () => {
  for (const [name, over] of [["deepseek-v2-lite-like", DEEPSEEK_LITE_LIKE], ["deepseek-v2-like", DEEPSEEK_V2_LIKE]] as const) {
    test(`${name}, random budgets`, () => checkInvariance(over, 12));
    test(`${name}, budget 7`, () => checkInvariance(over, 13, 7));
  }
});
