/**
 * Tensor parallelism and MoE on the CUDA backend, with random bf16 weights of real shapes:
 *
 *   A. --shape 7b|70b [--layers N] --tp 1,2: per TP degree, decode at batch 1 (ms/token against
 *      the roofline weights / (tp x measured copy bandwidth)), decode at batch 32 and 64 (ctx 512),
 *      prefill of 2048 tokens; and greedy parity: 4 prompts x 8 tokens, ids and top-5 logprobs of
 *      every TP degree against the first one (same seeded weights).
 *   B. --mixtral-layers N: a Mixtral-8x7B-shaped model trimmed to N layers on one GPU, the same
 *      figures; --cpu-check-layers M: an M-layer one on CUDA and on the CPU backend, greedy parity.
 *
 *   bun bench/gpu/tp.ts <ceilings.json> <out-dir> [flags]
 * Writes <out-dir>/cuda-tp-<shape>.json/.md and cuda-mixtral.json/.md; prints the tables.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { ModelSpec } from "../../src/native/modelSpec";
import { NativeEngine } from "../../src/native";
import { batchOf, compareGreedy, greedy, loadRandom, shapeSpec, timeSteps } from "./randomModel";

const { values: flags, positionals } = parseArgs({
  args: process.argv.slice(2), allowPositionals: true,
  options: {
    shape: { type: "string", default: "7b" }, layers: { type: "string" }, tp: { type: "string", default: "1,2" },
    "mixtral-layers": { type: "string" }, "cpu-check-layers": { type: "string" }, "skip-tp": { type: "boolean" },
  },
});
const [ceilPath, outDir = "bench/results"] = positionals;
const ceil = ceilPath && existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
const bw = ceil.copy_bw_GBps ? ceil.copy_bw_GBps * 1e9 : NaN;
const command = `bun bench/gpu/tp.ts ${process.argv.slice(2).join(" ")}`;
const date = new Date().toISOString();
mkdirSync(outDir, { recursive: true });
const PROMPTS = Array.from({ length: 4 }, (_, s) => Array.from({ length: 16 }, (_, i) => (s * 4001 + i * 173 + 7) % 32000));

interface Figures {
  tp: number; weight_gib: number; load_s: number; decode_b1_ms: number; roofline_ms: number; pct_of_roofline: number;
  decode_b32_tok_s: number; decode_b64_tok_s: number; prefill_2048_ms: number; prefill_tok_s: number;
}

function measure(spec: ModelSpec, tp: number, backend: "cuda" | "cpu" = "cuda") {
  const t0 = performance.now();
  const e = NativeEngine.create({ ...spec, tensor_parallel: tp }, backend);
  const matBytes = loadRandom(e, spec, 1);
  const info = e.finalize({ numBlocks: 2400 });
  const load_s = (performance.now() - t0) / 1000;
  const bs = info.blockSize;
  const parity = greedy(e, spec, PROMPTS, 8, bs);
  const decode_b1_ms = timeSteps(e, batchOf(spec, 1, 1, 128, bs), 30, 3);
  const b32 = timeSteps(e, batchOf(spec, 32, 1, 512, bs), 10);
  const b64 = timeSteps(e, batchOf(spec, 64, 1, 512, bs), 10);
  const prefill = timeSteps(e, batchOf(spec, 1, 2048, 0, bs), 5, 1);
  e.destroy();
  const roofline_ms = (matBytes / (tp * bw)) * 1e3;
  const f: Figures = {
    tp, weight_gib: info.weightBytes / 2 ** 30, load_s, decode_b1_ms, roofline_ms, pct_of_roofline: (100 * roofline_ms) / decode_b1_ms,
    decode_b32_tok_s: (32 / b32) * 1e3, decode_b64_tok_s: (64 / b64) * 1e3, prefill_2048_ms: prefill, prefill_tok_s: (2048 / prefill) * 1e3,
  };
  console.log(JSON.stringify(f));
  return { f, parity };
}

function table(title: string, rows: Figures[], extra: string[]): string {
  const lines = [`# ${title}`, "", `GPU ${ceil.gpu} (copy bandwidth ${ceil.copy_bw_GBps} GB/s, measured in the same run); ${date}`, "", `\`${command}\``, "",
    "| TP | weights/GPU GiB | decode b=1 ms/token | roofline ms | % of roofline | decode b=32 tok/s | decode b=64 tok/s | prefill 2048 ms | prefill tok/s |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) => `| ${r.tp} | ${(r.weight_gib / r.tp).toFixed(2)} | ${r.decode_b1_ms.toFixed(3)} | ${r.roofline_ms.toFixed(3)} | ${r.pct_of_roofline.toFixed(1)} | ${r.decode_b32_tok_s.toFixed(0)} | ${r.decode_b64_tok_s.toFixed(0)} | ${r.prefill_2048_ms.toFixed(1)} | ${r.prefill_tok_s.toFixed(0)} |`),
    "", ...extra];
  return lines.join("\n") + "\n";
}

if (!flags["skip-tp"]) {
  const spec = shapeSpec(flags.shape as "7b" | "70b", flags.layers ? Number(flags.layers) : undefined);
  const tps = flags.tp!.split(",").map(Number);
  const runs = tps.map((tp) => measure(spec, tp));
  const parity = runs.slice(1).map((r) => ({ tp: r.f.tp, against_tp: runs[0]!.f.tp, ...compareGreedy(runs[0]!.parity, r.parity) }));
  const name = `cuda-tp-${flags.shape}${flags.layers ? `-${flags.layers}l` : ""}`;
  const result = { gpu: ceil.gpu, date, command, spec, ceilings: ceil, figures: runs.map((r) => r.f), parity };
  writeFileSync(join(outDir, `${name}.json`), JSON.stringify(result, null, 1));
  const md = table(`Tensor parallelism: ${flags.shape} shape, ${spec.num_layers} layers, random bf16 weights`, runs.map((r) => r.f),
    parity.map((p) => `Greedy parity TP=${p.tp} vs TP=${p.against_tp}: ${p.identical}/${p.of} prompts identical over 8 tokens; ` +
      `first divergence at ${JSON.stringify(p.first_divergence)}; worst top-5 logprob diff before it ${p.worst_top5_logprob_diff.toExponential(2)}`));
  writeFileSync(join(outDir, `${name}.md`), md);
  console.log(md);
}

if (flags["mixtral-layers"]) {
  const spec = shapeSpec("mixtral", Number(flags["mixtral-layers"]));
  const { f } = measure(spec, 1);
  const extra: string[] = ["Roofline counts the router's top-2 share of the expert weights (2 of 8 per layer)."];
  let cpuCheck: unknown = null;
  if (flags["cpu-check-layers"]) {
    const small = shapeSpec("mixtral", Number(flags["cpu-check-layers"]));
    const run = (backend: "cuda" | "cpu") => {
      const e = NativeEngine.create(small, backend);
      loadRandom(e, small, 2);
      const info = e.finalize({ numBlocks: 64, blockSize: 16 });
      const g = greedy(e, small, PROMPTS.map((p) => p.slice(0, 8)), 4, info.blockSize);
      e.destroy();
      return g;
    };
    cpuCheck = { layers: small.num_layers, ...compareGreedy(run("cpu"), run("cuda")) };
    extra.push(`CUDA vs CPU backend (${small.num_layers} layers, same weights): ${JSON.stringify(cpuCheck)}`);
  }
  writeFileSync(join(outDir, "cuda-mixtral.json"), JSON.stringify({ gpu: ceil.gpu, date, command, spec, figures: f, cpu_check: cpuCheck }, null, 1));
  const md = table(`Mixtral-8x7B shape trimmed to ${spec.num_layers} layers, random bf16 weights, one GPU`, [f], extra);
  writeFileSync(join(outDir, "cuda-mixtral.md"), md);
  console.log(md);
}
