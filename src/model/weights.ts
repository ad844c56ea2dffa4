/**
 * Hugging Face tensor names -> the canonical names of fastgen.h, through each architecture's
 * weight map (src/model/arch/*.ts). Most HF tensors are one canonical tensor under another name;
 * fused ones (Falcon's query_key_value, Mixtral's stacked experts, OPT's offset position table)
 * are cut into canonical tensors by row ranges, which {@link sliceRows} applies to the bytes.
 *
 * Anything unmapped (rotary inv_freq buffers, ...) is skipped. Shapes are checked against the
 * spec here, from the headers alone, so a wrong config fails before gigabytes are copied.
 */
import { ARCHITECTURES } from "./arch";
import type { ArchWeights, Splitter, Target, TensorPiece } from "./arch/types";
import { FastgenError, specTensors } from "../native";
import { ModelLoadError } from "./errors";
import type { ModelSpec } from "../native/modelSpec";

export { ModelLoadError };

/** One canonical tensor and where it comes from: a whole HF tensor, or rows of one. */
export interface WeightMapping {
  hfName: string;
  name: string;
  shape: number[];
  /** Row ranges [start, count] of the HF tensor (see arch/types.ts); absent = all of it. */
  rows?: [number, number][];
}

/**
 * Canonical name -> expected shape, for every tensor `spec` needs: libfastgen's tensor table
 * (fg_spec_tensors), so the loader checks a checkpoint against the list the engine will.
 * @throws ModelLoadError when libfastgen rejects the spec.
 */
export function expectedTensors(spec: ModelSpec): Map<string, number[]> {
  try {
    return specTensors(spec);
  } catch (e) {
    if (e instanceof FastgenError) throw new ModelLoadError(`model spec rejected: ${e.message}`);
    throw e;
  }
}

function archWeights(spec: ModelSpec): ArchWeights {
  const arch = ARCHITECTURES[spec.arch];
  if (!arch) throw new ModelLoadError(`no weight map for architecture ${spec.arch}`);
  return arch.weights(spec);
}

/** A weight-map key with "{e}" as a regex capturing the expert index. */
const keyPattern = (key: string) => new RegExp(`^${key.replace(/\./g, "\\.").replace("{e}", "(\\d+)")}$`);

interface Resolved {
  target: Target;
  prefix: string;  // "layers.{i}." or ""
  param: "weight" | "bias";
  expert?: string;
}

/** Finds the weight-map entry of an HF tensor name; null when the map has none. */
function resolve(spec: ModelSpec, names: ArchWeights, hfName: string): Resolved | null {
  const param = hfName.endsWith(".bias") ? "bias" : "weight";
  // A bare nn.Parameter (transformers v5 stacked experts) has no .weight suffix.
  const module = hfName.endsWith(".weight") || hfName.endsWith(".bias") ? hfName.slice(0, hfName.lastIndexOf(".")) : hfName;
  if (Object.hasOwn(names.top, module)) return { target: names.top[module]!, prefix: "", param };
  const layerPrefix = names.layerPrefixes.find((p) => module.startsWith(p));
  if (layerPrefix === undefined) return null;
  const rest = module.slice(layerPrefix.length);
  const dot = rest.indexOf(".");
  const index = rest.slice(0, dot);
  const path = rest.slice(dot + 1);
  if (dot < 0 || !/^\d+$/.test(index)) return null;
  for (const [key, target] of Object.entries(names.layer)) {
    const m = key.includes("{e}") ? keyPattern(key).exec(path) : key === path ? [path] : null;
    if (!m) continue;
    if (Number(index) >= spec.num_layers) {
      throw new ModelLoadError(`tensor ${hfName} is for layer ${index}, but the config has ${spec.num_layers} layers`);
    }
    const expert = m[1];
    if (expert !== undefined && Number(expert) >= (spec.num_experts ?? 0)) {
      throw new ModelLoadError(`tensor ${hfName} is for expert ${expert}, but the config has ${spec.num_experts ?? 0} experts`);
    }
    return { target, prefix: `layers.${Number(index)}.`, param, expert: expert === undefined ? undefined : String(Number(expert)) };
  }
  return null;
}

/**
 * The canonical tensors one HF tensor becomes, or null when the engine does not use it.
 * Layer indices beyond the spec and tensors the spec does not expect are errors, not skips
 * (mapWeights): dropping them would run a different model than the checkpoint holds.
 */
export function canonicalTensors(spec: ModelSpec, hfName: string, shape: number[]): TensorPiece[] | null {
  const r = resolve(spec, archWeights(spec), hfName);
  if (!r) return null;
  if (typeof r.target !== "string") {
    try {
      return r.target.split(spec, r.param, shape, r.prefix);
    } catch (e) {
      if (e instanceof ModelLoadError) throw new ModelLoadError(`tensor ${hfName} ${e.message}`);
      throw e;
    }
  }
  const stem = r.expert === undefined ? r.target : r.target.replace("{e}", r.expert);
  const suffix = r.param === "bias" ? "_bias" : "";
  if (stem === "embed" && suffix) return null;
  if (stem === "lm_head" && spec.tie_word_embeddings && !suffix) return null;
  return [{ name: `${r.prefix}${stem}${suffix}`, shape }];
}

