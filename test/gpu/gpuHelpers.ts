/** Shared pieces of the CUDA tests: device detection, bf16 rounding, random data. */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NativeEngine, cudaDeviceCount, type Backend, type KvConfig } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";
import { bytesOf, makeBatch, type SeqChunk, tensorShapes } from "../native/helpers";
import type { Weights } from "../native/reference";

/** True where libfastgen sees a CUDA device: the GPU suites run only there. */
export const hasGpu = cudaDeviceCount() > 0;

/** Rounds every value to bf16 (round to nearest even), so both backends see the same inputs. */
export function roundBf16(a: Float32Array): Float32Array {
  const out = Float32Array.from(a);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < u.length; i++) {
    const x = u[i]!;
    if ((x & 0x7fffffff) > 0x7f800000) continue;  // NaN stays
    u[i] = ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) << 16;
  }
  return out;
}

/** Fresh (unseeded) uniform values in [-scale, scale): never zeros. */
export function randomArray(n: number, scale = 1): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (Math.random() * 2 - 1) * scale;
  return a;
}

/** Indices of the two largest values and their gap. */
export function top2(row: ArrayLike<number>): { best: number; gap: number } {
  let b = 0, s = -1;
  for (let i = 1; i < row.length; i++) {
    if (row[i]! > row[b]!) { s = b; b = i; } else if (s < 0 || row[i]! > row[s]!) s = i;
  }
  return { best: b, gap: row[b]! - row[s]! };
}

/**
 * How far a fixture's logprobs on the device may sit from transformers' fp32 reference: the noise
 * bf16 itself puts there. bench/gpu/hf_bf16_drift.py measured transformers run in bf16 on an H200
 * against the same references (bench/results/hf-bf16-drift-h200.json): worst top-5 drift
 * 0.10-0.56 over generated and prompt positions, and 3.1 for mixtral, whose bf16 routing flips
 * experts on near-ties. Allowed: 1.25x that fixture's worst (generated or prompt), at least 0.3.
 */
export function fixtureTolerance(name: string): number {
  const f = drift.fixtures[name];
  if (!f) throw new Error(`no bf16 drift measured for fixture ${name}`);
  return Math.max(0.3, 1.25 * Math.max(f.generate, f.prefill));
}
// The first wave's drift (H200), then the second wave's (make_fixtures_families.py; DeepSeek-V2's
// apart), measured by bench/gpu/hf_bf16_drift.py; run_families.sh and run_mla.sh write the last
// two before their tests run when they are missing.
const driftFiles = ["hf-bf16-drift-h200.json", "hf-bf16-drift-families.json", "hf-bf16-drift-deepseek.json"]
  .map((f) => join(import.meta.dir, "..", "..", "bench", "results", f))
  .filter((f) => existsSync(f));
const drift: { fixtures: Record<string, { generate: number; prefill: number }> } = {
  fixtures: Object.assign({}, ...driftFiles.map((f) => JSON.parse(readFileSync(f, "utf8")).fixtures)),
};

/** An engine of `spec` on `backend` with weights `w` (fp32, each converted as the backend keeps it), finalized with `kv`. */
export function engineFor(backend: Backend, spec: ModelSpec, w: Weights, kv: KvConfig): NativeEngine {
  const e = NativeEngine.create(spec, backend);
  const shapes = tensorShapes(spec);
  for (const [name, data] of w) e.loadTensor(name, "F32", shapes.get(name)!, bytesOf(data));
  e.finalize(kv);
  return e;
}

/**
 * A paged batch of sequences [context, tokens in this pass] over shuffled block ids (every
 * attended position covered, 3 spare blocks): the batch, its block count and the chunks.
 */
export function shuffledPagedBatch(seqs: readonly [number, number][], blockSize: number) {
  const numBlocks = seqs.reduce((a, [ctx, n]) => a + Math.ceil((ctx + n) / blockSize), 0) + 3;
  const order = Array.from({ length: numBlocks }, (_, i) => i).sort(() => Math.random() - 0.5);
  const chunks: SeqChunk[] = [];
  let next = 0;
  for (const [ctx, n] of seqs) {
    const need = Math.ceil((ctx + n) / blockSize);
    chunks.push({ tokens: Array(n).fill(1), context: ctx, blocks: order.slice(next, next + need) });
    next += need;
  }
  return { batch: makeBatch(chunks), numBlocks, chunks };
}
