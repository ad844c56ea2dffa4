/**
 * Per-architecture weight maps: Hugging Face tensor names -> the canonical names of fastgen.h.
 *
 *   model.embed_tokens.weight                          -> embed
 *   model.layers.{i}.input_layernorm.weight            -> layers.{i}.attn_norm
 *   model.layers.{i}.self_attn.{q,k,v,o}_proj.weight   -> layers.{i}.{q,k,v,o}     (.bias -> _bias)
 *   model.layers.{i}.post_attention_layernorm.weight   -> layers.{i}.mlp_norm
 *   model.layers.{i}.mlp.{gate,up,down}_proj.weight    -> layers.{i}.{gate,up,down} (.bias -> _bias)
 *   model.norm.weight                                  -> final_norm
 *   lm_head.weight                                     -> lm_head  (ignored when tied)
 *
 * Anything else (rotary inv_freq buffers, ...) is skipped. Shapes are checked against the spec
 * here, from the headers alone, so a wrong config fails before gigabytes are copied.
 */
import type { ModelSpec } from "./spec";

/** A model directory whose tensors do not fit its spec, or a tensor the engine refused. */
export class ModelLoadError extends Error {
  override name = "ModelLoadError";
}

/** One HF tensor and the canonical name it is loaded under. */
export interface WeightMapping {
  hfName: string;
  name: string;
}

interface ArchNames {
  embed: string;
  finalNorm: string;
  lmHead: string;
  layerPrefix: string;
  /** Module path inside a layer -> canonical stem. */
  layer: Record<string, string>;
}

const LLAMA_LIKE: ArchNames = {
  embed: "model.embed_tokens",
  finalNorm: "model.norm",
  lmHead: "lm_head",
  layerPrefix: "model.layers.",
  layer: {
    input_layernorm: "attn_norm",
    "self_attn.q_proj": "q",
    "self_attn.k_proj": "k",
    "self_attn.v_proj": "v",
    "self_attn.o_proj": "o",
    post_attention_layernorm: "mlp_norm",
    "mlp.gate_proj": "gate",
    "mlp.up_proj": "up",
    "mlp.down_proj": "down",
  },
};

const ARCH_NAMES: Record<string, ArchNames> = { llama: LLAMA_LIKE, mistral: LLAMA_LIKE, qwen2: LLAMA_LIKE };

/** Canonical name -> expected shape, for every tensor `spec` needs (fastgen.h's list). */
export function expectedTensors(spec: ModelSpec): Map<string, number[]> {
  const { hidden_size: h, intermediate_size: inter, vocab_size: vocab } = spec;
  const qDim = spec.num_heads * spec.head_dim;
  const kvDim = spec.num_kv_heads * spec.head_dim;
  const out = new Map<string, number[]>();
  const norm = (name: string) => {
    out.set(name, [h]);
    if (spec.norm === "layer") out.set(`${name}_bias`, [h]);
  };
  out.set("embed", [vocab, h]);
  for (let i = 0; i < spec.num_layers; i++) {
    const l = `layers.${i}.`;
    norm(`${l}attn_norm`);
    out.set(`${l}q`, [qDim, h]);
    out.set(`${l}k`, [kvDim, h]);
    out.set(`${l}v`, [kvDim, h]);
    out.set(`${l}o`, [h, qDim]);
    if (spec.qkv_bias) {
      out.set(`${l}q_bias`, [qDim]);
      out.set(`${l}k_bias`, [kvDim]);
      out.set(`${l}v_bias`, [kvDim]);
    }
    if (spec.o_bias) out.set(`${l}o_bias`, [h]);
    if (spec.layout !== "parallel") norm(`${l}mlp_norm`);
    if (spec.mlp === "gated_silu" || spec.mlp === "gated_gelu") out.set(`${l}gate`, [inter, h]);
    out.set(`${l}up`, [inter, h]);
    out.set(`${l}down`, [h, inter]);
    if (spec.mlp_bias) {
      if (out.has(`${l}gate`)) out.set(`${l}gate_bias`, [inter]);
      out.set(`${l}up_bias`, [inter]);
      out.set(`${l}down_bias`, [h]);
    }
  }
  norm("final_norm");
  if (!spec.tie_word_embeddings) out.set("lm_head", [vocab, h]);
  if (spec.lm_head_bias) out.set("lm_head_bias", [vocab]);
  return out;
}

