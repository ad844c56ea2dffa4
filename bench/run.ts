/**
 * `bun run bench -- <suite> [options]`: FastGen's benchmarks. Each prints a table and writes
 * JSON (with the command that produced it) under bench/results/.
 *   cpu         CPU backend prefill/decode tokens/s (bench/cpuThroughput.ts)
 *   scheduler   scheduler plan + batch-building cost per step (bench/scheduler.ts)
 */
const [suite = "cpu", ...rest] = process.argv.slice(2);
const suites: Record<string, string> = { cpu: "./cpuThroughput.ts", scheduler: "./scheduler.ts" };
const file = suites[suite];
if (!file) {
  console.error(`bench: unknown suite "${suite}" (one of: ${Object.keys(suites).join(", ")})`);
  process.exit(2);
}
// Suites read their own flags from process.argv (scripts) or take them through main(argv).
process.argv = [process.argv[0]!, file, ...rest];
const mod = await import(file);
if (typeof mod.main === "function") await mod.main(rest);
