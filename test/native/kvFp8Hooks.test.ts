// The FP8 KV-cache attention hooks on the CPU reference (fg_paged_attention_fp8,
// fg_mla_attention_fp8; test/gpu/fp8Kv.test.ts holds CUDA against them): the CPU attends over
// e4m3(x / scale) * scale, i.e. exactly what fg_paged_attention / fg_mla_attention give on caches
// rounded by test/helpers/e4m3.ts (an E4M3 written independently of core/fp8.cpp); the softcap
// is applied as written; bad scales are refused with a typed error.
import { describe, expect, test } from "bun:test";
import { mlaAttention, pagedAttention, type AttentionShape, type MlaAttentionShape } from "../../src/native";
import { e4m3Round } from "../helpers/e4m3";
import { makeBatch, rng, type SeqChunk } from "./helpers";

/** n seeded values spanning E4M3's binades at this scale: subnormals, normals and a few past 448. */
function spread(r: () => number, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => (r() < 0.5 ? -1 : 1) * 2 ** (r() * 20 - 11) * (1 + r()) * scale);
}

/** x as an FP8 cache keeps it; the scale as the library takes it (float32). */
const rounded = (x: Float32Array, scale: number) => x.map((v) => e4m3Round(v, Math.fround(scale)));

describe("FP8 KV attention hooks on the CPU", () => {
  const chunks: SeqChunk[] = [
    { tokens: [1, 1, 1, 1, 1], context: 6, blocks: [3, 0, 5] },  // a chunk after a context
    { tokens: [1], context: 9, blocks: [1, 4, 2] },             // a decode
  ];
  const batch = makeBatch(chunks);
  const T = batch.tokenIds.length;

  test("paged: attention over the caches rounded through E4M3 with their scales", () => {
    const r = rng(11);
    const shape: AttentionShape = { numHeads: 4, numKvHeads: 2, headDim: 8, blockSize: 4, numBlocks: 6, window: 0 };
    const n = 6 * 4 * 2 * 8, kScale = 0.03, vScale = 4;
    const q = Float32Array.from({ length: T * 4 * 8 }, () => 2 * r() - 1);
    const k = spread(r, n, kScale), v = spread(r, n, vScale);
    const got = pagedAttention("cpu", batch, q, k, v, { ...shape, kvFp8: { kScale, vScale } });
    expect(got).toEqual(pagedAttention("cpu", batch, q, rounded(k, kScale), rounded(v, vScale), shape));
    expect(got).not.toEqual(pagedAttention("cpu", batch, q, k, v, shape));  // the rounding did something
  });

  test("paged: the softcap caps the scaled scores before the softmax", () => {
    const r = rng(12);
    const nh = 2, hd = 4, bs = 4, cap = 0.7, kScale = 0.5, vScale = 0.25;
    const b = makeBatch([{ tokens: [1, 1], context: 3, blocks: [1, 0] }]);
    const shape: AttentionShape = { numHeads: nh, numKvHeads: 1, headDim: hd, blockSize: bs, numBlocks: 2, window: 0 };
    const q = Float32Array.from({ length: 2 * nh * hd }, () => 4 * r() - 2);
    const k = Float32Array.from({ length: 2 * bs * hd }, () => 4 * r() - 2);
    const v = Float32Array.from({ length: 2 * bs * hd }, () => 2 * r() - 1);
    const out = pagedAttention("cpu", b, q, k, v, { ...shape, softcap: cap, kvFp8: { kScale, vScale } });
    const kr = rounded(k, kScale), vr = rounded(v, vScale);
    const slot = (p: number) => ([1, 0][Math.floor(p / bs)]! * bs + (p % bs)) * hd;  // one KV head
    for (let t = 0; t < 2; t++)
      for (let h = 0; h < nh; h++) {
        const pos = 3 + t, qv = q.subarray((t * nh + h) * hd, (t * nh + h + 1) * hd);
        const s = Array.from({ length: pos + 1 }, (_, j) => {
          const raw = qv.reduce((a, x, d) => a + x * kr[slot(j) + d]!, 0) / Math.sqrt(hd);
          return cap * Math.tanh(raw / cap);
        });
        const mx = Math.max(...s), e = s.map((x) => Math.exp(x - mx)), sum = e.reduce((a, x) => a + x, 0);
        for (let d = 0; d < hd; d++) {
          const want = e.reduce((a, w, j) => a + (w / sum) * vr[slot(j) + d]!, 0);
          expect(out[(t * nh + h) * hd + d]!).toBeCloseTo(want, 5);
        }
      }
  });

  test("latent: the [latent | rope] rows rounded through E4M3 at the layer's K scale", () => {
    const r = rng(13);
    const latent = 8, rope = 4, D = latent + rope, kvScale = 0.125;
    const shape: MlaAttentionShape = { numHeads: 3, latent, rope, blockSize: 4, numBlocks: 6, window: 5, scale: 0.3 };
    const q = Float32Array.from({ length: T * 3 * D }, () => 2 * r() - 1);
    const cache = spread(r, 6 * 4 * D, kvScale);
    const got = mlaAttention("cpu", batch, q, cache, { ...shape, kvFp8: { kvScale } });
    expect(got).toEqual(mlaAttention("cpu", batch, q, rounded(cache, kvScale), shape));
  });

  test("bad scales and softcaps are refused with a typed error", () => {
    const shape: AttentionShape = { numHeads: 2, numKvHeads: 2, headDim: 8, blockSize: 4, numBlocks: 6, window: 0 };
    const q = new Float32Array(T * 16), kv = new Float32Array(6 * 4 * 16);
    for (const [kScale, vScale] of [[0, 1], [1, -1], [NaN, 1], [1, Infinity]] as const)
      expect(() => pagedAttention("cpu", batch, q, kv, kv, { ...shape, kvFp8: { kScale, vScale } }))
        .toThrow("fg_paged_attention_fp8: bad arguments");
    expect(() => pagedAttention("cpu", batch, q, kv, kv, { ...shape, softcap: -1, kvFp8: { kScale: 1, vScale: 1 } }))
      .toThrow("fg_paged_attention_fp8: bad arguments");
    // fg_paged_attention_fp8 has the engine's scale and kernel choice only
    expect(() => pagedAttention("cpu", batch, q, kv, kv, { ...shape, kernel: "mma", kvFp8: { kScale: 1, vScale: 1 } }))
      .toThrow("kvFp8 runs with the default scale and kernel");
    const mla: MlaAttentionShape = { numHeads: 2, latent: 4, rope: 4, blockSize: 4, numBlocks: 6, window: 0, scale: 1 };
    expect(() => mlaAttention("cpu", batch, new Float32Array(T * 16), new Float32Array(6 * 4 * 8), { ...mla, kvFp8: { kvScale: 0 } }))
      .toThrow("fg_mla_attention_fp8: bad arguments");
  });
});
