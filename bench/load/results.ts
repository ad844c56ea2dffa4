/**
 * Result files of the load generator (bench/results/<suite>-<label>.json): the run's setup and,
 * per sweep point, every request's record plus a summary. Records are the truth: reading a file
 * recomputes the summaries from them, so a file written by another tool (the transformers
 * static-batching baseline writes records only) and a changed SLA both work.
 */
import { readFileSync } from "node:fs";
import type { PointSummary, RequestRecord, SlaConfig } from "./metrics";
import { DEFAULT_SLA, summarizePoint, wallTimeOf } from "./metrics";
import type { WorkloadSpec } from "./workload";

export const RESULT_SCHEMA = "fastgen-bench/1";

/** One sweep point as stored. */
export interface ResultPoint {
  clients: number;
  summary: PointSummary;
  requests: RequestRecord[];
}

/** A result file. */
export interface BenchResult {
  schema: typeof RESULT_SCHEMA;
  suite: string;
  /** System or policy name: one curve per label in plots. */
  label: string;
  /** The command that produced it. */
  command: string;
  date: string;
  /** What was measured: the server (URL, model) or another tool's note. */
  system: { url?: string; model?: string; ownedBy?: string; maxModelLen?: number; note?: string };
  /** How the client talked to it. */
  client?: { promptMode: "ids" | "text"; logprobs: boolean; tokenizer: string; responseFormat?: unknown };
  workload: WorkloadSpec & { requestsPerPoint: string };
  sla: SlaConfig;
  points: ResultPoint[];
}

/** Recomputes every point's summary from its records (with `sla`, default: the file's). */
export function resummarize(result: BenchResult, sla?: SlaConfig): BenchResult {
  const s = sla ?? result.sla ?? DEFAULT_SLA;
  return {
    ...result,
    sla: s,
    points: result.points.map((p) => ({ ...p, summary: summarizePoint(p.clients, p.requests, wallTimeOf(p.requests), s) })),
  };
}

/** Reads a result file and recomputes its summaries. */
export function readResult(path: string, sla?: SlaConfig): BenchResult {
  const raw = JSON.parse(readFileSync(path, "utf8")) as BenchResult;
  if (raw.schema !== RESULT_SCHEMA) throw new Error(`${path}: not a ${RESULT_SCHEMA} result (schema ${JSON.stringify(raw.schema)})`);
  if (!Array.isArray(raw.points) || raw.points.some((p) => !Array.isArray(p.requests)))
    throw new Error(`${path}: every point needs its 'requests' records`);
  return resummarize(raw, sla);
}

/** A label as a file-name part. */
export const fileSafe = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, "_");

const f = (x: number, digits: number) => (Number.isFinite(x) ? x.toFixed(digits) : "-");

/** The summary table: a header row, then one row per (label, clients). */
export function tableRows(results: readonly BenchResult[]): string[][] {
  const rates = results[0]?.sla.genTokensPerS ?? DEFAULT_SLA.genTokensPerS;
  const header = ["label", "clients", "reqs", "failed", "req/s", "mean lat s", "mean TTFT s", "out tok/s", "tok lat p50/p90/p95 ms"];
  for (const r of rates) header.push(`eff req/s @${r}tok/s`);
  const rows = [header];
  for (const res of results) {
    for (const { summary: s } of res.points) {
      const t = s.tokenLatencyMs;
      const row = [res.label, String(s.clients), String(s.requests), String(s.failed), f(s.throughputRps, 3), f(s.meanLatencyS, 3), f(s.meanTtftS, 3), f(s.outputTokensPerS, 1), `${f(t.p50, 1)} / ${f(t.p90, 1)} / ${f(t.p95, 1)}`];
      for (const rate of rates) {
        const e = s.effective.find((x) => x.genTokensPerS === rate);
        row.push(e ? `${f(e.effectiveRps, 3)} (${Math.round(e.metShare * 100)}%)` : "-");
      }
      rows.push(row);
    }
  }
  return rows;
}

/** Rows as an aligned plain-text table. */
export function renderText(rows: readonly string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const line = (r: readonly string[]) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join("  ");
  return [line(rows[0]!), widths.map((w) => "-".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

/** Rows as a Markdown table. */
export function renderMarkdown(rows: readonly string[][]): string {
  const line = (r: readonly string[]) => `| ${r.join(" | ")} |`;
  return [line(rows[0]!), `|${rows[0]!.map((_, c) => (c < 2 ? " --- " : " ---: ")).join("|")}|`, ...rows.slice(1).map(line)].join("\n");
}
