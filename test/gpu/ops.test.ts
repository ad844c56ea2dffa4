// Each small CUDA op of the forward pass (libfastgen/src/cuda: rope.cu, norm.cu, activation.cu,
// embed.cu, bias.cu, softcap.cu, moe.cu's routing and shared-expert gate) against the CPU
// backend's code for the same op, through fg_run_op on odd sizes (test/native/ops.test.ts checks
// the CPU side against float64 definitions). Inputs the kernel reads as bf16 are rounded first,
// so both sides see the same values; fresh random inputs each run. Runs only with a CUDA device.
import { describe, expect, test } from "bun:test";
import {
  ACTIVATION_KINDS, activationOp, biasRowsOp, embedOp, expertGateOp, moeRouteOp, normOp, posEmbedOp, postNormOp,
  ropeOp, sandwichNormOp, softcapOp, type NormOpKind, type RopeOpArgs,
} from "../../src/native";
import { relErr } from "../native/helpers";
import { hasGpu, randomArray, roundBf16 } from "./gpuHelpers";

/** bf16 outputs: one rounding of values of order 1 (plus fp32 vs float64 statistics). */
const BF16_TOL = 1e-2;
/** fp32 outputs: reduction order and fast intrinsics only. */
const F32_TOL = 1e-5;

const bf = (n: number, scale = 1) => roundBf16(randomArray(n, scale));
const copies = <T extends Float32Array>(a: T): [T, T] => [a.slice() as T, a.slice() as T];

function report(what: string, err: number, tol: number) {
  console.log(`${what}: rel err ${err.toExponential(2)}`);
  expect(Number.isNaN(err)).toBe(false);
  expect(err).toBeLessThan(tol);
}

