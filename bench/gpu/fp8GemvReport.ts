/**
 * One compact table of an FP8 GEMV A/B run (bench/device/run-fp8ab.sh): the kernel timings of
 * every knob setting (bench/gpu/fp8Gemv.ts JSONs, kernel-*.json in <dir>) side by side per
 * Llama-7B GEMM and token count (us and % of the copy bandwidth), then the FP8 engine's decode
 * (bench/gpu/fp8.ts --quick lines in <dir>/decode.log). Writes <dir>/fp8ab.md and prints it.
 *
 *   bun bench/gpu/fp8GemvReport.ts <dir>
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Fp8GemvRow } from "./fp8Gemv";

const dir = process.argv[2] ?? "/tmp/fp8ab";
const runs = readdirSync(dir).filter((f) => /^kernel-.*\.json$/.test(f)).sort()
  .map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as { label: string; gpu?: string; copy_bw_GBps: number; rows: Fp8GemvRow[] });
const rows = runs.flatMap((r) => r.rows);
const labels = [...new Set(rows.map((r) => r.label))];
const keys = [...new Set(rows.map((r) => `${r.shape}|${r.m}`))];
const cell = (r?: Fp8GemvRow) => (r ? `${r.us.toFixed(1)} (${Number.isFinite(r.pct) ? r.pct.toFixed(0) : "-"}%, ${r.path})` : "");
const md = [
  `# FP8 GEMV A/B (issue #18 / #24): ${runs[0]?.gpu ?? "?"}, copy ${runs[0]?.copy_bw_GBps ?? "?"} GB/s, ${new Date().toISOString()}`,
  ``,
  `Kernel: us (% of copy bandwidth, path); median of 20 launches after an L2 flush.`,
  ``,
  `| GEMM | M | ${labels.join(" | ")} |`,
  `| --- | --- | ${labels.map(() => "---").join(" | ")} |`,
  ...keys.map((key) => {
    const [shape, m] = key.split("|");
    return `| ${shape} | ${m} | ${labels.map((l) => cell(rows.find((r) => r.label === l && `${r.shape}|${r.m}` === key))).join(" | ")} |`;
  }),
];
const log = join(dir, "decode.log");
if (existsSync(log)) {
  const lines = readFileSync(log, "utf8").split("\n").filter((l) => /fp8 decode b=1/.test(l));
  md.push(``, `Engine decode (bench/gpu/fp8.ts --quick, FP8 Llama-7B shape, ctx 128):`, ``, ...lines.map((l) => `- ${l.trim()}`));
}
writeFileSync(join(dir, "fp8ab.md"), md.join("\n") + "\n");
console.log(md.join("\n"));
