/**
 * fg_run_op (fastgen.h): one op of the forward pass on host arrays, on the CPU or CUDA backend, so
 * test/gpu can hold each CUDA kernel against the CPU backend's code for the same op. The argument
 * order of every op is defined once, in libfastgen/src/core/op_hooks.h; these wrappers name them.
 * Arrays marked "in place" are changed; the CUDA side rounds what its kernel reads as bf16.
 */
import { FastgenError, Status } from "./errors";
import { check, lib } from "./lib";
import { addr } from "./structs";
import type { MoeRouting } from "./kernels";
import type { Backend } from "./types";

/** fastgen.h fg_op. */
const OP = {
  rope: 0, norm: 1, postNorm: 2, sandwichNorm: 3, activation: 4, embed: 5, posEmbed: 6, biasRows: 7,
  softcap: 8, moeRoute: 9, expertGate: 10,
} as const;

type HostArray = Float32Array | Int32Array | Float64Array;

function need(op: string, name: string, a: HostArray | undefined, n: number): void {
  if (a && a.length < n) throw new FastgenError(Status.INVALID_ARGUMENT, `${op}: ${name} has ${a.length} values, needs ${n}`);
  if (!a && n > 0) throw new FastgenError(Status.INVALID_ARGUMENT, `${op}: ${name} is missing`);
}


/** One fg_run_op call; bufs in the op's order, undefined (or empty) for NULL. */
function runOp(backend: Backend, op: keyof typeof OP, dims: number[], params: number[], bufs: (HostArray | undefined)[]): void {
  const ptrs = new BigUint64Array(bufs.map((b) => BigInt(addr(b))));
  const d = Int32Array.from(dims), p = Float32Array.from(params);
  check(lib().fg_run_op(backend === "cuda" ? 1 : 0, OP[op], d, d.length, p.length ? p : null, p.length, ptrs, ptrs.length));
}

/** {@link ropeOp}'s arguments: one layer's q/k/v after the qkv GEMM. */
export interface RopeOpArgs {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Rotated dims of each head (<= headDim, even); the rest pass through. */
  rotaryDim: number;
  blockSize: number;
  numBlocks: number;
  /** [T, (numHeads + 2 numKvHeads) headDim], in place: its q part rotated (k and v parts stay). */
  qkv: Float32Array;
  positions: Int32Array;
  /** [T] the cache block of each token (slot: position % blockSize). */
  blocks: Int32Array;
  /** [rotaryDim / 2]; absent: no rotation (learned positions). */
  invFreq?: Float64Array;
  attnFactor?: number;
  bias?: Float32Array;
  /** Per-head RMSNorm weights of q and k (both or neither), with eps. */
  qNorm?: Float32Array;
  kNorm?: Float32Array;
  eps?: number;
  /** [numBlocks, blockSize, numKvHeads, headDim] each, in place: k and v written to their slots. */
  kCache: Float32Array;
  vCache: Float32Array;
}

/** qkv bias + qk-norm + RoPE + KV-cache write (cuda/rope.cu; CPU: cpu/rope.cpp, cpu/attention.cpp). */
export function ropeOp(backend: Backend, a: RopeOpArgs): void {
  const T = a.positions.length, W = (a.numHeads + 2 * a.numKvHeads) * a.headDim;
  const cache = a.numBlocks * a.blockSize * a.numKvHeads * a.headDim;
  need("ropeOp", "qkv", a.qkv, T * W), need("ropeOp", "blocks", a.blocks, T);
  need("ropeOp", "kCache", a.kCache, cache), need("ropeOp", "vCache", a.vCache, cache);
  if (a.invFreq) need("ropeOp", "invFreq", a.invFreq, a.rotaryDim / 2);
  if (a.bias) need("ropeOp", "bias", a.bias, W);
  if (a.qNorm) need("ropeOp", "qNorm", a.qNorm, a.headDim);
  if (a.kNorm) need("ropeOp", "kNorm", a.kNorm, a.headDim);
  runOp(backend, "rope", [T, a.numHeads, a.numKvHeads, a.headDim, a.rotaryDim, a.blockSize, a.numBlocks],
    [a.attnFactor ?? 1, a.eps ?? 1e-6],
    [a.qkv, a.positions, a.blocks, a.invFreq, a.bias, a.qNorm, a.kNorm, a.kCache, a.vCache]);
}

