// fg_run_op on the CPU backend (libfastgen/src/core/ops_cpu.cpp): each op of the forward pass on
// host arrays against its float64 definition (opsReference.ts), so the argument order that the
// CUDA side shares is checked where there is no GPU; test/gpu/ops.test.ts then holds each CUDA
// kernel against these. Plus the argument checks every backend gets (core/op_hooks.cpp).
import { describe, expect, test } from "bun:test";
import {
  ACTIVATION_KINDS, activationOp, biasRowsOp, cpuMoeRoute, embedOp, expertGateOp, moeRouteOp, normOp,
  posEmbedOp, postNormOp, ropeOp, sandwichNormOp, softcapOp, type RopeOpArgs,
} from "../../src/native";
import { lib } from "../../src/native/lib";
import { relErr, rng } from "./helpers";
import { refActivation, refNorm, refRope } from "./opsReference";
import { referenceRoute } from "./reference";

const r = rng(17);
const rand = (n: number, scale = 1) => Float32Array.from({ length: n }, () => (r() * 2 - 1) * scale);

/** Rope arguments whose tokens each own a cache slot; every other slot holds noise. */
function ropeArgs(over: Partial<RopeOpArgs> = {}): RopeOpArgs {
  const nh = 4, nkv = 2, hd = 12, bs = 4, nb = 6, positions = Int32Array.from([0, 3, 7, 12, 1000]);
  const T = positions.length, W = (nh + 2 * nkv) * hd;
  return {
    numHeads: nh, numKvHeads: nkv, headDim: hd, rotaryDim: 8, blockSize: bs, numBlocks: nb,
    qkv: rand(T * W), positions, blocks: Int32Array.from([5, 0, 2, 1, 3]),
    invFreq: Float64Array.from({ length: 4 }, (_, i) => 10000 ** (-(2 * i) / 8)), attnFactor: 1.25,
    bias: rand(W), qNorm: rand(hd), kNorm: rand(hd), eps: 1e-6,
    kCache: rand(nb * bs * nkv * hd), vCache: rand(nb * bs * nkv * hd), ...over,
  };
}

