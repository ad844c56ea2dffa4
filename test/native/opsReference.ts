/**
 * float64 references of the fg_run_op ops (libfastgen/src/core/op_hooks.h), written from their
 * definitions with plain loops, so ops.test.ts checks the CPU backend's hooks (and with them the
 * argument order the CUDA side shares) without reusing the library's code.
 */
import type { ActivationKind, RopeOpArgs } from "../../src/native";
import { erf } from "./reference";

/** One row: RMSNorm (kind "rms") or LayerNorm, times w (+ b). */
export function refNorm(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | undefined,
  kind: "rms" | "layer", eps: number): Float64Array {
  const n = x.length, y = new Float64Array(n);
  let mean = 0;
  if (kind === "layer") {
    for (let i = 0; i < n; i++) mean += x[i]!;
    mean /= n;
  }
  let v = 0;
  for (let i = 0; i < n; i++) v += (x[i]! - mean) ** 2;
  const scale = 1 / Math.sqrt(v / n + eps);
  for (let i = 0; i < n; i++) y[i] = (x[i]! - mean) * scale * w[i]! + (kind === "layer" && b ? b[i]! : 0);
  return y;
}

const gelu = (x: number) => 0.5 * x * (1 + erf(x / Math.SQRT2));
const geluTanh = (x: number) => 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3)));
const silu = (x: number) => x / (1 + Math.exp(-x));

/** act(gate) * up for gated kinds, act(up) for plain ones. */
export function refActivation(kind: ActivationKind, gate: number, up: number): number {
  switch (kind) {
    case "gated_silu": return silu(gate) * up;
    case "gated_gelu": return gelu(gate) * up;
    case "gated_gelu_tanh": return geluTanh(gate) * up;
    case "gelu": return gelu(up);
    case "gelu_tanh": return geluTanh(up);
    case "relu": return Math.max(0, up);
  }
}

/** What ropeOp leaves in qkv and the caches, on copies of them. */
export function refRope(a: RopeOpArgs): { qkv: Float64Array; kCache: Float64Array; vCache: Float64Array } {
  const { numHeads: nh, numKvHeads: nkv, headDim: hd, blockSize: bs } = a;
  const T = a.positions.length, W = (nh + 2 * nkv) * hd, rot = a.invFreq ? a.rotaryDim : 0, half = rot / 2;
  const qkv = Float64Array.from(a.qkv), kCache = Float64Array.from(a.kCache), vCache = Float64Array.from(a.vCache);
  for (let t = 0; t < T; t++) {
    const pos = a.positions[t]!, slot = (a.blocks[t]! * bs + (pos % bs)) * nkv * hd;
    const row = Array.from({ length: W }, (_, i) => a.qkv[t * W + i]! + (a.bias ? a.bias[i]! : 0));
    for (let h = 0; h < nh + nkv; h++) {
      let x = row.slice(h * hd, (h + 1) * hd);
      if (a.qNorm) x = Array.from(refNorm(x, h < nh ? a.qNorm : a.kNorm!, undefined, "rms", a.eps ?? 1e-6));
      const y = x.slice();
      for (let i = 0; i < half; i++) {
        const ang = pos * a.invFreq![i]!, c = Math.cos(ang) * (a.attnFactor ?? 1), s = Math.sin(ang) * (a.attnFactor ?? 1);
        y[i] = x[i]! * c - x[i + half]! * s;
        y[i + half] = x[i + half]! * c + x[i]! * s;
      }
      if (h < nh) qkv.set(y, t * W + h * hd);
      else kCache.set(y, slot + (h - nh) * hd);
    }
    vCache.set(row.slice((nh + nkv) * hd), slot);
  }
  return { qkv, kCache, vCache };
}