export type NormOpKind = "rms" | "layer" | "none";
const NORM_KINDS = { rms: 0, layer: 1, none: 2 } as const;

/** {@link normOp}'s arguments: the pre-norm of R rows fused with the residual adds. */
export interface NormOpArgs {
  rows: number;
  hidden: number;
  kind: NormOpKind;
  /** [srcRows, hidden] the residual; in place with writeBack. */
  h: Float32Array;
  /** Which row of h each output row reads (default: row r); distinct with writeBack. */
  rowIds?: Int32Array;
  addA?: Float32Array;
  addB?: Float32Array;
  /** The residual rows keep the adds. */
  writeBack?: boolean;
  w?: Float32Array;
  /** LayerNorm's bias. */
  b?: Float32Array;
  eps: number;
}

/** out [rows, hidden] = norm(h[row] + addA + addB) * w (+ b) (cuda/norm.cu norm_rows; CPU: cpu/norm.cpp). */
export function normOp(backend: Backend, a: NormOpArgs): Float32Array {
  const H = a.hidden, src = a.rowIds ? Math.floor(a.h.length / H) : a.rows;
  need("normOp", "h", a.h, src * H), need("normOp", "rowIds", a.rowIds, a.rowIds ? a.rows : 0);
  for (const [n, v] of [["addA", a.addA], ["addB", a.addB], ["w", a.w], ["b", a.b]] as const) if (v) need("normOp", n, v, H);
  const out = new Float32Array(a.rows * H);
  runOp(backend, "norm", [a.rows, H, src, NORM_KINDS[a.kind], a.writeBack ? 1 : 0], [a.eps],
    [a.h, a.rowIds, a.addA, a.addB, a.w, a.b, out]);
  return out;
}

/** norm_position "post": h = norm(h + add) * w (+ b) in place; returns the same rows (bf16 on CUDA). */
export function postNormOp(backend: Backend, a: { rows: number; hidden: number; kind: "rms" | "layer"; h: Float32Array;
  add?: Float32Array; w: Float32Array; b?: Float32Array; eps: number }): Float32Array {
  const H = a.hidden;
  need("postNormOp", "h", a.h, a.rows * H), need("postNormOp", "w", a.w, H);
  if (a.add) need("postNormOp", "add", a.add, H);
  if (a.b) need("postNormOp", "b", a.b, H);
  const out = new Float32Array(a.rows * H);
  runOp(backend, "postNorm", [a.rows, H, NORM_KINDS[a.kind]], [a.eps], [a.h, a.add, a.w, a.b, out]);
  return out;
}

/** Sandwich norms: h += rmsnorm(y + bias) * wPost in place; returns rmsnorm(h) * wNext (null without wNext). */
export function sandwichNormOp(backend: Backend, a: { rows: number; hidden: number; h: Float32Array; y: Float32Array;
  bias?: Float32Array; wPost: Float32Array; wNext?: Float32Array; eps: number }): Float32Array | null {
  const H = a.hidden, n = a.rows * H;
  need("sandwichNormOp", "h", a.h, n), need("sandwichNormOp", "y", a.y, n), need("sandwichNormOp", "wPost", a.wPost, H);
  if (a.bias) need("sandwichNormOp", "bias", a.bias, H);
  if (a.wNext) need("sandwichNormOp", "wNext", a.wNext, H);
  const out = a.wNext ? new Float32Array(n) : undefined;
  runOp(backend, "sandwichNorm", [a.rows, H], [a.eps], [a.h, a.y, a.bias, a.wPost, a.wNext, out]);
  return out ?? null;
}

export const ACTIVATION_KINDS = ["gated_silu", "gated_gelu", "gated_gelu_tanh", "gelu", "gelu_tanh", "relu"] as const;
export type ActivationKind = (typeof ACTIVATION_KINDS)[number];

/**
 * The MLP activation: gated kinds read input [tokens, 2 width] with columns interleaved
 * (gate_i, up_i) and bias [2 width] alike; plain kinds input and bias of width. Returns [tokens, width].
 */
export function activationOp(backend: Backend, a: { tokens: number; width: number; kind: ActivationKind;
  input: Float32Array; bias?: Float32Array }): Float32Array {
  const kind = ACTIVATION_KINDS.indexOf(a.kind), cols = kind <= 2 ? 2 * a.width : a.width;
  need("activationOp", "input", a.input, a.tokens * cols);
  if (a.bias) need("activationOp", "bias", a.bias, cols);
  const out = new Float32Array(a.tokens * a.width);
  runOp(backend, "activation", [a.tokens, a.width, kind], [], [a.input, a.bias, out]);
  return out;
}

