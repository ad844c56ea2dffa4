/**
 * A whole load-generator run against one OpenAI-compatible server: find the model, get the
 * prompt pool's token ids, settle how to talk to the server (token-id prompts, else text;
 * logprobs for exact token counts, else text chunks), then run every client count of the suite.
 */
import { CORPUS_TEXT, cycleIds } from "./corpus";
import { segmentIds } from "./prefixWorkloads";
import type { SlaConfig } from "./metrics";
import { summarizePoint, wallTimeOf } from "./metrics";
import type { ProgressSink } from "./progress";
import type { BenchResult, ResultPoint } from "./results";
import { RESULT_SCHEMA } from "./results";
import type { PreparedRequest } from "./runPoint";
import { runPoint } from "./runPoint";
import type { ServerInfo, ServerTarget, TokenizerAccess } from "./serverApi";
import { localTokenizer, probeServer, serverTokenizer } from "./serverApi";
import type { ClientMode, StreamTiming } from "./sseClient";
import { streamCompletion } from "./sseClient";
import type { SuitePreset } from "./workload";
import { makeRequests, pointWorkload, requestsPerPoint } from "./workload";

/** Options of {@link runSweep}. */
export interface SweepOptions {
  target: ServerTarget;
  suite: SuitePreset;
  sla: SlaConfig;
  progress: ProgressSink;
  /** The command line, stored in the result. */
  command: string;
  /** Model name to send (default: the first of /v1/models). */
  model?: string;
  /** Curve name (default: the server's owned_by, else "server"). */
  label?: string;
  /** A local tokenizer.json directory (default: the server's /tokenize). */
  tokenizerDir?: string;
  /** Force a prompt form (default: ids, falling back to text). */
  promptMode?: "ids" | "text";
  /** Force logprobs on or off (default: on, falling back to off). */
  logprobs?: boolean;
  /** OpenAI `response_format` for every request (e.g. a json_schema): structured outputs under load. */
  responseFormat?: unknown;
  /** Unrecorded requests at the mean lengths before the sweep (default 2). */
  warmupRequests?: number;
}

/** Modes to try, best first, within what the options allow. */
function candidateModes(o: SweepOptions): ClientMode[] {
  const prompts: ClientMode["prompt"][] = o.promptMode ? [o.promptMode] : ["ids", "text"];
  const lps = o.logprobs === undefined ? [true, false] : [o.logprobs];
  return prompts.flatMap((prompt) => lps.map((logprobs) => ({ prompt, logprobs, responseFormat: o.responseFormat })));
}

/** Sends a short request in each candidate mode until one works; it also warms the server up. */
async function negotiate(o: SweepOptions, info: ServerInfo, tok: TokenizerAccess, pool: number[]): Promise<ClientMode> {
  const ids = cycleIds(pool, 0, 8);
  let last: StreamTiming | undefined;
  for (const mode of candidateModes(o)) {
    const prompt = mode.prompt === "ids" ? ids : await tok.decode(ids);
    last = await streamCompletion(o.target, info.model, prompt, 2, mode);
    if (last.error === undefined && last.tokenMs.length > 0) return mode;
    o.progress.note(`probe (${mode.prompt} prompt${mode.logprobs ? ", logprobs" : ""}) refused: ${last.error ?? "no tokens came back"}`);
  }
  throw new Error(`the server answered no probe completion: ${last?.error ?? "no tokens"}`);
}

/** Requests at the workload's mean lengths before the first point (not recorded): first-touch costs stay out. */
async function warmUp(o: SweepOptions, info: ServerInfo, mode: ClientMode, tok: TokenizerAccess, pool: number[]): Promise<void> {
  const w = o.suite.workload;
  const [spec] = makeRequests({ ...w, deviation: 0 }, 1, pool.length, info.maxModelLen);
  const ids = cycleIds(pool, 0, spec!.promptTokens);
  const prompt = mode.prompt === "ids" ? ids : await tok.decode(ids);
  for (let i = 0; i < (o.warmupRequests ?? 2); i++) {
    const t = await streamCompletion(o.target, info.model, prompt, spec!.genTokens, mode);
    if (t.error !== undefined) throw new Error(`warm-up request failed: ${t.error}`);
  }
}

