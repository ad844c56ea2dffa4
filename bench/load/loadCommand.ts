/**
 * `bun run bench -- --server URL [options]`: the load generator. Runs a suite's client sweep
 * against an OpenAI-compatible server (or a `fastgen serve` it starts itself with --serve),
 * prints a summary table, and writes <out-dir>/<suite>-<label>.json + .svg.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { BenchUsageError, SLA_FLAG_HELP, SLA_FLAG_SPEC, SUITE_FLAG_SPEC, numberFlag, slaFromFlags, suiteFromFlags } from "./flags";
import { streamProgress, silentProgress } from "./progress";
import { writeRunReport } from "./report";
import { fileSafe, renderText, tableRows } from "./results";
import { normalizeBaseUrl } from "./serverApi";
import type { SpawnedServer } from "./spawnServer";
import { spawnFastgen, splitFlags } from "./spawnServer";
import { runSweep } from "./sweep";
import { SUITES } from "./workload";

export const LOAD_HELP = `Usage: bun run bench -- --server URL [options]
       bun run bench -- --serve [--serve-model DIR] [--policy P] [--serve-flags "..."] [options]

Closed-loop load on an OpenAI-compatible server: N clients send streamed /v1/completions back to
back (token-id prompts of exact length, ignore_eos + max_tokens), for each N of the sweep.

Target:
  --server URL         the server (http://host:port, with or without /v1)
  --serve              start \`fastgen serve\` on 127.0.0.1 (own process) and load it instead
  --serve-model DIR    model of --serve (default: the embedded demo model)
  --policy P           scheduling policy of --serve (splitfuse | prefill-first | orca)
  --serve-flags "..."  more \`fastgen serve\` flags for --serve (e.g. "--max-batch-tokens 768")
  --model NAME         model name to send (default: the first of /v1/models)
  --api-key KEY        bearer key (default: $FASTGEN_API_KEY)
  --tokenizer DIR      local tokenizer.json dir (default: the server's /tokenize)
  --prompt-mode M      ids | text (default: ids, text when the server refuses ids)
  --no-logprobs        count tokens per SSE event instead of asking logprobs: 0
  --response-format J  OpenAI response_format for every request, as JSON text or @file (e.g. a
                       json_schema: structured outputs under load; the schema should not let a
                       reply end before max_tokens)

Workload:
  --suite NAME         ${Object.keys(SUITES).join(" | ")} (default fastgen-2600-60)
  --clients 1,2,4      client counts (default: the suite's; full sweep 1,2,4,8,12,...,32)
  --requests N         requests per point (default: 4 x clients + 32)
  --mean-prompt N      mean prompt tokens (30% deviation; with no --suite, names it p<N>-g<M>)
  --mean-gen N         mean generated tokens
  --max-prompt N       prompt cap (default 4000)
  --prefix-tokens N    shared prefix / system prompt tokens (chat-multiturn, shared-prefix)
  --sessions           chat-multiturn: each client sends one conversation's turns in order, each
                       after the last reply (default: clients take requests in order, so turns
                       of one conversation may run at once)
  --seed N             workload seed (default 1)
  --warmup N           unrecorded requests at the mean lengths before the sweep (default 2)

${SLA_FLAG_HELP}

Output:
  --label NAME         curve name (default: the server's owned_by, e.g. fastgen)
  --out-dir DIR        where <suite>-<label>.json/.svg go (default bench/results)
  --quiet              no progress on stderr`;

const OPTIONS = {
  server: { type: "string" },
  serve: { type: "boolean" },
  "serve-model": { type: "string" },
  policy: { type: "string" },
  "serve-flags": { type: "string" },
  model: { type: "string" },
  "api-key": { type: "string" },
  tokenizer: { type: "string" },
  "prompt-mode": { type: "string" },
  "no-logprobs": { type: "boolean" },
  "response-format": { type: "string" },
  ...SUITE_FLAG_SPEC,
  warmup: { type: "string" },
  label: { type: "string" },
  "out-dir": { type: "string" },
  quiet: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  ...SLA_FLAG_SPEC,
} as const;

/** --response-format: JSON text, or @path to a file of it. */
function responseFormatOf(flag: string | undefined): unknown {
  if (flag === undefined) return undefined;
  const text = flag.startsWith("@") ? readFileSync(flag.slice(1), "utf8") : flag;
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new BenchUsageError(`--response-format must be JSON (or @file of JSON): ${(e as Error).message}`);
  }
}

/** `--serve-flags "--threads 1"` → `--serve-flags=--threads 1` (parseArgs refuses values that start with a dash). */
function joinServeFlags(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--serve-flags" && i + 1 < argv.length) out.push(`--serve-flags=${argv[++i]}`);
    else out.push(argv[i]!);
  }
  return out;
}

/** Runs the load generator with `argv`; resolves to the written JSON path (undefined for --help). */
export async function main(argv: string[]): Promise<string | undefined> {
  const { values: v } = parseArgs({ args: joinServeFlags(argv), options: OPTIONS, strict: true });
  if (v.help) {
    console.log(LOAD_HELP);
    return undefined;
  }
  if ((v.server === undefined) === !v.serve) throw new BenchUsageError("give either --server URL or --serve (see --help)");
  const promptMode = v["prompt-mode"];
  if (promptMode !== undefined && promptMode !== "ids" && promptMode !== "text") throw new BenchUsageError(`--prompt-mode must be ids or text, got "${promptMode}"`);
  const suite = suiteFromFlags(v);
  const sla = slaFromFlags(v);
  const warmup = v.warmup === "0" ? 0 : numberFlag("warmup", v.warmup);
  const label = v.label ?? (v.serve ? (v.policy ?? "fastgen") : undefined);
  const progress = v.quiet ? silentProgress : streamProgress(label ?? "bench");

  let spawned: SpawnedServer | undefined;
  try {
    if (v.serve) {
      progress.note(`starting fastgen serve${v["serve-model"] ? ` --model ${v["serve-model"]}` : ""}${v.policy ? ` --policy ${v.policy}` : ""} ${v["serve-flags"] ?? ""}`);
      spawned = await spawnFastgen({ modelDir: v["serve-model"], policy: v.policy, flags: splitFlags(v["serve-flags"]) });
    }
    const result = await runSweep({
      target: { baseUrl: normalizeBaseUrl(spawned?.url ?? v.server!), apiKey: v["api-key"] ?? (process.env.FASTGEN_API_KEY || undefined) },
      suite,
      sla,
      progress,
      command: `bun run bench -- ${argv.map((a) => (/[\s"']/.test(a) ? JSON.stringify(a) : a)).join(" ")}`,
      model: v.model,
      label,
      tokenizerDir: v.tokenizer,
      promptMode: promptMode as "ids" | "text" | undefined,
      logprobs: v["no-logprobs"] ? false : undefined,
      responseFormat: responseFormatOf(v["response-format"]),
      warmupRequests: warmup,
    });
    if (spawned) result.system.note = `fastgen serve${v.policy ? ` --policy ${v.policy}` : ""} ${v["serve-flags"] ?? ""}`.trim();
    const prefix = join(v["out-dir"] ?? join(import.meta.dir, "..", "results"), `${fileSafe(suite.name)}-${fileSafe(result.label)}`);
    const files = writeRunReport(prefix, result);
    if (!v.quiet) {
      console.log(`\n${result.label} on ${result.system.model}, suite ${suite.name}\n${renderText(tableRows([result]))}`);
      console.log(`wrote ${files.json}\nwrote ${files.svg}`);
    }
    return files.json;
  } finally {
    await spawned?.stop();
  }
}
