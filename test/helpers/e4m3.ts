/**
 * FP8 E4M3 (float8_e4m3fn) in TypeScript, written independently of libfastgen's core/fp8.cpp
 * (arithmetic on doubles here, bit manipulation there) so each checks the other, and used to
 * write FP8 test checkpoints (test/fixtures/make_fp8_checkpoints.ts).
 *
 *   byte s eeee mmm, bias 7: normal (1 + m/8) 2^(e-7) up to 0x7e = 448; subnormal (m/8) 2^-6
 *   down to 0x01 = 2^-9; NaN 0x7f / 0xff; no infinities.
 */

/** The value of E4M3 byte b (exact). */
export function e4m3ToF32(b: number): number {
  const sign = b & 0x80 ? -1 : 1, e = (b >> 3) & 15, m = b & 7;
  if (e === 15 && m === 7) return NaN;
  return sign * (e === 0 ? m * 2 ** -9 : (1 + m / 8) * 2 ** (e - 7));
}

/**
 * E4M3 byte of x (taken as a float32): round to nearest, ties to even; |x| >= 448 and +-inf
 * saturate to +-448; NaN gives 0x7f.
 */
export function f32ToE4m3(x: number): number {
  x = Math.fround(x);
  if (Number.isNaN(x)) return 0x7f;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  if (a >= 448) return sign | 0x7e;
  // The step between neighbours in a's binade (subnormals share the binade of 2^-6).
  let e = Math.max(-6, Math.floor(Math.log2(a || 1)));
  while (e > -6 && 2 ** e > a) e--;
  while (2 ** (e + 1) <= a) e++;
  const step = 2 ** (e - 3);
  const q = a / step;  // exact: a power-of-two scaling
  let r = Math.floor(q);
  if (q - r > 0.5 || (q - r === 0.5 && r % 2 === 1)) r++;
  const v = r * step;  // representable, <= 448
  if (v < 2 ** -6) return sign | (v / 2 ** -9);
  const ve = Math.floor(Math.log2(v));
  return sign | ((ve + 7) << 3) | (v / 2 ** ve * 8 - 8);
}

/** x rounded through E4M3 with a scale: e4m3(x / scale) * scale, in float32 (the FP8 KV cache). */
export function e4m3Round(x: number, scale = 1): number {
  return Math.fround(e4m3ToF32(f32ToE4m3(Math.fround(x / scale))) * scale);
}

/** Quantized rows: E4M3 bytes [rows, cols] and one fp32 scale per block of the grid. */
export interface Quantized {
  q: Uint8Array;
  scales: Float32Array;
  /** Block size; [1, cols] per channel, [rows, cols] per tensor. */
  block: [number, number];
}

/**
 * Quantizes w [rows, cols] (float32 values) with one scale per [bm, bn] block: scale =
 * amax(|block|) / 448 (1 when that is 0), q = e4m3(w / scale), all in float32, exactly as
 * libfastgen's fg_quantize_fp8 does per row. `roundScale` rounds each scale first (a checkpoint
 * that stores scales in BF16), and the weight is quantized with the rounded scale.
 */
export function quantizeBlocks(w: Float32Array, rows: number, cols: number, bm: number, bn: number,
  roundScale: (s: number) => number = (s) => s): Quantized {
  const gr = Math.ceil(rows / bm), gc = Math.ceil(cols / bn);
  const scales = new Float32Array(gr * gc);
  const q = new Uint8Array(rows * cols);
  for (let br = 0; br < gr; br++) {
    for (let bc = 0; bc < gc; bc++) {
      let amax = 0;
      for (let r = br * bm; r < Math.min(rows, (br + 1) * bm); r++)
        for (let c = bc * bn; c < Math.min(cols, (bc + 1) * bn); c++) amax = Math.max(amax, Math.abs(w[r * cols + c]!));
      let scale = Math.fround(amax / 448);
      if (!(scale > 0)) scale = 1;
      scale = Math.fround(roundScale(scale));
      scales[br * gc + bc] = scale;
      for (let r = br * bm; r < Math.min(rows, (br + 1) * bm); r++)
        for (let c = bc * bn; c < Math.min(cols, (bc + 1) * bn); c++) q[r * cols + c] = f32ToE4m3(w[r * cols + c]! / scale);
    }
  }
  return { q, scales, block: [bm, bn] };
}

/** The weight a quantized tensor means: e4m3(q) * scale of its block, in float32. */
export function dequantizeBlocks({ q, scales, block: [bm, bn] }: Quantized, rows: number, cols: number): Float32Array {
  const gc = Math.ceil(cols / bn);
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++)
      out[r * cols + c] = Math.fround(e4m3ToF32(q[r * cols + c]!) * scales[Math.floor(r / bm) * gc + Math.floor(c / bn)]!);
  return out;
}