/** Runs the suite's sweep and returns the result (not yet written). */
export async function runSweep(o: SweepOptions): Promise<BenchResult> {
  const info = await probeServer(o.target, o.model);
  const tok = o.tokenizerDir !== undefined ? localTokenizer(o.tokenizerDir) : serverTokenizer(o.target, info.model);
  const pool = await tok.encode(CORPUS_TEXT);
  if (pool.length === 0) throw new Error("the prompt text encodes to no tokens");
  const mode = await negotiate(o, info, tok, pool);
  const label = o.label ?? info.ownedBy ?? "server";
  await warmUp(o, info, mode, tok, pool);
  o.progress.note(
    `${label}: ${info.model} at ${o.target.baseUrl} (context ${info.maxModelLen ?? "?"}), ${mode.prompt} prompts` +
      `${mode.logprobs ? " + logprobs" : ""}, tokenizer: ${tok.source}, suite ${o.suite.name}`,
  );

  const points: ResultPoint[] = [];
  const { clients } = o.suite;
  for (let k = 0; k < clients.length; k++) {
    const c = clients[k]!;
    // Each point draws its own requests (prefix workloads: their own conversations / suffixes; the
    // shared prefix stays): with one seed for all, every point after the first found its prompts in
    // the server's prefix cache (~100% hits, 2026-12-07).
    const w = pointWorkload(o.suite.workload, c);
    const specs = makeRequests(w, requestsPerPoint(c, o.suite.requests), pool.length, info.maxModelLen);
    const prepared: PreparedRequest[] = [];
    for (const spec of specs) {
      const ids = spec.segments ? segmentIds(pool, spec.segments) : cycleIds(pool, spec.poolOffset, spec.promptTokens);
      prepared.push({ spec, prompt: mode.prompt === "ids" ? ids : await tok.decode(ids) });
    }
    o.progress.startPoint(c, prepared.length, k + 1, clients.length);
    const records = await runPoint(c, prepared, (req) => streamCompletion(o.target, info.model, req.prompt, req.spec.genTokens, mode), (rec) =>
      o.progress.requestDone(rec.error !== undefined),
    );
    const summary = summarizePoint(c, records, wallTimeOf(records), o.sla);
    points.push({ clients: c, summary, requests: records });
    const e = summary.effective.map((x) => `${x.effectiveRps.toFixed(2)}@${x.genTokensPerS}`).join(" ");
    o.progress.endPoint(
      `${label} clients ${c}: ${summary.throughputRps.toFixed(3)} req/s, mean latency ${summary.meanLatencyS.toFixed(3)} s, ` +
        `TTFT mean/p95 ${summary.meanTtftS.toFixed(3)}/${(summary.p95TtftS ?? 0).toFixed(3)} s, ` +
        `${summary.prefixHitRate !== undefined ? `prefix hits ${(100 * summary.prefixHitRate).toFixed(1)}%, ` : ""}` +
        `effective ${e}${summary.failed > 0 ? `, ${summary.failed} failed (${records.find((r) => r.error)?.error})` : ""}`,
    );
    if (summary.completed === 0) {
      o.progress.note(`${label}: every request at ${c} clients failed; stopping the sweep`);
      break;
    }
  }

  return {
    schema: RESULT_SCHEMA,
    suite: o.suite.name,
    label,
    command: o.command,
    date: new Date().toISOString(),
    system: { url: o.target.baseUrl, model: info.model, ownedBy: info.ownedBy, maxModelLen: info.maxModelLen },
    client: { promptMode: mode.prompt, logprobs: mode.logprobs, tokenizer: tok.source, ...(o.responseFormat !== undefined && { responseFormat: o.responseFormat }) },
    workload: { ...o.suite.workload, requestsPerPoint: o.suite.requests !== undefined ? String(o.suite.requests) : "4 x clients + 32" },
    sla: o.sla,
    points,
  };
}
