/**
 * Workloads of the load generator: preset suites and the seeded list of requests one sweep
 * point sends. Prompt and generation lengths are drawn from normal distributions with the given
 * means and a relative deviation (DeepSpeed-FastGen's method: 30%), prompts capped at maxPrompt
 * and every request kept inside the server's context.
 *
 * The list depends only on (workload, count, pool size, context): point k of one sweep and point k
 * of another system's sweep send the same requests, and a point with more requests extends the
 * list of a smaller one (request i is the same everywhere).
 */

import type { PrefixShape } from "./prefixWorkloads";
import { makePrefixRequests } from "./prefixWorkloads";

/** What the requests look like. */
export interface WorkloadSpec {
  /** Mean prompt length in tokens. */
  meanPrompt: number;
  /** Mean generation length in tokens (exact per request: ignore_eos + max_tokens). */
  meanGen: number;
  /** Standard deviation as a share of the mean (0.3 = 30%). */
  deviation: number;
  /** Longest prompt sent. */
  maxPrompt: number;
  seed: number;
  /** Shared prefixes (prefixWorkloads.ts): meanPrompt is then the suffix / user turn length. */
  prefix?: PrefixShape;
}

/** A named preset: workload, client counts and (optionally) a fixed request count per point. */
export interface SuitePreset {
  name: string;
  description: string;
  workload: WorkloadSpec;
  clients: number[];
  /** Requests per point; undefined = 4 x clients + 32. */
  requests?: number;
}

/** The client counts of a full sweep. */
export const DEFAULT_CLIENTS = [1, 2, 4, 8, 12, 16, 20, 24, 28, 32];
const FASTGEN = { deviation: 0.3, maxPrompt: 4000, seed: 1 };

/** Preset suites, by name. */
export const SUITES: Record<string, SuitePreset> = {
  "fastgen-2600-60": {
    name: "fastgen-2600-60",
    description: "DeepSpeed-FastGen blog: long prompts, short generations",
    workload: { meanPrompt: 2600, meanGen: 60, ...FASTGEN },
    clients: DEFAULT_CLIENTS,
  },
  "fastgen-2600-128": {
    name: "fastgen-2600-128",
    description: "DeepSpeed-FastGen blog: long prompts, longer generations",
    workload: { meanPrompt: 2600, meanGen: 128, ...FASTGEN },
    clients: DEFAULT_CLIENTS,
  },
  "fastgen-1200-60": {
    name: "fastgen-1200-60",
    description: "DeepSpeed-FastGen blog: medium prompts, short generations",
    workload: { meanPrompt: 1200, meanGen: 60, ...FASTGEN },
    clients: DEFAULT_CLIENTS,
  },
  "fastgen-1200-128": {
    name: "fastgen-1200-128",
    description: "DeepSpeed-FastGen blog: medium prompts, longer generations",
    workload: { meanPrompt: 1200, meanGen: 128, ...FASTGEN },
    clients: DEFAULT_CLIENTS,
  },
  "chat-128-200": {
    name: "chat-128-200",
    description: "Chat-style decode: short prompts, 200-token answers, batch 1-64 (issue #24's token latency p50/p95)",
    workload: { meanPrompt: 128, meanGen: 200, ...FASTGEN },
    clients: [1, 4, 16, 32, 64],
  },
  "cpu-300-32": {
    name: "cpu-300-32",
    description: "CPU backend on the demo model (context 1024): short prompts and generations",
    workload: { meanPrompt: 300, meanGen: 32, deviation: 0.3, maxPrompt: 900, seed: 1 },
    clients: [1, 2, 4, 8, 16],
  },
  "chat-multiturn": {
    name: "chat-multiturn",
    description: "Prefix caching: a 1.5K-token system prompt, conversations of 4-8 turns re-sending their history",
    workload: { meanPrompt: 100, meanGen: 60, ...FASTGEN, prefix: { kind: "chat-multiturn", prefixTokens: 1500, minTurns: 4, maxTurns: 8 } },
    clients: DEFAULT_CLIENTS,
  },
  "shared-prefix": {
    name: "shared-prefix",
    description: "Prefix caching: one 2000-token prefix, short distinct suffixes",
    workload: { meanPrompt: 64, meanGen: 60, ...FASTGEN, prefix: { kind: "shared-prefix", prefixTokens: 2000 } },
    clients: DEFAULT_CLIENTS,
  },
  "ci-tiny": {
    name: "ci-tiny",
    description: "CI smoke run: a few tiny requests at two client counts",
    workload: { meanPrompt: 40, meanGen: 8, deviation: 0.3, maxPrompt: 128, seed: 1 },
    clients: [1, 2],
    requests: 6,
  },
};

