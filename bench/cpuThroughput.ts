/**
 * CPU backend throughput on a model (default: the embedded demo model): prefill tokens/s at a
 * few token budgets and decode tokens/s at a few batch sizes, through the whole engine
 * (scheduler + batch building + fg_step). Prints a table, writes bench/results/cpu-<model>.json.
 *
 *   bun run bench -- cpu [--model DIR] [--threads N]
 */
import { cpus } from "node:os";
import { basename, join } from "node:path";
import { parseArgs } from "node:util";
import { EngineCore } from "../src/engine/engineCore";
import { defaultModelDir } from "../src/model/defaultModel";

interface Row { phase: string; batch: string; tokens: number; ms: number; tokPerS: number }

function promptOf(len: number, salt: number): number[] {
  return Array.from({ length: len }, (_, i) => 10 + ((i * 31 + salt * 17) % 1500));
}

async function prefill(modelDir: string, budget: number, threads: number): Promise<Row> {
  const core = await EngineCore.load(modelDir, { maxBatchTokens: budget, maxSeqs: 256, kvBlocks: 1024, threads });
  const len = 256, n = Math.max(2, Math.ceil((4 * budget) / len));
  for (let i = 0; i < n; i++) core.addRequest(`p${i}`, promptOf(len, i), { maxTokens: 1, temperature: 0, ignoreEos: true });
  core.step(); // warm-up pass (first-touch of KV pages, thread pool spin-up)
  const t0 = performance.now();
  let steps = 0;
  while (core.hasWork()) (core.step(), steps++);
  const ms = performance.now() - t0;
  const tokens = n * len - budget;
  core.destroy();
  return { phase: "prefill", batch: `budget ${budget}`, tokens, ms, tokPerS: (tokens / ms) * 1000 };
}

async function decode(modelDir: string, seqs: number, threads: number): Promise<Row> {
  const steps = 48;
  const core = await EngineCore.load(modelDir, { maxBatchTokens: 2048, maxSeqs: 256, kvBlocks: 1024, threads });
  for (let i = 0; i < seqs; i++) core.addRequest(`d${i}`, promptOf(32, i), { maxTokens: steps + 4, temperature: 0, ignoreEos: true });
  core.step(); // all prompts in one pass
  core.step(); // warm-up decode
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) core.step();
  const ms = performance.now() - t0;
  core.destroy();
  return { phase: "decode", batch: `${seqs} seqs`, tokens: seqs * steps, ms, tokPerS: ((seqs * steps) / ms) * 1000 };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { model: { type: "string" }, threads: { type: "string" } } });
  const modelDir = values.model ?? defaultModelDir();
  const threads = Number(values.threads ?? 0);
  const rows: Row[] = [];
  for (const b of [64, 256, 512]) rows.push(await prefill(modelDir, b, threads));
  for (const s of [1, 8, 32]) rows.push(await decode(modelDir, s, threads));
  console.log(`\nCPU backend, model ${basename(modelDir)}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"})`);
  console.table(rows.map((r) => ({ phase: r.phase, batch: r.batch, tokens: r.tokens, ms: r.ms.toFixed(1), "tokens/s": r.tokPerS.toFixed(0) })));
  const out = {
    command: `bun run bench -- cpu${values.model ? ` --model ${values.model}` : ""}${values.threads ? ` --threads ${threads}` : ""}`,
    date: new Date().toISOString(), model: basename(modelDir), cores: cpus().length, cpu: cpus()[0]?.model, rows,
  };
  const file = join(import.meta.dir, "results", `cpu-${basename(modelDir)}.json`);
  await Bun.write(file, JSON.stringify(out, null, 2) + "\n");
  console.log(`wrote ${file}`);
}
