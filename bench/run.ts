/**
 * `bun run bench -- <suite> [options]`: FastGen's benchmarks. Each prints a table and writes
 * JSON (with the command that produced it) under bench/results/.
 *   cpu         CPU backend prefill/decode tokens/s (bench/cpuThroughput.ts)
 *   grammar     structured-output overhead: tokens/s with and without a JSON schema, compile time (bench/grammarOverhead.ts)
 *   bounded     length-bounded JSON strings: XGrammar's own grammar against the rewritten one (bench/boundedStrings.ts)
 *   scheduler   scheduler plan + batch-building cost per step (bench/scheduler.ts)
 *   --server URL | --serve ...
 *               load generator on an OpenAI-compatible server: throughput-latency, effective
 *               throughput, per-token latency (bench/load/loadCommand.ts; --help lists flags)
 *   compare     merge load-generator results into one figure (bench/load/compareCommand.ts)
 *   report      recompute one result's summaries and figure from its records
 *   workload    write the load generator's requests for non-HTTP tools (bench/load/workloadCommand.ts)
 *   soak        a long mixed workload on `fastgen serve`: RSS and p99 sampled, PASS/FAIL (bench/soak.ts)
 */
const argv = process.argv.slice(2);
// A flag first (--server, --serve, --help) means the load generator.
const isLoad = argv[0]?.startsWith("-") === true;
const suite = isLoad ? "load" : (argv[0] ?? "cpu");
const rest = isLoad ? argv : argv.slice(1);
const suites: Record<string, { file: string; entry?: string }> = {
  cpu: { file: "./cpuThroughput.ts" },
  scheduler: { file: "./scheduler.ts" },
  grammar: { file: "./grammarOverhead.ts" },
  bounded: { file: "./boundedStrings.ts" },
  load: { file: "./load/loadCommand.ts" },
  compare: { file: "./load/compareCommand.ts" },
  report: { file: "./load/compareCommand.ts", entry: "report" },
  workload: { file: "./load/workloadCommand.ts" },
  soak: { file: "./soak.ts" },
  speculative: { file: "./speculative.ts" },
};
const target = suites[suite];
if (!target) {
  console.error(`bench: unknown suite "${suite}" (one of: ${Object.keys(suites).join(", ")}, or --server URL)`);
  process.exit(2);
}
export {}; // a module: top-level await below

// Suites read their own flags from process.argv (scripts) or take them through main(argv).
process.argv = [process.argv[0]!, target.file, ...rest];
try {
  const mod = await import(target.file);
  const entry = mod[target.entry ?? "main"];
  if (typeof entry === "function") await entry(rest);
} catch (e) {
  const err = e as Error & { code?: string };
  // Usage errors (ours, or node:util parseArgs') get a one-line message and status 2.
  if (err.name === "BenchUsageError" || err.code?.startsWith("ERR_PARSE_ARGS")) {
    console.error(`bench ${suite}: ${err.message}`);
    process.exit(2);
  }
  console.error(`bench ${suite}: ${err.stack ?? err.message}`);
  process.exit(1);
}