describe("fg_run_op on the CPU backend", () => {
  for (const [name, over] of [
    ["bias, qk-norm, partial rotary", {}],
    ["no qk-norm, no bias, full rotary", { qNorm: undefined, kNorm: undefined, bias: undefined, rotaryDim: 12,
      invFreq: Float64Array.from({ length: 6 }, (_, i) => 500 ** (-(2 * i) / 12)) }],
    ["learned positions (no inv_freq): bias and the cache write only", { invFreq: undefined, qNorm: undefined, kNorm: undefined }],
  ] as const) {
    test(`rope: ${name}`, () => {
      const a = ropeArgs(over);
      const want = refRope(a);
      ropeOp("cpu", a);
      expect(relErr(a.qkv, want.qkv)).toBeLessThan(1e-6);
      expect(relErr(a.kCache, want.kCache)).toBeLessThan(1e-6);
      expect(relErr(a.vCache, want.vCache)).toBeLessThan(1e-6);
    });
  }

  test("norm: rms, layer and none, gathered rows, both adds, written back", () => {
    const H = 9, src = 5, rowIds = Int32Array.from([4, 0, 2]), addA = rand(H), addB = rand(H), w = rand(H), b = rand(H);
    for (const kind of ["rms", "layer", "none"] as const) {
      const h = rand(src * H), before = Float32Array.from(h);
      const out = normOp("cpu", { rows: 3, hidden: H, kind, h, rowIds, addA, addB, writeBack: true, w,
        b: kind === "layer" ? b : undefined, eps: 1e-5 });
      rowIds.forEach((row, i) => {
        const x = Array.from({ length: H }, (_, j) => before[row * H + j]! + addA[j]! + addB[j]!);
        expect(relErr(h.subarray(row * H, (row + 1) * H), x)).toBeLessThan(1e-6);
        const want = kind === "none" ? x : refNorm(x, w, b, kind, 1e-5);
        expect(relErr(out.subarray(i * H, (i + 1) * H), want)).toBeLessThan(1e-5);
      });
      expect(h.subarray(H, 2 * H)).toEqual(before.subarray(H, 2 * H));  // row 1 is not read
    }
  });

  test("norm without rows or write back leaves h alone", () => {
    const H = 7, h = rand(2 * H), w = rand(H), before = Float32Array.from(h), addA = rand(H);
    const out = normOp("cpu", { rows: 2, hidden: H, kind: "rms", h, addA, w, eps: 1e-6 });
    expect(h).toEqual(before);
    const x = Array.from(h.subarray(H), (v, j) => v + addA[j]!);
    expect(relErr(out.subarray(H), refNorm(x, w, undefined, "rms", 1e-6))).toBeLessThan(1e-5);
  });

  test("post_norm: h = norm(h + add) in place, rms and layer", () => {
    const H = 11, add = rand(H), w = rand(H), b = rand(H);
    for (const kind of ["rms", "layer"] as const) {
      const h = rand(3 * H), before = Float32Array.from(h);
      const out = postNormOp("cpu", { rows: 3, hidden: H, kind, h, add, w, b: kind === "layer" ? b : undefined, eps: 1e-5 });
      const want = refNorm(Array.from(before.subarray(2 * H), (v, j) => v + add[j]!), w, b, kind, 1e-5);
      expect(relErr(h.subarray(2 * H), want)).toBeLessThan(1e-5);
      expect(out).toEqual(h);
    }
  });

  test("sandwich_norm: h += rmsnorm(y + bias) * w_post, then the next norm", () => {
    const H = 13, R = 2, y = rand(R * H), bias = rand(H), wPost = rand(H), wNext = rand(H);
    const h = rand(R * H), before = Float32Array.from(h);
    const out = sandwichNormOp("cpu", { rows: R, hidden: H, h, y, bias, wPost, wNext, eps: 1e-6 })!;
    const z = refNorm(Array.from(y.subarray(H), (v, j) => v + bias[j]!), wPost, undefined, "rms", 1e-6);
    const hh = Array.from(before.subarray(H), (v, j) => v + z[j]!);
    expect(relErr(h.subarray(H), hh)).toBeLessThan(1e-5);
    expect(relErr(out.subarray(H), refNorm(hh, wNext, undefined, "rms", 1e-6))).toBeLessThan(1e-5);
    expect(sandwichNormOp("cpu", { rows: R, hidden: H, h, y, wPost, eps: 1e-6 })).toBeNull();
  });

  for (const kind of ACTIVATION_KINDS) {
    test(`activation ${kind} with bias`, () => {
      const T = 3, I = 5, gated = kind.startsWith("gated"), cols = gated ? 2 * I : I;
      const input = rand(T * cols, 3), bias = rand(cols);
      const out = activationOp("cpu", { tokens: T, width: I, kind, input, bias });
      const want = Array.from({ length: T * I }, (_, e) => {
        const t = Math.floor(e / I), i = e % I;
        if (!gated) return refActivation(kind, 0, input[e]! + bias[i]!);
        return refActivation(kind, input[t * cols + 2 * i]! + bias[2 * i]!, input[t * cols + 2 * i + 1]! + bias[2 * i + 1]!);
      });
      expect(relErr(out, want)).toBeLessThan(1e-5);
    });
  }

  test("embed: a vocabulary shard times the scale, plus learned positions", () => {
    const H = 6, P = 9, embed = rand(5 * H), posEmbed = rand(P * H);
    const tokenIds = Int32Array.from([3, 7, 2, 8, 5]), positions = Int32Array.from([0, 8, 3, 1, 4]);
    const h = embedOp("cpu", { hidden: H, embed, vocabBegin: 3, vocabRows: 5, tokenIds, scale: 2.5, positions, posEmbed,
      numPositions: P });
    tokenIds.forEach((tok, t) => {
      const inShard = tok >= 3 && tok < 8;
      const want = Array.from({ length: H }, (_, i) => (inShard ? embed[(tok - 3) * H + i]! * 2.5 : 0) + posEmbed[positions[t]! * H + i]!);
      expect(relErr(h.subarray(t * H, (t + 1) * H), want)).toBeLessThan(1e-6);
    });
  });

  test("pos_embed, bias_rows and softcap", () => {
    const H = 5, P = 4, posEmbed = rand(P * H), positions = Int32Array.from([3, 0, 3]);
    const h = rand(3 * H), before = Float32Array.from(h);
    posEmbedOp("cpu", { hidden: H, posEmbed, numPositions: P, positions, h });
    expect(relErr(h, Array.from(before, (v, e) => v + posEmbed[positions[Math.floor(e / H)]! * H + (e % H)]!))).toBeLessThan(1e-6);
    const y = rand(4 * 7), bias = rand(7), y0 = Float32Array.from(y);
    biasRowsOp("cpu", y, bias, 4, 7);
    expect(relErr(y, Array.from(y0, (v, e) => v + bias[e % 7]!))).toBeLessThan(1e-6);
    const x = rand(33, 60), x0 = Float32Array.from(x);
    softcapOp("cpu", x, 30);
    expect(relErr(x, Array.from(x0, (v) => 30 * Math.tanh(v / 30)))).toBeLessThan(1e-6);
  });

  test("moe_route: fg_cpu_moe_route's lists when renormalized; the softmax over all experts when not", () => {
    const T = 7, E = 6, k = 2, logits = rand(T * E, 3);
    const got = moeRouteOp("cpu", { logits, tokens: T, experts: E, topK: k, renormalize: true, pad: 8 });
    const want = cpuMoeRoute(logits, T, E, k);
    expect(got.expertIds).toEqual(want.expertIds);
    expect(got.weights).toEqual(want.weights);
    expect(got.expertOffsets).toEqual(want.expertOffsets);
    expect(got.tokenSlots).toEqual(want.tokenSlots);
    const plain = moeRouteOp("cpu", { logits, tokens: T, experts: E, topK: k, renormalize: false });
    for (let t = 0; t < T; t++) {
      const ref = referenceRoute(logits.subarray(t * E, (t + 1) * E), k, false);
      expect(Array.from(plain.expertIds.subarray(t * k, (t + 1) * k))).toEqual(ref.ids);
      expect(relErr(plain.weights.subarray(t * k, (t + 1) * k), ref.weights)).toBeLessThan(1e-6);
    }
  });

  test("moe_route: group-limited (DeepSeek-V2) and the routed scale", () => {
    const T = 9, E = 12, k = 3, logits = rand(T * E, 3);
    for (const [numGroups, topkGroups, renormalize, scale] of [[4, 2, false, 16], [3, 1, true, 2.5], [1, 1, false, 0.5]] as const) {
      const got = moeRouteOp("cpu", { logits, tokens: T, experts: E, topK: k, renormalize, numGroups, topkGroups, scale });
      for (let t = 0; t < T; t++) {
        const ref = referenceRoute(logits.subarray(t * E, (t + 1) * E), k, renormalize, { num: numGroups, top: topkGroups },
          scale);
        expect(Array.from(got.expertIds.subarray(t * k, (t + 1) * k))).toEqual(ref.ids);
        expect(relErr(got.weights.subarray(t * k, (t + 1) * k), ref.weights)).toBeLessThan(1e-6);
      }
    }
  });

  test("expert_gate: act *= sigmoid(x . gate)", () => {
    const T = 3, H = 8, I = 5, x = rand(T * H), gate = rand(H), act = rand(T * I), act0 = Float32Array.from(act);
    expertGateOp("cpu", { tokens: T, hidden: H, width: I, x, gate, act });
    const want = Array.from(act0, (v, e) => {
      const t = Math.floor(e / I);
      let dot = 0;
      for (let i = 0; i < H; i++) dot += x[t * H + i]! * gate[i]!;
      return v / (1 + Math.exp(-dot));
    });
    expect(relErr(act, want)).toBeLessThan(1e-6);
  });

  test("zero tokens or rows are no-ops", () => {
    const a = ropeArgs({ positions: new Int32Array(0), blocks: new Int32Array(0), qkv: new Float32Array(0) });
    const k0 = Float32Array.from(a.kCache);
    ropeOp("cpu", a);
    expect(a.kCache).toEqual(k0);
    expect(normOp("cpu", { rows: 0, hidden: 4, kind: "rms", h: new Float32Array(0), w: rand(4), eps: 1e-6 }).length).toBe(0);
    expect(moeRouteOp("cpu", { logits: new Float32Array(0), tokens: 0, experts: 3, topK: 2, renormalize: true }).expertOffsets)
      .toEqual(new Int32Array(4));
  });
});

