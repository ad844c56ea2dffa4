/**
 * `bun run bench -- <suite> [options]`: FastGen's benchmarks. Each prints a table and writes
 * JSON (with the command that produced it) under bench/results/.
 *   cpu         CPU backend prefill/decode tokens/s (bench/cpuThroughput.ts)
 *   scheduler   scheduler plan + batch-building cost per step (bench/scheduler.ts)
 */
const [suite = "cpu", ...rest] = process.argv.slice(2);
const suites: Record<string, () => Promise<{ main: (argv: string[]) => Promise<void> }>> = {
  cpu: () => import("./cpuThroughput"),
  scheduler: () => import("./scheduler"),
};
const load = suites[suite];
if (!load) {
  console.error(`bench: unknown suite "${suite}" (one of: ${Object.keys(suites).join(", ")})`);
  process.exit(2);
}
await (await load()).main(rest);
