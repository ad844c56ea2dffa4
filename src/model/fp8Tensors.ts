/**
 * The companions of an FP8 checkpoint's weights: each F8_E4M3 `X.weight` comes with
 * `X.weight_scale` (or `X.weight_scale_inv`: the name is DeepSeek's, it multiplies all the same),
 * maybe `X.input_scale` (static activations), and per layer maybe K/V cache scales
 * (`self_attn.k_scale` / `v_scale`, the older `kv_scale`, or compressed-tensors'
 * `k_proj.output_scale` / `v_proj.output_scale`).
 *
 * {@link indexFp8} takes the companions out of the header list the weight map sees (so they are
 * neither "unexpected" nor "skipped"), checks that every FP8 weight has its scale and each scale
 * its weight, and {@link Fp8Tensors} turns a weight's scale tensor into the {@link WeightScales}
 * of each canonical tensor cut from it (whole, or row ranges of a fused tensor).
 */
import { ModelLoadError } from "./errors";
import type { Fp8Scheme } from "./quantization";
import type { SafetensorsSet, TensorInfo } from "./safetensors";
import type { WeightScales } from "../native/types";

/** Companion tensors of one checkpoint, by the weight (or layer) they belong to. */
export interface Fp8Index {
  /** HF weight name -> its scale tensor. */
  weightScale: Map<string, TensorInfo>;
  /** HF weight name -> its static activation scale. */
  inputScale: Map<string, TensorInfo>;
  /** Layer -> K and V cache scales. */
  kScale: Map<number, TensorInfo>;
  vScale: Map<number, TensorInfo>;
}

const WEIGHT_SCALE = /^(.*)\.weight_scale(_inv)?$/;
const INPUT_SCALE = /^(.*)\.input_scale$/;
const KV_SCALE = /\.(\d+)\.(?:.*\.)?(k_scale|v_scale|kv_scale)$/;
const KV_OUTPUT_SCALE = /\.(\d+)\.(?:.*\.)?(k_proj|v_proj)\.output_scale$/;

const numel = (shape: number[]) => shape.reduce((a, d) => a * d, 1);

/**
 * Splits a checkpoint's headers into the tensors the weight map sees and the FP8 companions.
 * Without a scheme nothing is split off, and any F8_E4M3 tensor is an error.
 * @throws ModelLoadError naming an FP8 weight without scale, a scale without FP8 weight, an F8_E5M2
 *   tensor, or a static scheme missing an input_scale.
 */
export function indexFp8(infos: TensorInfo[], scheme: Fp8Scheme | null): { tensors: TensorInfo[]; index: Fp8Index } {
  const index: Fp8Index = { weightScale: new Map(), inputScale: new Map(), kScale: new Map(), vScale: new Map() };
  for (const t of infos) {
    if (t.dtype === "F8_E5M2") throw new ModelLoadError(`tensor ${t.name} is F8_E5M2; FP8 weights must be E4M3 (F8_E4M3)`);
    if (t.dtype === "F8_E4M3" && !scheme)
      throw new ModelLoadError(`tensor ${t.name} is F8_E4M3 but config.json has no quantization_config to say how it is scaled`);
  }
  if (!scheme) return { tensors: infos, index };

  const byName = new Map(infos.map((t) => [t.name, t]));
  const tensors: TensorInfo[] = [];
  for (const t of infos) {
    let m: RegExpExecArray | null;
    if ((m = WEIGHT_SCALE.exec(t.name))) {
      const weight = `${m[1]}.weight`;
      const w = byName.get(weight);
      if (w?.dtype !== "F8_E4M3")
        throw new ModelLoadError(`tensor ${t.name} scales ${weight}, which is ${w ? w.dtype : "not in the checkpoint"} (not F8_E4M3)`);
      if (index.weightScale.has(weight))
        throw new ModelLoadError(`${weight} has two scales, ${index.weightScale.get(weight)!.name} and ${t.name}`);
      index.weightScale.set(weight, t);
    } else if ((m = INPUT_SCALE.exec(t.name))) {
      if (numel(t.shape) !== 1) throw new ModelLoadError(`tensor ${t.name} has shape [${t.shape.join(", ")}]; input scales are per tensor`);
      index.inputScale.set(`${m[1]}.weight`, t);
    } else if ((m = KV_SCALE.exec(t.name) ?? KV_OUTPUT_SCALE.exec(t.name))) {
      if (numel(t.shape) !== 1) throw new ModelLoadError(`tensor ${t.name} has shape [${t.shape.join(", ")}]; KV cache scales are per tensor`);
      const layer = Number(m[1]), which = m[2]!;
      if (which !== "v_scale" && which !== "v_proj") index.kScale.set(layer, t);
      if (which !== "k_scale" && which !== "k_proj") index.vScale.set(layer, t);
    } else {
      tensors.push(t);
    }
  }
  for (const t of tensors) {
    if (t.dtype !== "F8_E4M3") continue;
    if (!index.weightScale.has(t.name))
      throw new ModelLoadError(`FP8 tensor ${t.name} has no scale (${t.name}_scale or ${t.name}_scale_inv)`);
    if (scheme.activations === "static" && !index.inputScale.has(t.name))
      throw new ModelLoadError(`the config's activation scheme is static, but FP8 tensor ${t.name} has no input_scale`);
  }
  return { tensors, index };
}

/** How a weight's scales tile it: [rows, cols] blocks, 0 = the whole dimension. */
type Layout = { blockRows: number; blockCols: number; kind: "tensor" | "channel" | "block" };