describe("fg_run_op argument checks", () => {
  const raw = (backend: number, op: number, dims: number[], params: number[], bufs: number) => {
    const d = Int32Array.from(dims), p = Float32Array.from(params.length ? params : [0]);
    return lib().fg_run_op(backend, op, d, d.length, p, params.length, new BigUint64Array(Math.max(bufs, 1)), bufs);
  };
  test("unknown op, unknown backend, wrong counts", () => {
    expect(raw(0, 11, [1], [], 1)).toBe(1);
    expect(String(lib().fg_last_error())).toBe("fg_run_op: unknown op 11");
    expect(raw(7, 8, [1], [1], 1)).toBe(1);
    expect(String(lib().fg_last_error())).toBe("fg_run_op: unknown backend 7");
    expect(raw(0, 8, [1, 2], [1], 1)).toBe(1);
    expect(String(lib().fg_last_error())).toBe("fg_run_op softcap: takes 1 dims, 1 params and 1 bufs, got 2, 1 and 1");
    expect(raw(0, 8, [4], [1], 1)).toBe(1);
    expect(String(lib().fg_last_error())).toBe("fg_run_op softcap: x is null");
  });

  test("indices, shapes and pairings are checked before anything runs", () => {
    const a = ropeArgs({ blocks: Int32Array.from([5, 0, 6, 1, 3]) });
    const qkv = Float32Array.from(a.qkv);
    expect(() => ropeOp("cpu", a)).toThrow("fg_run_op rope: blocks[2] = 6 is outside [0, 6)");
    expect(a.qkv).toEqual(qkv);
    expect(() => ropeOp("cpu", ropeArgs({ rotaryDim: 7 }))).toThrow("fg_run_op rope: rot must be even and in [0, hd]");
    expect(() => ropeOp("cpu", ropeArgs({ kNorm: undefined }))).toThrow("fg_run_op rope: q_norm and k_norm come together");
    const H = 4, w = rand(H);
    expect(() => normOp("cpu", { rows: 1, hidden: H, kind: "rms", h: rand(H), w, b: w, eps: 1e-6 }))
      .toThrow("fg_run_op norm: b is LayerNorm's");
    expect(() => normOp("cpu", { rows: 2, hidden: H, kind: "rms", h: rand(3 * H), rowIds: Int32Array.from([1, 1]),
      writeBack: true, w, eps: 1e-6 })).toThrow("fg_run_op norm: rows repeat a row with write_back");
    expect(() => moeRouteOp("cpu", { logits: rand(6), tokens: 2, experts: 3, topK: 4, renormalize: true }))
      .toThrow("fg_run_op moe_route: need T >= 0 and 1 <= k <= E <= 4096");
    expect(() => moeRouteOp("cpu", { logits: rand(12), tokens: 2, experts: 6, topK: 2, renormalize: true, numGroups: 4 }))
      .toThrow("fg_run_op moe_route: num_groups must divide E, topk_groups be in [1, num_groups], and the chosen groups hold k experts");
    expect(() => moeRouteOp("cpu", { logits: rand(12), tokens: 2, experts: 6, topK: 3, renormalize: true, numGroups: 3,
      topkGroups: 1 })).toThrow("fg_run_op moe_route: num_groups must divide E");
    expect(() => moeRouteOp("cpu", { logits: rand(12), tokens: 2, experts: 6, topK: 2, renormalize: true, scale: 0 }))
      .toThrow("fg_run_op moe_route: scale must be finite and > 0");
    expect(() => softcapOp("cpu", rand(3), 0)).toThrow("fg_run_op softcap: need n >= 0 and a finite cap > 0");
  });
});