/** 0 .. n-1 in random order. */
function shuffled(n: number): Int32Array {
  const a = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

interface RopeCase { T: number; nh: number; nkv: number; hd: number; rot: number; qkNorm: boolean; bias: boolean;
  maxPos: number; learned?: boolean }

/** Tokens in distinct blocks of a pool of 2 T + 1; the other slots hold noise. */
function ropeArgs(c: RopeCase): RopeOpArgs {
  const bs = 16, nb = 2 * c.T + 1, W = (c.nh + 2 * c.nkv) * c.hd;
  const blocks = shuffled(nb).subarray(0, c.T);
  const positions = Int32Array.from({ length: c.T }, () => Math.floor(Math.random() * c.maxPos));
  return {
    numHeads: c.nh, numKvHeads: c.nkv, headDim: c.hd, rotaryDim: c.rot, blockSize: bs, numBlocks: nb,
    qkv: bf(c.T * W, 2), positions, blocks,
    invFreq: c.learned ? undefined : Float64Array.from({ length: c.rot / 2 }, (_, i) => 1e6 ** (-(2 * i) / c.rot)),
    attnFactor: 1.1, bias: c.bias ? randomArray(W, 0.5) : undefined,
    qNorm: c.qkNorm ? randomArray(c.hd) : undefined, kNorm: c.qkNorm ? randomArray(c.hd) : undefined, eps: 1e-6,
    kCache: bf(nb * bs * c.nkv * c.hd), vCache: bf(nb * bs * c.nkv * c.hd),
  };
}

describe.skipIf(!hasGpu)("cuda ops vs their CPU twins", () => {
  const ropeCases: [string, RopeCase][] = [
    ["vector path, GQA, qk-norm, bias", { T: 37, nh: 8, nkv: 2, hd: 64, rot: 64, qkNorm: true, bias: true, maxPos: 4096 }],
    ["vector path, partial rotary (Phi), positions to 1e6", { T: 5, nh: 5, nkv: 5, hd: 80, rot: 32, qkNorm: false, bias: true, maxPos: 1e6 }],
    ["vector path, > 64 tokens (one block a token)", { T: 70, nh: 4, nkv: 1, hd: 128, rot: 128, qkNorm: false, bias: false, maxPos: 9000 }],
    ["scalar path, odd head_dim, partial rotary", { T: 3, nh: 3, nkv: 1, hd: 36, rot: 20, qkNorm: true, bias: true, maxPos: 300 }],
    ["scalar path, rot % 16 != 0", { T: 9, nh: 6, nkv: 3, hd: 96, rot: 24, qkNorm: false, bias: false, maxPos: 100 }],
    ["learned positions: bias and the cache write only", { T: 4, nh: 2, nkv: 1, hd: 64, rot: 64, qkNorm: false, bias: true,
      maxPos: 50, learned: true }],
  ];
  for (const [name, c] of ropeCases) {
    test(`rope: ${name}`, () => {
      const gpu = ropeArgs(c), cpu = { ...gpu, qkv: gpu.qkv.slice(), kCache: gpu.kCache.slice(), vCache: gpu.vCache.slice() };
      ropeOp("cuda", gpu);
      ropeOp("cpu", cpu);
      report(`rope ${name}: qkv`, relErr(gpu.qkv, cpu.qkv), BF16_TOL);
      report(`rope ${name}: k cache`, relErr(gpu.kCache, cpu.kCache), BF16_TOL);
      report(`rope ${name}: v cache`, relErr(gpu.vCache, cpu.vCache), BF16_TOL);
      // Slots no token owns keep their values exactly, and so do qkv's k and v parts.
      const row = c.nkv * c.hd, owned = new Set(Array.from(gpu.blocks, (b, t) => b * 16 + (gpu.positions[t]! % 16)));
      for (let slot = 0; slot < gpu.kCache.length / row; slot++)
        if (!owned.has(slot)) expect(gpu.kCache.subarray(slot * row, (slot + 1) * row)).toEqual(cpu.kCache.subarray(slot * row, (slot + 1) * row));
      const W = (c.nh + 2 * c.nkv) * c.hd;
      for (let t = 0; t < c.T; t++) expect(gpu.qkv.subarray(t * W + c.nh * c.hd, (t + 1) * W)).toEqual(cpu.qkv.subarray(t * W + c.nh * c.hd, (t + 1) * W));
    });
  }

  for (const kind of ["rms", "layer", "none"] as NormOpKind[]) {
    for (const [R, H, gather] of [[1, 1, false], [7, 67, true], [33, 4097, true], [130, 5120, false]] as const) {
      test(`norm ${kind}: ${R}x${H}${gather ? ", gathered rows" : ""}, both adds, written back`, () => {
        const src = gather ? R + 5 : R;
        const rowIds = gather ? shuffled(src).subarray(0, R) : undefined;
        const [hg, hc] = copies(randomArray(src * H, 3));
        const args = { rows: R, hidden: H, kind, rowIds, addA: randomArray(H), addB: randomArray(H), writeBack: true,
          w: randomArray(H), b: kind === "layer" ? randomArray(H) : undefined, eps: 1e-5 };
        const out = normOp("cuda", { ...args, h: hg }), ref = normOp("cpu", { ...args, h: hc });
        report(`norm ${kind} ${R}x${H}: residual`, relErr(hg, hc), F32_TOL);
        report(`norm ${kind} ${R}x${H}: out`, relErr(out, ref), BF16_TOL);
      });
    }
  }

  for (const kind of ["rms", "layer"] as const) {
    test(`post_norm ${kind}: 19x3001 in place`, () => {
      const R = 19, H = 3001, [hg, hc] = copies(randomArray(R * H, 2));
      const args = { rows: R, hidden: H, kind, add: randomArray(H), w: randomArray(H), b: kind === "layer" ? randomArray(H) : undefined, eps: 1e-6 };
      const out = postNormOp("cuda", { ...args, h: hg }), ref = postNormOp("cpu", { ...args, h: hc });
      report(`post_norm ${kind}: h`, relErr(hg, hc), F32_TOL);
      report(`post_norm ${kind}: out`, relErr(out, ref), BF16_TOL);
    });
  }

  for (const [R, H, next] of [[1, 33, true], [11, 2305, true], [6, 1000, false]] as const) {
    test(`sandwich_norm ${R}x${H}${next ? " with the next norm" : ""}`, () => {
      const [hg, hc] = copies(randomArray(R * H, 2));
      const args = { rows: R, hidden: H, y: randomArray(R * H, 5), bias: randomArray(H), wPost: randomArray(H),
        wNext: next ? randomArray(H) : undefined, eps: 1e-6 };
      const out = sandwichNormOp("cuda", { ...args, h: hg }), ref = sandwichNormOp("cpu", { ...args, h: hc });
      report(`sandwich_norm ${R}x${H}: h`, relErr(hg, hc), F32_TOL);
      if (next) report(`sandwich_norm ${R}x${H}: out`, relErr(out!, ref!), BF16_TOL);
      else expect(out).toBeNull();
    });
  }

  for (const kind of ACTIVATION_KINDS) {
    for (const [T, I] of [[1, 8], [13, 691], [5, 4096]] as const) {
      test(`activation ${kind}: ${T}x${I}, with bias`, () => {
        const cols = kind.startsWith("gated") ? 2 * I : I;
        const args = { tokens: T, width: I, kind, input: bf(T * cols, 4), bias: randomArray(cols, 0.5) };
        report(`activation ${kind} ${T}x${I}`, relErr(activationOp("cuda", args), activationOp("cpu", args)), BF16_TOL);
      });
    }
  }

  test("embed: a vocabulary shard times embed_scale, plus learned positions", () => {
    const H = 1003, rows = 97, P = 41, T = 29;
    const args = { hidden: H, embed: bf(rows * H), vocabBegin: 50, vocabRows: rows,
      tokenIds: Int32Array.from({ length: T }, () => Math.floor(Math.random() * 200)), scale: Math.sqrt(H),
      positions: Int32Array.from({ length: T }, () => Math.floor(Math.random() * P)), posEmbed: randomArray(P * H), numPositions: P };
    report("embed shard + positions", relErr(embedOp("cuda", args), embedOp("cpu", args)), 1e-6);
    const plain = { ...args, vocabBegin: 0, vocabRows: 200, embed: bf(200 * H), posEmbed: undefined, positions: undefined, scale: 1 };
    report("embed plain", relErr(embedOp("cuda", plain), embedOp("cpu", plain)), 1e-6);
  });

  test("pos_embed, bias_rows, softcap", () => {
    const T = 23, H = 517, P = 64;
    const pos = { hidden: H, posEmbed: randomArray(P * H), numPositions: P,
      positions: Int32Array.from({ length: T }, () => Math.floor(Math.random() * P)) };
    const [hg, hc] = copies(randomArray(T * H));
    posEmbedOp("cuda", { ...pos, h: hg });
    posEmbedOp("cpu", { ...pos, h: hc });
    report("pos_embed", relErr(hg, hc), 1e-6);
    const bias = randomArray(333), [yg, yc] = copies(randomArray(17 * 333));
    biasRowsOp("cuda", yg, bias, 17, 333);
    biasRowsOp("cpu", yc, bias, 17, 333);
    report("bias_rows", relErr(yg, yc), 1e-6);
    const [xg, xc] = copies(randomArray(151937, 80));
    softcapOp("cuda", xg, 30);
    softcapOp("cpu", xc, 30);
    report("softcap", relErr(xg, xc), F32_TOL);
  });

  // [T, E, k, renormalize, pad, ties, numGroups, topkGroups, scale]; the last two rows route in
  // groups (DeepSeek-V2: 160 experts in 8 groups, the best 3, top-6, routed scale 16)
  for (const [T, E, k, renormalize, pad, ties, numGroups, topkGroups, scale] of [
    [1, 8, 2, true, 1, false, 1, 1, 1], [37, 60, 4, false, 1, false, 1, 1, 1], [129, 64, 8, true, 8, true, 1, 1, 1],
    [50, 7, 7, false, 128, true, 1, 1, 1], [33, 160, 6, false, 8, false, 8, 3, 16], [21, 64, 8, true, 1, true, 8, 4, 2.5],
  ] as const) {
    const grouped = numGroups > 1 ? `, ${topkGroups} of ${numGroups} groups, scale ${scale}` : "";
    test(`moe_route T=${T} E=${E} k=${k} renormalize=${renormalize} pad=${pad}${ties ? ", tied logits" : ""}${grouped}`, () => {
      // ties: logits on a coarse grid, so top-k (and the groups' order) must break ties to the
      // lower id as the CPU does
      const logits = Float32Array.from(randomArray(T * E, 4), (v) => (ties ? Math.round(v) : v));
      const args = { logits, tokens: T, experts: E, topK: k, renormalize, pad, numGroups, topkGroups, scale };
      const got = moeRouteOp("cuda", args), want = moeRouteOp("cpu", args);
      expect(got.expertIds).toEqual(want.expertIds);
      report(`moe_route weights T=${T} E=${E}`, relErr(got.weights, want.weights), 1e-6);
      expect(got.expertOffsets).toEqual(want.expertOffsets);
      expect(got.tokenSlots).toEqual(want.tokenSlots);
    });
  }

  for (const [T, H, I] of [[1, 64, 8], [9, 1001, 357], [40, 2048, 1408]] as const) {
    test(`expert_gate ${T}x${H} -> ${I}`, () => {
      const x = bf(T * H), gate = bf(H, 0.1), [ag, ac] = copies(bf(T * I));
      expertGateOp("cuda", { tokens: T, hidden: H, width: I, x, gate, act: ag });
      expertGateOp("cpu", { tokens: T, hidden: H, width: I, x, gate, act: ac });
      report(`expert_gate ${T}x${H}`, relErr(ag, ac), BF16_TOL);
    });
  }
});

test.skipIf(hasGpu)("without a GPU fg_run_op on CUDA reports a clear error", () => {
  expect(() => softcapOp("cuda", randomArray(4), 1)).toThrow(/CUDA|device|driver/i);
});
