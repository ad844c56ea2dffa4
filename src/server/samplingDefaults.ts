/**
 * Sampling defaults from the model's generation_config.json, applied to requests that do not set
 * them, as vLLM does (`--generation-config auto`, its default): temperature, top_p, top_k, min_p,
 * repetition_penalty, and max_new_tokens, which caps every request's max tokens.
 * `--generation-config vllm` turns them off (neutral defaults: temperature 1, top_p 1, ...).
 */
import type { SamplingBase } from "../engine/samplingOptions";

/** Where sampling defaults come from: the model's generation_config.json, or none. */
export type GenerationConfigMode = "auto" | "vllm";
export const GENERATION_CONFIG_MODES: readonly GenerationConfigMode[] = ["auto", "vllm"];

/** The defaults a model's generation config sets (absent keys: the neutral default). */
export interface SamplingDefaults {
  temperature?: number;
  topP?: number;
  topK?: number;
  minP?: number;
  repetitionPenalty?: number;
  /** max_new_tokens: the most tokens any request may generate. */
  maxTokens?: number;
}

const num = (v: unknown, ok: (x: number) => boolean): number | undefined => (typeof v === "number" && Number.isFinite(v) && ok(v) ? v : undefined);

/** Reads the defaults of a parsed generation_config.json; values out of range are left out. */
export function samplingDefaultsFrom(config: Readonly<Record<string, unknown>>, mode: GenerationConfigMode = "auto"): SamplingDefaults {
  if (mode === "vllm") return {};
  const d: SamplingDefaults = {
    temperature: num(config.temperature, (x) => x >= 0),
    topP: num(config.top_p, (x) => x > 0 && x <= 1),
    topK: num(config.top_k, (x) => Number.isInteger(x) && x >= -1),
    minP: num(config.min_p, (x) => x >= 0 && x <= 1),
    repetitionPenalty: num(config.repetition_penalty, (x) => x > 0),
    maxTokens: num(config.max_new_tokens, (x) => Number.isInteger(x) && x >= 1),
  };
  for (const k of Object.keys(d) as (keyof SamplingDefaults)[]) if (d[k] === undefined) delete d[k];
  return d;
}

/** The defaults written as request fields, for the start-up log ("" when there are none). */
export function describeDefaults(d: SamplingDefaults): string {
  const names: [keyof SamplingDefaults, string][] = [
    ["temperature", "temperature"], ["topP", "top_p"], ["topK", "top_k"], ["minP", "min_p"],
    ["repetitionPenalty", "repetition_penalty"], ["maxTokens", "max_tokens (cap)"],
  ];
  return names.filter(([k]) => d[k] !== undefined).map(([k, name]) => `${name}=${d[k]}`).join(", ");
}

/** `sampling` with every field it leaves unset taken from `d`. */
export function withSamplingDefaults(sampling: SamplingBase, d: SamplingDefaults): SamplingBase {
  const out = { ...sampling };
  if (out.temperature === undefined && d.temperature !== undefined) out.temperature = d.temperature;
  if (out.topP === undefined && d.topP !== undefined) out.topP = d.topP;
  if (out.topK === undefined && d.topK !== undefined) out.topK = d.topK;
  if (out.minP === undefined && d.minP !== undefined) out.minP = d.minP;
  if (out.repetitionPenalty === undefined && d.repetitionPenalty !== undefined) out.repetitionPenalty = d.repetitionPenalty;
  return out;
}
