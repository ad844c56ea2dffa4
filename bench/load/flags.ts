/**
 * Flag parsing shared by the load generator's commands: numbers and number lists that fail
 * with the flag's name, and the SLA flags.
 */
import type { SlaConfig } from "./metrics";
import { DEFAULT_SLA } from "./metrics";
import { resolveSuite } from "./workload";

/** A bad command line: the dispatcher prints the message and exits with status 2. */
export class BenchUsageError extends Error {
  override name = "BenchUsageError";
}

/** A positive number flag (integer when `integer`), or undefined when absent. */
export function numberFlag(name: string, v: string | undefined, integer = true): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new BenchUsageError(`--${name} must be a positive ${integer ? "integer" : "number"}, got "${v}"`);
  }
  return n;
}

/** A comma-separated list of positive numbers ("1,2,4"), or undefined when absent. */
export function listFlag(name: string, v: string | undefined, integer = true): number[] | undefined {
  if (v === undefined) return undefined;
  const parts = v.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) throw new BenchUsageError(`--${name} needs at least one value`);
  return parts.map((p) => numberFlag(name, p, integer)!);
}

/** The SLA from --sla-prompt, --sla-gen and --ema-span (defaults: 512, 2,4,6 and 16). */
export function slaFromFlags(v: { "sla-prompt"?: string; "sla-gen"?: string; "ema-span"?: string }): SlaConfig {
  return {
    promptTokensPerS: numberFlag("sla-prompt", v["sla-prompt"], false) ?? DEFAULT_SLA.promptTokensPerS,
    genTokensPerS: listFlag("sla-gen", v["sla-gen"], false) ?? DEFAULT_SLA.genTokensPerS,
    emaSpan: numberFlag("ema-span", v["ema-span"], false) ?? DEFAULT_SLA.emaSpan,
  };
}

/** Whether any SLA flag was given (compare keeps each file's SLA otherwise). */
export const hasSlaFlags = (v: Record<string, unknown>): boolean =>
  v["sla-prompt"] !== undefined || v["sla-gen"] !== undefined || v["ema-span"] !== undefined;

export const SLA_FLAG_SPEC = {
  "sla-prompt": { type: "string" },
  "sla-gen": { type: "string" },
  "ema-span": { type: "string" },
} as const;

export const SLA_FLAG_HELP = `SLA (effective throughput):
  --sla-prompt R       first token within prompt_tokens / R seconds (default ${DEFAULT_SLA.promptTokensPerS})
  --sla-gen R1,R2,..   EMA token rate must stay above each rate, one curve each (default ${DEFAULT_SLA.genTokensPerS.join(",")})
  --ema-span N         span of the moving average of token gaps (default ${DEFAULT_SLA.emaSpan})`;

/** parseArgs specs of the workload flags shared by the load and workload commands (SuiteFlags). */
export const SUITE_FLAG_SPEC = {
  suite: { type: "string" },
  clients: { type: "string" },
  requests: { type: "string" },
  "mean-prompt": { type: "string" },
  "prefix-tokens": { type: "string" },
  sessions: { type: "boolean" },
  "mean-gen": { type: "string" },
  "max-prompt": { type: "string" },
  seed: { type: "string" },
} as const;

/** The workload flags shared by the load and workload commands. */
export interface SuiteFlags {
  suite?: string;
  "mean-prompt"?: string;
  "mean-gen"?: string;
  "max-prompt"?: string;
  seed?: string;
  clients?: string;
  requests?: string;
  "prefix-tokens"?: string;
  sessions?: boolean;
}

/** The suite named by --suite with the workload flags applied; a bad value is a usage error. */
export function suiteFromFlags(v: SuiteFlags): ReturnType<typeof resolveSuite> {
  try {
    return resolveSuite(v.suite, {
      meanPrompt: numberFlag("mean-prompt", v["mean-prompt"]),
      meanGen: numberFlag("mean-gen", v["mean-gen"]),
      maxPrompt: numberFlag("max-prompt", v["max-prompt"]),
      seed: numberFlag("seed", v.seed),
      clients: listFlag("clients", v.clients),
      requests: numberFlag("requests", v.requests),
      prefixTokens: numberFlag("prefix-tokens", v["prefix-tokens"]),
      sessions: v.sessions,
    });
  } catch (e) {
    throw e instanceof BenchUsageError ? e : new BenchUsageError((e as Error).message);
  }
}