/**
 * The canonical name of one HF tensor, or null when the engine does not use it.
 * Layer indices beyond the spec and biases the spec does not expect are errors, not skips:
 * dropping them would run a different model than the checkpoint holds.
 */
export function canonicalName(spec: ModelSpec, hfName: string): string | null {
  const names = ARCH_NAMES[spec.arch];
  if (!names) throw new ModelLoadError(`no weight map for architecture ${spec.arch}`);
  const param = hfName.endsWith(".weight") ? "weight" : hfName.endsWith(".bias") ? "bias" : null;
  if (!param) return null;
  const module = hfName.slice(0, -(param.length + 1));
  const suffix = param === "bias" ? "_bias" : "";
  if (module === names.embed) return param === "weight" ? "embed" : null;
  if (module === names.finalNorm) return `final_norm${suffix}`;
  if (module === names.lmHead) return spec.tie_word_embeddings && !suffix ? null : `lm_head${suffix}`;
  if (!module.startsWith(names.layerPrefix)) return null;
  const rest = module.slice(names.layerPrefix.length);
  const dot = rest.indexOf(".");
  const index = rest.slice(0, dot);
  const path = rest.slice(dot + 1);
  if (dot < 0 || !/^\d+$/.test(index) || !Object.hasOwn(names.layer, path)) return null;
  const stem = names.layer[path];
  if (Number(index) >= spec.num_layers) {
    throw new ModelLoadError(`tensor ${hfName} is for layer ${index}, but the config has ${spec.num_layers} layers`);
  }
  return `layers.${Number(index)}.${stem}${suffix}`;
}

/** The HF tensor name a canonical name comes from (for messages). */
export function hfNameOf(spec: ModelSpec, name: string): string {
  const names = ARCH_NAMES[spec.arch] ?? LLAMA_LIKE;
  const bias = name.endsWith("_bias");
  const stem = bias ? name.slice(0, -5) : name;
  const param = bias ? "bias" : "weight";
  const top: Record<string, string> = { embed: names.embed, final_norm: names.finalNorm, lm_head: names.lmHead };
  if (Object.hasOwn(top, stem)) return `${top[stem]}.${param}`;
  const m = /^layers\.(\d+)\.(\w+)$/.exec(stem);
  const path = m && Object.entries(names.layer).find(([, s]) => s === m[2])?.[0];
  return path ? `${names.layerPrefix}${m[1]}.${path}.${param}` : name;
}

/** Header facts of one HF tensor that mapping needs. */
export interface HfTensorHeader {
  name: string;
  shape: number[];
}

/**
 * Maps every HF tensor of a checkpoint, checking the result against the spec.
 * @returns the tensors to load, in the order given, and the HF names skipped.
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
    const name = canonicalName(spec, hfName);
    if (name === null) {
      skipped.push(hfName);
      continue;
    }
    const want = expected.get(name);
    if (!want) {
      throw new ModelLoadError(
        `tensor ${hfName} (-> ${name}) is not part of this model's spec; check qkv_bias/o_bias/mlp_bias in config.json`,
      );
    }
    if (seen.has(name)) throw new ModelLoadError(`tensors ${seen.get(name)} and ${hfName} both map to ${name}`);
    if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
      throw new ModelLoadError(
        `tensor ${hfName} (-> ${name}) has shape [${shape.join(", ")}], config.json implies [${want.join(", ")}]`,
      );
    }
    seen.set(name, hfName);
    mapped.push({ hfName, name });
  }
  const missing = [...expected.keys()].filter((n) => !seen.has(n));
  if (missing.length > 0) {
    const shown = missing.slice(0, 8).map((n) => `${n} (${hfNameOf(spec, n)})`).join(", ");
    const more = missing.length > 8 ? ` and ${missing.length - 8} more` : "";
    throw new ModelLoadError(`checkpoint is missing ${missing.length} required tensor(s): ${shown}${more}`);
  }
  return { mapped, skipped };
}
