/**
 * A small safetensors writer for tests and tiny fixture models.
 *
 * `data` may be a Float32Array (converted to the tensor's dtype, round-to-nearest-even),
 * a plain number[] (same), or a Uint8Array of raw little-endian bytes already in that dtype.
 *
 *   writeSafetensors("/tmp/m/model.safetensors", [
 *     { name: "model.norm.weight", dtype: "BF16", shape: [64], data: new Float32Array(64).fill(1) },
 *   ]);
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";

export type WriterDType = "F32" | "F16" | "BF16";

export interface TensorToWrite {
  name: string;
  /** F32/F16/BF16 convert from floats; any other safetensors dtype needs raw bytes. */
  dtype: WriterDType | (string & {});
  shape: number[];
  data: Float32Array | number[] | Uint8Array;
}

const ITEM: Record<string, number> = { F32: 4, F16: 2, BF16: 2, F64: 8, I64: 8, I32: 4, I8: 1, U8: 1, BOOL: 1 };

/** float32 -> bfloat16 bits, round to nearest even (NaN stays NaN). */
export function f32ToBf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  if ((u & 0x7fffffff) > 0x7f800000) return ((u >>> 16) | 0x40) & 0xffff;
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

/** float32 -> IEEE half bits, round to nearest even, with subnormals and overflow to inf. */
export function f32ToF16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const exp = (u >>> 23) & 0xff;
  let mant = u & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let m = mant >>> shift;
    const rest = mant & ((1 << shift) - 1);
    if (rest > half || (rest === half && m & 1)) m++;
    return sign | m;
  }
  let m = mant >>> 13;
  const rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest === 0x1000 && m & 1)) {
    m++;
    if (m === 0x400) {
      m = 0;
      e++;
      if (e >= 0x1f) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | m;
}

/** bfloat16 bits -> float32. */
export function bf16BitsToF32(b: number): number {
  return new Float32Array(new Uint32Array([b << 16]).buffer)[0]!;
}

/** IEEE half bits -> float32. */
export function f16BitsToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** Raw little-endian bytes of `values` in `dtype`. */
export function encodeValues(dtype: string, values: ArrayLike<number>): Uint8Array {
  const n = values.length;
  if (dtype === "F32") return new Uint8Array(Float32Array.from(values).buffer);
  if (dtype === "F16" || dtype === "BF16") {
    const bits = new Uint16Array(n);
    const conv = dtype === "F16" ? f32ToF16Bits : f32ToBf16Bits;
    for (let i = 0; i < n; i++) bits[i] = conv(values[i]!);
    return new Uint8Array(bits.buffer);
  }
  throw new Error(`cannot convert floats to ${dtype}; pass raw bytes`);
}

/** Decodes raw F32/F16/BF16 bytes back to float32 (for assertions). */
export function decodeValues(dtype: string, bytes: Uint8Array): Float32Array {
  const copy = bytes.slice();
  if (dtype === "F32") return new Float32Array(copy.buffer);
  const bits = new Uint16Array(copy.buffer);
  const conv = dtype === "F16" ? f16BitsToF32 : bf16BitsToF32;
  return Float32Array.from(bits, conv);
}

/** The bytes of a safetensors file holding `tensors` (in the order given). */
export function encodeSafetensors(tensors: TensorToWrite[], metadata?: Record<string, string>): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = t.data instanceof Uint8Array ? t.data : encodeValues(t.dtype, t.data);
    const numel = t.shape.reduce((a, d) => a * d, 1);
    const item = ITEM[t.dtype];
    if (item !== undefined && bytes.length !== numel * item) {
      throw new Error(`${t.name}: ${bytes.length} bytes for ${t.dtype} [${t.shape}] (want ${numel * item})`);
    }
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    blobs.push(bytes);
    offset += bytes.length;
  }
  // Pad the header with spaces so the data buffer starts 8-byte aligned, as the reference does.
  let json = JSON.stringify(header);
  json += " ".repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = new TextEncoder().encode(json);
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let at = 8 + headerBytes.length;
  for (const b of blobs) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

/** Writes one safetensors file (creating its directory). */
export function writeSafetensors(path: string, tensors: TensorToWrite[], metadata?: Record<string, string>): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, encodeSafetensors(tensors, metadata));
}

/** Alias of {@link writeSafetensors}. */
export const write = writeSafetensors;

/**
 * Writes `shards` as `model-0000i-of-0000n.safetensors` plus `model.safetensors.index.json`.
 * @returns the shard file names.
 */
export function writeShardedSafetensors(dir: string, shards: TensorToWrite[][]): string[] {
  const n = shards.length;
  const pad = (i: number) => String(i).padStart(5, "0");
  const weightMap: Record<string, string> = {};
  const files: string[] = [];
  let totalSize = 0;
  shards.forEach((tensors, i) => {
    const file = `model-${pad(i + 1)}-of-${pad(n)}.safetensors`;
    writeSafetensors(join(dir, file), tensors);
    for (const t of tensors) weightMap[t.name] = file;
    totalSize += tensors.reduce((a, t) => a + t.shape.reduce((x, d) => x * d, 1) * (ITEM[t.dtype] ?? 1), 0);
    files.push(file);
  });
  writeFileSync(
    join(dir, "model.safetensors.index.json"),
    JSON.stringify({ metadata: { total_size: totalSize }, weight_map: weightMap }, null, 2),
  );
  return files;
}
