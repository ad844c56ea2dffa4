/**
 * CUDA figures for the second-wave families (issue #21) on random bf16 weights of real shapes:
 * Qwen3-8B (q/k norms, GQA 32/8, vocab 151936) and Gemma-2-9B (head_dim 256, sandwich norms,
 * soft-capping, alternating 4096-window / full layers, GeGLU, tied 256000-row vocabulary).
 *   decode b=1 at ctx 128 and 2000: ms/token against the weight-streaming roofline (every matrix a
 *     decode step reads, the LM head included also when it is the tied embedding, over the copy
 *     bandwidth ceilings.py measured in the same run)
 *   prefill 2048 tokens: ms and TFLOP/s against the bf16 GEMM ceiling of the same run
 *   decode batch 32 and 64 at ctx 512: tokens/s
 *
 *   bun bench/gpu/families.ts <ceilings.json> <out-dir> [qwen3-8b] [gemma2-9b]
 * Writes <out-dir>/cuda-families-<gpu>.json and .md. Random weights: the figures are speed only.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeEngine } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";
import { batchOf, loadRandom, timeSteps } from "./randomModel";

const COMMON = {
  norm: "rms", positions: "rope", partial_rotary_factor: 1, rope_scaling: null, qkv_bias: false, o_bias: false,
  mlp_bias: false, lm_head_bias: false, layout: "sequential", max_position_embeddings: 8192,
} as const;

/** The shapes of the Hub configs (Qwen/Qwen3-8B, google/gemma-2-9b). */
const SHAPES: Record<string, ModelSpec> = {
  "qwen3-8b": {
    ...COMMON, arch: "qwen3", vocab_size: 151936, hidden_size: 4096, intermediate_size: 12288, num_layers: 36,
    num_heads: 32, num_kv_heads: 8, head_dim: 128, norm_eps: 1e-6, rope_theta: 1e6, sliding_window: 0,
    mlp: "gated_silu", tie_word_embeddings: false, qk_norm: true,
  },
  "gemma2-9b": {
    ...COMMON, arch: "gemma2", vocab_size: 256000, hidden_size: 3584, intermediate_size: 14336, num_layers: 42,
    num_heads: 16, num_kv_heads: 8, head_dim: 256, norm_eps: 1e-6, rope_theta: 10000, sliding_window: 4096,
    layer_types: Array.from({ length: 42 }, (_, i) => (i % 2 === 0 ? "sliding" : "full")),
    mlp: "gated_gelu_tanh", tie_word_embeddings: true, norm_weight_offset: 1, sandwich_norms: true,
    embed_scale: Math.sqrt(3584), attn_scale: 256 ** -0.5, attn_logit_softcap: 50, final_logit_softcap: 30,
  },
};

const [ceilPath, outDir = "bench/results", ...names] = process.argv.slice(2);
const ceil = ceilPath && existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
const bw = ceil.copy_bw_GBps ? ceil.copy_bw_GBps * 1e9 : NaN;
const results: Record<string, unknown> = {
  gpu: ceil.gpu, date: new Date().toISOString(), command: `bun bench/gpu/families.ts ${process.argv.slice(2).join(" ")}`,
  ceilings: ceil,
};
const rows: string[] = [];

for (const name of names.length ? names : Object.keys(SHAPES)) {
  const spec = SHAPES[name]!;
  const t0 = performance.now();
  const engine = NativeEngine.create(spec, "cuda");
  // loadRandom leaves the embedding out; tied, it is also the LM head every step reads.
  const bytes = loadRandom(engine, spec) + (spec.tie_word_embeddings ? spec.vocab_size * spec.hidden_size * 2 : 0);
  const info = engine.finalize({});
  const bs = info.blockSize;
  const batch = (seqs: number, chunk: number, ctx: number) => batchOf(spec, seqs, chunk, ctx, bs, { poolBlocks: info.numBlocks });
  const rooflineMs = (bytes / bw) * 1e3;
  const d128 = timeSteps(engine, batch(1, 1, 128), 30, 3);
  const d2000 = timeSteps(engine, batch(1, 1, 2000), 20);
  const T = 2048;
  const prefill = timeSteps(engine, batch(1, T, 0), 5, 1);
  const { hidden_size: H, num_layers: L, num_heads: nh, num_kv_heads: nkv, head_dim: hd } = spec;
  const I = spec.intermediate_size, V = spec.vocab_size;
  const linFlops = 2 * T * L * (H * (nh + 2 * nkv) * hd + nh * hd * H + 3 * H * I) + 2 * V * H;
  // causal attention; a sliding layer sees at most `window` keys a query
  const attnFlops = (spec.layer_types ?? Array(L).fill("full")).reduce((sum: number, t: string) => {
    const keys = t === "sliding" && spec.sliding_window < T ? spec.sliding_window * T : (T * (T + 1)) / 2;
    return sum + 4 * nh * hd * keys;
  }, 0);
  const tflops = (linFlops + attnFlops) / (prefill * 1e-3) / 1e12;
  const dec: Record<number, number> = {};
  for (const B of [32, 64]) dec[B] = (B / timeSteps(engine, batch(B, 1, 512), 10)) * 1e3;
  engine.destroy();
  const r = {
    load_seconds: (performance.now() - t0) / 1000, weight_bytes_streamed_per_decode: bytes,
    decode_b1: { ctx128_ms: d128, ctx2000_ms: d2000, roofline_ms: rooflineMs, pct_of_roofline_ctx128: (100 * rooflineMs) / d128 },
    prefill_2048: { ms: prefill, tflops, pct_of_gemm_ceiling: ceil.gemm_bf16_8192_tflops ? (100 * tflops) / ceil.gemm_bf16_8192_tflops : null },
    decode_ctx512_tok_s: dec,
  };
  results[name] = r;
  console.log(`${name}: ${JSON.stringify(r)}`);
  rows.push(
    `| ${name} | ${d128.toFixed(3)} ms (${r.decode_b1.pct_of_roofline_ctx128.toFixed(1)}% of ${rooflineMs.toFixed(3)} ms) | ` +
      `${d2000.toFixed(3)} ms | ${prefill.toFixed(1)} ms, ${tflops.toFixed(0)} TFLOP/s | ${dec[32]!.toFixed(0)} / ${dec[64]!.toFixed(0)} |`,
  );
}

mkdirSync(outDir, { recursive: true });
const gpu = String(ceil.gpu ?? "gpu").toLowerCase().includes("h200") ? "h200" : "h100";
writeFileSync(join(outDir, `cuda-families-${gpu}.json`), JSON.stringify(results, null, 1) + "\n");
const md = [
  `# CUDA backend, second-wave family shapes, random bf16 weights`, "",
  `GPU ${ceil.gpu}; ${results.date}; \`${results.command}\``,
  `ceilings (same run): copy ${ceil.copy_bw_GBps} GB/s, bf16 GEMM 8192^3 ${ceil.gemm_bf16_8192_tflops} TFLOP/s`, "",
  "| shape | decode b=1 ctx 128 (roofline) | decode b=1 ctx 2000 | prefill 2048 | decode b=32 / b=64 ctx 512 tok/s |",
  "| --- | --- | --- | --- | --- |", ...rows, "",
];
writeFileSync(join(outDir, `cuda-families-${gpu}.md`), md.join("\n"));
console.log(md.join("\n"));