/**
 * Token embedding: h [tokens, hidden] = embed[token - vocabBegin] * scale for tokens of the shard
 * [vocabBegin, vocabBegin + vocabRows) (0 for others), + posEmbed[position] when given.
 */
export function embedOp(backend: Backend, a: { hidden: number; embed: Float32Array; vocabRows: number; vocabBegin?: number;
  tokenIds: Int32Array; scale?: number; positions?: Int32Array; posEmbed?: Float32Array; numPositions?: number }): Float32Array {
  const T = a.tokenIds.length, H = a.hidden, P = a.numPositions ?? 0;
  need("embedOp", "embed", a.embed, a.vocabRows * H);
  if (a.posEmbed) need("embedOp", "posEmbed", a.posEmbed, P * H), need("embedOp", "positions", a.positions, T);
  const h = new Float32Array(T * H);
  runOp(backend, "embed", [T, H, a.vocabBegin ?? 0, a.vocabRows, P], [a.scale ?? 1],
    [a.embed, a.tokenIds, a.positions, a.posEmbed, h]);
  return h;
}

/** h [tokens, hidden] += posEmbed[positions[t]], in place. */
export function posEmbedOp(backend: Backend, a: { hidden: number; posEmbed: Float32Array; numPositions: number;
  positions: Int32Array; h: Float32Array }): void {
  const T = a.positions.length, H = a.hidden;
  need("posEmbedOp", "posEmbed", a.posEmbed, a.numPositions * H), need("posEmbedOp", "h", a.h, T * H);
  runOp(backend, "posEmbed", [T, H, a.numPositions], [], [a.posEmbed, a.positions, a.h]);
}

/** y [rows, n] += bias per row, in place. */
export function biasRowsOp(backend: Backend, y: Float32Array, bias: Float32Array, rows: number, n: number): void {
  need("biasRowsOp", "y", y, rows * n), need("biasRowsOp", "bias", bias, n);
  runOp(backend, "biasRows", [rows, n], [], [y, bias]);
}

/** x = cap * tanh(x / cap), in place. */
export function softcapOp(backend: Backend, x: Float32Array, cap: number): void {
  runOp(backend, "softcap", [x.length], [cap], [x]);
}

/**
 * MoE routing: each token's top-k experts and weights (renormalized over the k, or the softmax
 * over all experts; times scale, default 1), and the slots grouped by expert. numGroups > 1:
 * group-limited (DeepSeek-V2), only the experts of the topkGroups (default numGroups) groups with
 * the highest best logit compete. pad: the device's row alignment per expert.
 */
export function moeRouteOp(backend: Backend, a: { logits: Float32Array; tokens: number; experts: number; topK: number;
  renormalize: boolean; pad?: number; numGroups?: number; topkGroups?: number; scale?: number }): MoeRouting {
  const n = a.tokens * a.topK;
  need("moeRouteOp", "logits", a.logits, a.tokens * a.experts);
  const r: MoeRouting = { expertIds: new Int32Array(n), weights: new Float32Array(n),
    expertOffsets: new Int32Array(a.experts + 1), tokenSlots: new Int32Array(n) };
  const groups = a.numGroups ?? 1;
  runOp(backend, "moeRoute", [a.tokens, a.experts, a.topK, a.renormalize ? 1 : 0, a.pad ?? 1, groups, a.topkGroups ?? groups],
    [a.scale ?? 1],
    [a.logits, r.expertIds, r.weights, r.expertOffsets, r.tokenSlots]);
  return r;
}

/** The shared expert's gate: act [tokens, width] *= sigmoid(x[t] . gate), in place. x: [tokens, hidden]. */
export function expertGateOp(backend: Backend, a: { tokens: number; hidden: number; width: number; x: Float32Array;
  gate: Float32Array; act: Float32Array }): void {
  need("expertGateOp", "x", a.x, a.tokens * a.hidden), need("expertGateOp", "gate", a.gate, a.hidden);
  need("expertGateOp", "act", a.act, a.tokens * a.width);
  runOp(backend, "expertGate", [a.tokens, a.hidden, a.width], [], [a.x, a.gate, a.act]);
}