/** The canonical name of an HF tensor that maps one-to-one (null when unused or fused). */
export function canonicalName(spec: ModelSpec, hfName: string): string | null {
  const r = resolve(spec, archWeights(spec), hfName);
  if (!r || typeof r.target !== "string") return null;
  return canonicalTensors(spec, hfName, [])?.[0]?.name ?? null;
}

/** The HF tensor name a canonical name comes from (for messages). */
export function hfNameOf(spec: ModelSpec, name: string): string {
  const names = (ARCHITECTURES[spec.arch] ?? ARCHITECTURES.llama!).weights(spec);
  const bias = name.endsWith("_bias");
  const stem = bias ? name.slice(0, -5) : name;
  const param = bias ? "bias" : "weight";
  const produces = (target: Target, s: string): string | null => {
    const stems = typeof target === "string" ? [target] : (target as Splitter).stems;
    for (const t of stems) {
      const m = keyPattern(t).exec(s);
      if (m) return m[1] ?? "";
    }
    return null;
  };
  const full = (module: string, target: Target) => (typeof target === "string" || !target.bare ? `${module}.${param}` : module);
  for (const [module, target] of Object.entries(names.top)) {
    if (produces(target, stem) !== null) return full(module, target);
  }
  const m = /^layers\.(\d+)\.(.+)$/.exec(stem);
  if (m) {
    for (const [key, target] of Object.entries(names.layer)) {
      const expert = produces(target, m[2]!);
      if (expert !== null) return full(`${names.layerPrefixes[0]}${m[1]}.${key.replace("{e}", expert)}`, target);
    }
  }
  return name;
}

/** Header facts of one HF tensor that mapping needs. */
export interface HfTensorHeader {
  name: string;
  shape: number[];
}

/**
 * Maps every HF tensor of a checkpoint, checking the result against the spec.
 * @returns the canonical tensors to load, in the order given, and the HF names skipped.
 * @throws ModelLoadError naming missing tensors, unexpected ones, or shape mismatches.
 */
export function mapWeights(
  spec: ModelSpec,
  headers: Iterable<HfTensorHeader>,
): { mapped: WeightMapping[]; skipped: string[] } {
  const expected = expectedTensors(spec);
  const mapped: WeightMapping[] = [];
  const skipped: string[] = [];
  const seen = new Map<string, string>();
  for (const { name: hfName, shape } of headers) {
    const pieces = canonicalTensors(spec, hfName, shape);
    if (pieces === null) {
      skipped.push(hfName);
      continue;
    }
    for (const { name, shape: got, rows } of pieces) {
      const want = expected.get(name);
      if (!want) {
        throw new ModelLoadError(
          `tensor ${hfName} (-> ${name}) is not part of this model's spec; check the bias, layout and expert settings in config.json`,
        );
      }
      if (seen.has(name)) throw new ModelLoadError(`tensors ${seen.get(name)} and ${hfName} both map to ${name}`);
      if (got.length !== want.length || got.some((d, i) => d !== want[i])) {
        throw new ModelLoadError(
          `tensor ${hfName} (-> ${name}) has shape [${got.join(", ")}], config.json implies [${want.join(", ")}]`,
        );
      }
      seen.set(name, hfName);
      mapped.push(rows ? { hfName, name, shape: got, rows } : { hfName, name, shape: got });
    }
  }
  const missing = [...expected.keys()].filter((n) => !seen.has(n));
  if (missing.length > 0) {
    const shown = missing.slice(0, 8).map((n) => `${n} (${hfNameOf(spec, n)})`).join(", ");
    const more = missing.length > 8 ? ` and ${missing.length - 8} more` : "";
    throw new ModelLoadError(`checkpoint is missing ${missing.length} required tensor(s): ${shown}${more}`);
  }
  return { mapped, skipped };
}

/**
 * The bytes of a canonical tensor cut from an HF tensor: `rows` ranges of rows of `rowBytes`
 * bytes each, concatenated. One range is a view (no copy).
 */
export function sliceRows(data: Uint8Array, rowBytes: number, rows: [number, number][]): Uint8Array {
  if (rows.length === 1) {
    const [start, count] = rows[0]!;
    return data.subarray(start * rowBytes, (start + count) * rowBytes);
  }
  const total = rows.reduce((n, [, count]) => n + count, 0);
  const out = new Uint8Array(total * rowBytes);
  let at = 0;
  for (const [start, count] of rows) {
    out.set(data.subarray(start * rowBytes, (start + count) * rowBytes), at);
    at += count * rowBytes;
  }
  return out;
}
