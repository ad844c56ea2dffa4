/**
 * `bun run bench -- workload --tokenizer DIR --out FILE [--suite ...]`: writes the exact requests
 * a sweep sends (prompt token ids and generation lengths) for tools that do not speak HTTP, such
 * as the transformers static-batching baseline (bench/device/hf_static_baseline.py). The list is
 * the longest point's; a point of n requests sends its first n.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { CORPUS_TEXT, cycleIds } from "./corpus";
import { BenchUsageError, numberFlag, SUITE_FLAG_SPEC, suiteFromFlags } from "./flags";
import { localTokenizer } from "./serverApi";
import { SUITES, makeRequests, pointWorkload, requestsPerPoint } from "./workload";

export const WORKLOAD_HELP = `Usage: bun run bench -- workload --tokenizer DIR --out FILE [--suite NAME] [--clients 1,2,4]
         [--requests N] [--mean-prompt N] [--mean-gen N] [--max-prompt N] [--seed N] [--max-model-len N]

Writes { suite, workload, clients, points: [{ clients, requests, point_requests: [{ index,
prompt_ids, gen_tokens }] }], requests (the first point's) } with the same requests
\`bun run bench -- --server\` sends at each point.
--max-model-len defaults to DIR/config.json max_position_embeddings. Suites: ${Object.keys(SUITES).join(", ")}.`;

const OPTIONS = {
  tokenizer: { type: "string" },
  out: { type: "string" },
  ...SUITE_FLAG_SPEC,
  "max-model-len": { type: "string" },
  help: { type: "boolean", short: "h" },
} as const;

function contextOf(dir: string): number | undefined {
  const p = join(dir, "config.json");
  if (!existsSync(p)) return undefined;
  const n = (JSON.parse(readFileSync(p, "utf8")) as { max_position_embeddings?: unknown }).max_position_embeddings;
  return typeof n === "number" ? n : undefined;
}

/** Writes the workload file; resolves to its path (undefined for --help). */
export async function main(argv: string[]): Promise<string | undefined> {
  const { values: v } = parseArgs({ args: argv, options: OPTIONS, strict: true });
  if (v.help) {
    console.log(WORKLOAD_HELP);
    return undefined;
  }
  if (v.tokenizer === undefined || v.out === undefined) throw new BenchUsageError("workload needs --tokenizer DIR and --out FILE");
  const suite = suiteFromFlags(v);
  const maxModelLen = numberFlag("max-model-len", v["max-model-len"]) ?? contextOf(v.tokenizer);
  const tok = localTokenizer(v.tokenizer);
  const pool = await tok.encode(CORPUS_TEXT);
  // Each point's own requests, as the sweep draws them (pointWorkload); `requests` repeats the first's.
  const points = suite.clients.map((c) => {
    const n = requestsPerPoint(c, suite.requests);
    const list = makeRequests(pointWorkload(suite.workload, c), n, pool.length, maxModelLen).map((s) => ({
      index: s.index,
      prompt_ids: cycleIds(pool, s.poolOffset, s.promptTokens),
      gen_tokens: s.genTokens,
    }));
    return { clients: c, requests: n, point_requests: list };
  });
  const requests = points[0]!.point_requests;
  const out = {
    schema: "fastgen-bench-workload/1",
    suite: suite.name,
    workload: { ...suite.workload, requestsPerPoint: suite.requests !== undefined ? String(suite.requests) : "4 x clients + 32" },
    maxModelLen,
    tokenizer: v.tokenizer,
    clients: suite.clients,
    points,
    requests,
  };
  writeFileSync(v.out, JSON.stringify(out) + "\n");
  console.log(`wrote ${v.out}: points ${points.map((p) => `${p.clients}x${p.requests}`).join(" ")}`);
  return v.out;
}
