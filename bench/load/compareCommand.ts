/**
 * `bun run bench -- compare A.json B.json ... [--out PREFIX]`: merges result files into one
 * figure (one curve per label), a Markdown table and a JSON of the summaries.
 * `bun run bench -- report FILE.json`: recomputes one result's summaries from its records (e.g.
 * a file the transformers baseline wrote), writes them back with its SVG, prints the table.
 */
import { basename, dirname, join } from "node:path";
import { parseArgs } from "node:util";
import { BenchUsageError, SLA_FLAG_HELP, SLA_FLAG_SPEC, hasSlaFlags, slaFromFlags } from "./flags";
import { writeCompareReport, writeRunReport } from "./report";
import type { BenchResult } from "./results";
import { fileSafe, readResult, renderText, tableRows } from "./results";

export const COMPARE_HELP = `Usage: bun run bench -- compare FILE.json FILE.json ... [--out PREFIX]
       bun run bench -- report FILE.json

compare  one figure with a curve per label (labels must differ), PREFIX.svg/.json/.md
         (default PREFIX: beside the first file, <suite>-compare)
report   fills in FILE's summaries from its records and writes FILE.svg beside it
--note T a paragraph for the Markdown table's page (repeatable): machine, caveats
--quiet  print no table

${SLA_FLAG_HELP}
  (default: each file's own SLA)`;

const OPTIONS = { out: { type: "string" }, note: { type: "string", multiple: true }, quiet: { type: "boolean" }, help: { type: "boolean", short: "h" }, ...SLA_FLAG_SPEC } as const;

function load(files: string[], v: Record<string, unknown>): BenchResult[] {
  if (files.length === 0) throw new BenchUsageError("give at least one result file (see --help)");
  const sla = hasSlaFlags(v) ? slaFromFlags(v as never) : undefined;
  return files.map((f) => {
    try {
      return readResult(f, sla);
    } catch (e) {
      throw new BenchUsageError(`${f}: ${(e as Error).message}`);
    }
  });
}

/** `compare`: resolves to the written JSON path (undefined for --help). */
export async function main(argv: string[]): Promise<string | undefined> {
  const { values: v, positionals: files } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  if (v.help) {
    console.log(COMPARE_HELP);
    return undefined;
  }
  const results = load(files, v);
  const labels = results.map((r) => r.label);
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup !== undefined) throw new BenchUsageError(`two files have the label "${dup}": curves need distinct labels`);
  const prefix = v.out ?? join(dirname(files[0]!), `${fileSafe(results[0]!.suite)}-compare`);
  // The notes are printed on the page itself; the command shows the rest.
  const shown = argv.filter((a, i) => a !== "--note" && argv[i - 1] !== "--note" && !a.startsWith("--note="));
  const command = `bun run bench -- compare ${shown.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(" ")}`;
  const out = writeCompareReport(prefix, results, files, command, v.note ?? []);
  if (!v.quiet) console.log(`\n${renderText(tableRows(results))}\nwrote ${out.json}\nwrote ${out.svg}\nwrote ${out.md}`);
  return out.json;
}

/** `report`: resolves to the rewritten JSON path (undefined for --help). */
export async function report(argv: string[]): Promise<string | undefined> {
  const { values: v, positionals: files } = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
  if (v.help) {
    console.log(COMPARE_HELP);
    return undefined;
  }
  if (files.length !== 1) throw new BenchUsageError("report takes one result file");
  const [result] = load(files, v);
  const prefix = join(dirname(files[0]!), basename(files[0]!).replace(/\.json$/, ""));
  const out = writeRunReport(prefix, result!);
  if (!v.quiet) console.log(`\n${result!.label}, suite ${result!.suite}\n${renderText(tableRows([result!]))}\nwrote ${out.json}\nwrote ${out.svg}`);
  return out.json;
}
