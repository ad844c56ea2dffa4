/**
 * Speculative decoding settings: vLLM's --speculative-config keys, with FastGen's flags as
 * shorthands (`--speculative ngram`, `--draft-model DIR`, `--num-speculative-tokens K`...).
 */

/** How proposals are made: prompt lookup, or a small model of the same vocabulary. */
export type SpeculativeMethod = "ngram" | "draft";
export const SPECULATIVE_METHODS: readonly SpeculativeMethod[] = ["ngram", "draft"];

export interface SpeculativeConfig {
  readonly method: SpeculativeMethod;
  /** Most tokens proposed per sequence per pass: k's ceiling (vLLM num_speculative_tokens). */
  readonly numSpeculativeTokens: number;
  /** ngram: longest and shortest suffix matched against the sequence's own tokens. */
  readonly promptLookupMax: number;
  readonly promptLookupMin: number;
  /** draft: the draft model's directory (same tokenizer / vocabulary as the target). */
  readonly draftModel?: string;
  /**
   * No drafts in a pass of this many decodes or more (vLLM disable_by_batch_size). A decode pass
   * streams every weight for any batch up to the GEMM knee: on the H200 7B the tokens-per-pass
   * curve is flat from 1 to 32 tokens (bench/results/cuda-llama7b-h200.md), so 8 decodes with
   * up to k = 4 proposals each stay on the flat part; past that, verification costs throughput.
   */
  readonly disableByBatchSize: number;
  /**
   * Speculate only at batch sizes where it measurably pays (governor.ts: decode tokens/ms timed
   * with and without, probed now and then). A FastGen key (auto_disable); vLLM has none.
   */
  readonly autoDisable: boolean;
}

export const DEFAULT_SPECULATIVE_CONFIG: Omit<SpeculativeConfig, "method"> = {
  numSpeculativeTokens: 4,
  promptLookupMax: 4,
  promptLookupMin: 2,
  disableByBatchSize: 8,
  autoDisable: true,
};

/** vLLM's JSON keys (snake_case), as --speculative-config takes them. */
const JSON_KEYS: Record<string, keyof SpeculativeConfig> = {
  method: "method",
  model: "draftModel",
  num_speculative_tokens: "numSpeculativeTokens",
  prompt_lookup_max: "promptLookupMax",
  prompt_lookup_min: "promptLookupMin",
  disable_by_batch_size: "disableByBatchSize",
  auto_disable: "autoDisable",
};

/** Parses vLLM's --speculative-config JSON (method "draft_model" is our "draft"). */
export function parseSpeculativeJson(text: string): Partial<SpeculativeConfig> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`--speculative-config is not JSON: ${(e as Error).message}`);
  }
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) throw new Error("--speculative-config must be a JSON object");
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const key = JSON_KEYS[k];
    if (key === undefined) throw new Error(`--speculative-config: unknown key "${k}" (known: ${Object.keys(JSON_KEYS).join(", ")})`);
    out[key] = key === "method" && v === "draft_model" ? "draft" : v;
  }
  return out as Partial<SpeculativeConfig>;
}

/** `c` as --speculative-config JSON (vLLM's keys), for a replica's command line. */
export function speculativeJson(c: SpeculativeConfig): string {
  const out: Record<string, unknown> = {};
  for (const [k, key] of Object.entries(JSON_KEYS)) if (c[key] !== undefined) out[k] = key === "method" && c.method === "draft" ? "draft_model" : c[key];
  return JSON.stringify(out);
}

/** Fills defaults and checks `c`; throws with the offending setting's name. */
export function speculativeConfig(c: Partial<SpeculativeConfig>): SpeculativeConfig {
  const method = c.method ?? (c.draftModel !== undefined ? "draft" : undefined);
  if (method === undefined || !SPECULATIVE_METHODS.includes(method)) {
    throw new Error(`speculative method must be one of ${SPECULATIVE_METHODS.join(", ")}, got ${JSON.stringify(c.method)}`);
  }
  const out: SpeculativeConfig = { ...DEFAULT_SPECULATIVE_CONFIG, ...stripUndefined(c), method };
  const int = (name: string, v: number, min: number) => {
    if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
  };
  int("num_speculative_tokens", out.numSpeculativeTokens, 1);
  int("prompt_lookup_min", out.promptLookupMin, 1);
  int("prompt_lookup_max", out.promptLookupMax, out.promptLookupMin);
  int("disable_by_batch_size", out.disableByBatchSize, 1);
  if (typeof out.autoDisable !== "boolean") throw new Error(`auto_disable must be true or false, got ${JSON.stringify(out.autoDisable)}`);
  if (method === "draft" && !out.draftModel) throw new Error("speculative method draft needs a draft model (--draft-model DIR)");
  if (method === "ngram" && out.draftModel) throw new Error("--draft-model is for the draft method, not ngram");
  return out;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}
