// Decode at batch 2..16 on the device (every GEMM of those passes through the small-M tensor-core
// GEMV: qkv, o with residual accumulate, the gated MLP input with its activation or the plain one,
// down, lm_head with odd vocab) against the CPU backend with the same bf16-rounded weights:
// logits within the bf16 tolerance of test/gpu/engine.test.ts at every batch size, greedy ids
// equal except at near-ties. Batch sizes repeat, so decode steps are also replayed as CUDA graphs.
import { afterAll, describe, expect, test } from "bun:test";
import type { ModelSpec } from "../../src/native/modelSpec";
import { NativeEngine, type Backend, type KvConfig } from "../../src/native";
import { makeBatch, maxAbsDiff, randomTokens, randomWeights, relErr, rng, tensorShapes, tinySpec, type SeqChunk } from "../native/helpers";
import type { Weights } from "../native/reference";
import { hasGpu, roundBf16, top2, engineFor } from "./gpuHelpers";

// Every width a multiple of 8 (the GEMV kernels' K % 8 == 0), vocabularies odd.
const VARIANTS: [string, Partial<ModelSpec>][] = [
  ["llama GQA, gated silu, vocab 1001", { vocab_size: 1001, hidden_size: 256, intermediate_size: 512, num_heads: 8, num_kv_heads: 2, head_dim: 32 }],
  ["gated gelu with biases, intermediate 200, vocab 997", { vocab_size: 997, hidden_size: 128, intermediate_size: 200, num_heads: 4, num_kv_heads: 4, head_dim: 32, mlp: "gated_gelu", qkv_bias: true, o_bias: true, mlp_bias: true }],
  ["phi-like parallel, plain gelu_tanh, layernorm", { vocab_size: 515, hidden_size: 96, intermediate_size: 384, num_heads: 3, num_kv_heads: 3, head_dim: 32, norm: "layer", layout: "parallel", mlp: "gelu_tanh", o_bias: true, mlp_bias: true }],
];
// Sequences decoding in each pass: every M from 2 to 16 at least once, some repeated (graphs).
const SCHEDULE = [2, 2, 2, 3, 4, 5, 6, 7, 8, 8, 8, 9, 10, 11, 12, 13, 14, 15, 16, 16, 16];
const SEQS = 16, BLOCK = 8, BLOCKS_PER_SEQ = 6;

const engines: NativeEngine[] = [];
afterAll(() => engines.forEach((e) => e.destroy()));

describe.skipIf(!hasGpu)("cuda decode at batch 2..16 vs cpu", () => {
  VARIANTS.forEach(([name, over], vi) => {
    test(name, () => {
      const spec = tinySpec({ max_position_embeddings: 512, ...over });
      const w = randomWeights(spec, 300 + vi);
      for (const [k, v] of w) w.set(k, roundBf16(v));
      const kv = { numBlocks: SEQS * BLOCKS_PER_SEQ, blockSize: BLOCK };
      const cpu = engineFor("cpu", spec, w, kv), gpu = engineFor("cuda", spec, w, kv);
      engines.push(cpu, gpu);
      const r = rng(40 + vi), V = spec.vocab_size;
      const seqs = Array.from({ length: SEQS }, (_, s) => ({
        tokens: randomTokens(r, 3 + Math.floor(r() * 10), V), done: 0,
        blocks: Array.from({ length: BLOCKS_PER_SEQ }, (_, b) => s * BLOCKS_PER_SEQ + b),
      }));
      // Every prompt in one pass (cuBLASLt's shapes), then the decode schedule.
      const passes = [SEQS, ...SCHEDULE];
      let worst = 0, ties = 0;
      passes.forEach((B, pass) => {
        const live = seqs.slice(0, B);
        const chunks: SeqChunk[] = live.map((s) => ({ tokens: s.tokens.slice(s.done), context: s.done, blocks: s.blocks, wants: true }));
        const batch = makeBatch(chunks, { returnLogits: true });
        const a = cpu.step(batch), b = gpu.step(batch);
        live.forEach((s, i) => {
          const ref = a.logits!.subarray(i * V, (i + 1) * V), got = b.logits!.subarray(i * V, (i + 1) * V);
          const err = relErr(got, ref);
          if (pass > 0) worst = Math.max(worst, err);
          expect(err).toBeLessThan(2e-2);
          expect(b.ids[i]).toBe(top2(got).best);
          if (a.ids[i] !== b.ids[i]) {
            ties++;
            const gap = top2(ref).gap, diff = maxAbsDiff(got, ref);
            console.log(`  ${name} pass ${pass} (batch ${B}) seq ${i}: cpu ${a.ids[i]} gpu ${b.ids[i]}, gap ${gap.toFixed(4)}, max |dlogit| ${diff.toFixed(4)}`);
            expect(gap).toBeLessThan(2 * diff);
          }
          s.done = s.tokens.length;
          s.tokens.push(a.ids[i]!);  // both continue from the CPU's token
        });
      });
      console.log(`decode batch 2..16 ${name}: worst logits rel err ${worst.toExponential(2)}, near-tie id swaps ${ties}`);
      expect(ties).toBeLessThanOrEqual(4);
    });
  });
});
