/**
 * Writing reports: one run's result (JSON with every record + SVG figure), or a comparison of
 * several result files (JSON of the summaries, SVG with one curve per label, and a Markdown
 * table with the command that made it).
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { benchFigure } from "./figure";
import type { BenchResult } from "./results";
import { renderMarkdown, tableRows } from "./results";

/** Paths a report was written to. */
export interface ReportFiles {
  json: string;
  svg: string;
  md?: string;
}

function figureTitle(results: readonly BenchResult[]): string {
  const suites = [...new Set(results.map((r) => r.suite))].join(", ");
  const models = [...new Set(results.map((r) => r.system.model).filter((m) => m !== undefined))].join(", ");
  return `FastGen benchmark: ${suites}${models ? ` on ${models}` : ""}`;
}

/** Writes `<prefix>.json` (the whole result) and `<prefix>.svg`. */
export function writeRunReport(prefix: string, result: BenchResult): ReportFiles {
  mkdirSync(dirname(prefix), { recursive: true });
  const files = { json: `${prefix}.json`, svg: `${prefix}.svg` };
  writeFileSync(files.json, JSON.stringify(result) + "\n");
  writeFileSync(files.svg, benchFigure([result], figureTitle([result])));
  return files;
}

/** Writes `<prefix>.json` (summaries of every input), `<prefix>.svg` and `<prefix>.md`. */
export function writeCompareReport(
  prefix: string,
  results: readonly BenchResult[],
  inputs: readonly string[],
  command: string,
  notes: readonly string[] = [],
): ReportFiles {
  mkdirSync(dirname(prefix), { recursive: true });
  const files = { json: `${prefix}.json`, svg: `${prefix}.svg`, md: `${prefix}.md` };
  const merged = {
    schema: "fastgen-bench-compare/1",
    command,
    date: new Date().toISOString(),
    notes,
    inputs,
    results: results.map((r) => ({
      label: r.label,
      suite: r.suite,
      system: r.system,
      client: r.client,
      workload: r.workload,
      sla: r.sla,
      command: r.command,
      points: r.points.map((p) => p.summary),
    })),
  };
  writeFileSync(files.json, JSON.stringify(merged, null, 1) + "\n");
  const title = figureTitle(results);
  writeFileSync(files.svg, benchFigure(results, title));
  const md = [
    `# ${title}`,
    "",
    `Made by \`${command}\` on ${merged.date.slice(0, 10)} from:`,
    "",
    ...results.map((r, i) => `- \`${inputs[i]}\` (${r.label}): \`${r.command}\``),
    "",
    ...notes.flatMap((n) => [n, ""]),
    `Effective throughput cells: requests/s meeting the SLA (share of requests that met it). SLA: first token within prompt_tokens / ${results[0]?.sla.promptTokensPerS} s and EMA (span ${results[0]?.sla.emaSpan}) token rate above the rate.`,
    "",
    renderMarkdown(tableRows(results)),
    "",
  ].join("\n");
  writeFileSync(files.md, md);
  return files;
}