/** The layout of a scale tensor for a weight [...lead, cols] (rows = prod(lead)). */
function layoutOf(weight: TensorInfo, scale: TensorInfo, scheme: Fp8Scheme): Layout {
  const cols = weight.shape[weight.shape.length - 1] ?? 1, rows = numel(weight.shape) / cols;
  const n = numel(scale.shape);
  const found: Layout | null = (() => {
    const b = scheme.blockSize;
    if (b && weight.shape.length === 2 && scale.shape.length === 2 &&
        scale.shape[0] === Math.ceil(rows / b[0]) && scale.shape[1] === Math.ceil(cols / b[1]))
      return { blockRows: b[0], blockCols: b[1], kind: "block" };
    if (n === 1) return { blockRows: 0, blockCols: 0, kind: "tensor" };
    const lead = weight.shape.slice(0, -1);
    const sameLead = scale.shape.length >= lead.length && lead.every((d, i) => scale.shape[i] === d) &&
      scale.shape.slice(lead.length).every((d) => d === 1);
    if (n === rows && (sameLead || scale.shape.length === 1)) return { blockRows: 1, blockCols: 0, kind: "channel" };
    return null;
  })();
  const want = scheme.blockSize ? ` or [${Math.ceil(rows / scheme.blockSize[0])}, ${Math.ceil(cols / scheme.blockSize[1])}] (blocks of ${scheme.blockSize.join("x")})` : "";
  if (!found)
    throw new ModelLoadError(`scale ${scale.name} has shape [${scale.shape.join(", ")}]; for ${weight.name} [${weight.shape.join(", ")}] ` +
      `it must be [] or [1] (per tensor), [${rows}, 1] (per channel)${want}`);
  if (scheme.weights !== "auto" && found.kind !== scheme.weights)
    throw new ModelLoadError(`scale ${scale.name} [${scale.shape.join(", ")}] is ${found.kind}-wise, but the config's weight strategy is ${scheme.weights}`);
  return found;
}

/** Float32 values of a small F32 / BF16 / F16 tensor. */
function floats(set: SafetensorsSet, info: TensorInfo): Float32Array {
  const view = set.tensors.get(info.name)!.get(info.name);
  const b = view.data;
  if (view.dtype === "F32") return new Float32Array(b.slice().buffer);
  const halves = new Uint16Array(b.slice().buffer);
  if (view.dtype === "BF16") return new Float32Array(Uint32Array.from(halves, (h) => h << 16).buffer);
  if (view.dtype === "F16") {
    const out = new Float32Array(halves.length);
    halves.forEach((h, i) => {
      const e = (h >> 10) & 31, m = h & 1023, s = h & 0x8000 ? -1 : 1;
      out[i] = s * (e === 0 ? m * 2 ** -24 : e === 31 ? (m ? NaN : Infinity) : (1 + m / 1024) * 2 ** (e - 15));
    });
    return out;
  }
  throw new ModelLoadError(`scale tensor ${info.name} is ${view.dtype}; scales must be F32, BF16 or F16`);
}

/** Reads the companions of an indexed checkpoint as the engine wants them. */
export class Fp8Tensors {
  constructor(private set: SafetensorsSet, private scheme: Fp8Scheme, private index: Fp8Index) {}

  /**
   * The scales of each canonical tensor cut from FP8 weight `weight`: whole (rows absent) or the
   * row ranges [start, count] of a fused tensor, concatenated (arch/types.ts TensorPiece).
   */
  scalesOf(weight: TensorInfo): (rows?: [number, number][]) => WeightScales {
    const info = this.index.weightScale.get(weight.name)!;
    const layout = layoutOf(weight, info, this.scheme);
    const values = floats(this.set, info);
    const input = this.index.inputScale.get(weight.name);
    const inputScale = input ? floats(this.set, input)[0]! : 0;
    const gridCols = layout.kind === "block" ? Math.ceil(weight.shape[1]! / layout.blockCols) : 1;
    const totalRows = numel(weight.shape) / (weight.shape[weight.shape.length - 1] ?? 1);
    return (rows) => {
      const whole = { values, blockRows: layout.blockRows, blockCols: layout.blockCols, inputScale };
      if (!rows || layout.kind === "tensor") return whole;
      if (layout.kind === "channel")
        return { ...whole, values: Float32Array.from(rows.flatMap(([s, n]) => [...values.subarray(s, s + n)])) };
      // block rows: each range must start on a block and fill whole blocks (the last may end the tensor)
      const bm = layout.blockRows;
      const picked: number[] = [];
      for (const [i, [s, n]] of rows.entries()) {
        if (s % bm !== 0 || (n % bm !== 0 && (s + n !== totalRows || i !== rows.length - 1)))
          throw new ModelLoadError(`${weight.name}: rows [${s}, ${s + n}) of a fused tensor do not fall on its ${bm}-row scale blocks`);
        picked.push(...values.subarray((s / bm) * gridCols, Math.ceil((s + n) / bm) * gridCols));
      }
      return { ...whole, values: Float32Array.from(picked) };
    };
  }

  /** Per-layer K and V cache scales ([num_layers], 1.0 where a layer has none); null when none. */
  kvCacheScales(numLayers: number): { kScales: Float32Array; vScales: Float32Array } | null {
    if (this.index.kScale.size === 0 && this.index.vScale.size === 0) return null;
    const read = (m: Map<number, TensorInfo>) => {
      const out = new Float32Array(numLayers).fill(1);
      for (const [layer, info] of m) {
        if (layer >= numLayers) throw new ModelLoadError(`${info.name} is for layer ${layer}, but the model has ${numLayers} layers`);
        out[layer] = floats(this.set, info)[0]!;
      }
      return out;
    };
    return { kScales: read(this.index.kScale), vScales: read(this.index.vScale) };
  }
}
