/** Shared pieces of the CUDA tests: device detection, bf16 rounding, random data. */
import { cudaDeviceCount } from "../../src/native";

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