/** Requests sent at one point: `fixed` when given, else 4 x clients + 32. */
export function requestsPerPoint(clients: number, fixed?: number): number {
  return fixed ?? 4 * clients + 32;
}

/** One request of a point: its lengths and where its prompt starts in the token pool. */
export interface RequestSpec {
  index: number;
  promptTokens: number;
  genTokens: number;
  /** Offset of the prompt's first token in the prompt pool (prompts differ, no shared prefix). */
  poolOffset: number;
  /** Prefix workloads: the prompt is these [offset, length] pool segments joined. */
  segments?: [number, number][];
  /** chat-multiturn --sessions: the conversation it belongs to (its turns run in order, on one client). */
  session?: number;
}

/** mulberry32: a small, fast, seeded 32-bit generator; returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Standard normal draws from `rng` (Box-Muller; the second value of each pair is dropped). */
export function normal(rng: () => number): number {
  const u = 1 - rng(); // (0, 1]: log stays finite
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rng());
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/**
 * The workload of the sweep point at `clients` clients: its own seed, so a point never re-sends the
 * prompts of another (a server's prefix cache would serve them); two runs at the same client count
 * send the same requests.
 */
export function pointWorkload(w: WorkloadSpec, clients: number): WorkloadSpec {
  return { ...w, seed: w.seed + 1000 * clients };
}

/**
 * The first `count` requests of a workload. With `maxModelLen`, generation is cut to leave at
 * least one prompt token and the prompt to fit what is left of the context.
 */
export function makeRequests(w: WorkloadSpec, count: number, poolSize: number, maxModelLen?: number): RequestSpec[] {
  if (!(w.meanPrompt >= 1 && w.meanGen >= 1)) throw new Error(`workload: mean lengths must be >= 1, got ${w.meanPrompt}/${w.meanGen}`);
  if (!(poolSize >= 1)) throw new Error(`workload: the prompt pool is empty`);
  if (w.prefix) return makePrefixRequests({ ...w, prefix: w.prefix }, count, poolSize, maxModelLen);
  const rng = mulberry32(w.seed);
  const ctx = maxModelLen ?? Infinity;
  const out: RequestSpec[] = [];
  for (let index = 0; index < count; index++) {
    const p = Math.round(w.meanPrompt + w.deviation * w.meanPrompt * normal(rng));
    const g = Math.round(w.meanGen + w.deviation * w.meanGen * normal(rng));
    const genTokens = clamp(g, 1, Math.max(1, ctx - 1));
    const promptTokens = clamp(p, 1, Math.max(1, Math.min(w.maxPrompt, ctx - genTokens)));
    out.push({ index, promptTokens, genTokens, poolOffset: Math.floor(rng() * poolSize) });
  }
  return out;
}

/** The workload of a suite with flags applied; unknown suite names throw. */
export function resolveSuite(
  name: string | undefined,
  overrides: { meanPrompt?: number; meanGen?: number; maxPrompt?: number; seed?: number; clients?: number[]; requests?: number; prefixTokens?: number; sessions?: boolean },
): SuitePreset {
  const custom = name === undefined && (overrides.meanPrompt !== undefined || overrides.meanGen !== undefined);
  const base = SUITES[name ?? "fastgen-2600-60"];
  if (base === undefined) throw new Error(`unknown suite "${name}" (one of: ${Object.keys(SUITES).join(", ")})`);
  const workload: WorkloadSpec = { ...base.workload };
  if (overrides.meanPrompt !== undefined) workload.meanPrompt = overrides.meanPrompt;
  if (overrides.meanGen !== undefined) workload.meanGen = overrides.meanGen;
  if (overrides.maxPrompt !== undefined) workload.maxPrompt = overrides.maxPrompt;
  if (overrides.seed !== undefined) workload.seed = overrides.seed;
  if (overrides.prefixTokens !== undefined) {
    if (!workload.prefix) throw new Error(`--prefix-tokens needs a prefix suite (chat-multiturn, shared-prefix), not "${base.name}"`);
    workload.prefix = { ...workload.prefix, prefixTokens: overrides.prefixTokens };
  }
  if (overrides.sessions) {
    if (workload.prefix?.kind !== "chat-multiturn") throw new Error(`--sessions needs the chat-multiturn suite, not "${base.name}"`);
    workload.prefix = { ...workload.prefix, sessions: true };
  }
  return {
    name: custom ? `p${workload.meanPrompt}-g${workload.meanGen}` : base.name,
    description: custom ? "custom workload" : base.description,
    workload,
    clients: overrides.clients ?? base.clients,
    requests: overrides.requests ?? base.requests,
  };
}
