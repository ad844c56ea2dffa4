/**
 * The decode chain's launch knobs A/B (issue #24 item 5): decode at batch 1, 2, 4, 8 (ctx 128) on
 * the Llama-2-7B shape (random bf16 weights, bench/gpu/randomModel.ts) under this process's
 * FASTGEN_PDL (programmatic dependent launch), FASTGEN_NORM_FOLD (the RMSNorm folded into the
 * qkv and gate_up GEMVs) and FASTGEN_PREFETCH_O (MiB of each layer's o weights pulled into L2
 * during RoPE and attention), against the roofline of the bytes a step must read: every weight matrix
 * once plus each sequence's K/V ((ctx + 1) positions x 32 layers x K and V x 4096 x bf16), over
 * the copy bandwidth ceilings.py measured in the same call. Knobs are read once a process, so
 * bench/gpu/run_pdl.sh runs one process per setting and round, alternating, then --report.
 *
 *   bun bench/gpu/pdlFold.ts <ceilings.json> <out-dir>   writes chain-<label>-r<ROUND>.json
 *   bun bench/gpu/pdlFold.ts --report <out-dir>          one markdown table of every run there
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeEngine } from "../../src/native";
import { batchOf, loadRandom, shapeSpec, timeSteps } from "./randomModel";

const BATCHES = [1, 2, 4, 8], CTX = 128;
interface Point { batch: number; ms: number; roofline_ms: number; pct: number; tok_s: number }
interface Run { label: string; pdl: string; fold: string; prefetch: string; round: number; gpu: string; copy_bw_GBps: number; date: string; decode: Point[] }

const labelOf = (pdl: string, fold: string, prefetch: string) => `pdl-${pdl}-fold-${fold}-prefetch-${prefetch}`;
const nameOf = (r: Run) =>
  `PDL ${r.pdl === "0" ? "off" : "on"}, fold ${r.fold === "0" ? "off" : "on"}${r.prefetch === "0" ? "" : `, o prefetch ${r.prefetch} MiB`}`;

function measure(ceilPath: string, outDir: string): void {
  const ceil = existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
  const pdl = process.env.FASTGEN_PDL ?? "1", fold = process.env.FASTGEN_NORM_FOLD ?? "8", prefetch = process.env.FASTGEN_PREFETCH_O ?? "0";
  const round = Number(process.env.ROUND ?? 1);
  const spec = shapeSpec("7b");
  const engine = NativeEngine.create(spec, "cuda");
  const weightBytes = loadRandom(engine, spec);
  const info = engine.finalize({});
  const bw = (ceil.copy_bw_GBps ?? NaN) * 1e9;
  const kvPerPos = spec.num_layers * 2 * spec.num_kv_heads! * spec.head_dim! * 2;
  const decode: Point[] = BATCHES.map((B) => {
    const ms = timeSteps(engine, batchOf(spec, B, 1, CTX, info.blockSize), 40, 4);
    const roofline = ((weightBytes + B * (CTX + 1) * kvPerPos) / bw) * 1e3;
    console.log(`[${labelOf(pdl, fold, prefetch)} r${round}] decode batch ${B} ctx ${CTX}: ${ms.toFixed(3)} ms/step; roofline ${roofline.toFixed(3)} ms -> ${((100 * roofline) / ms).toFixed(1)}%`);
    return { batch: B, ms, roofline_ms: roofline, pct: (100 * roofline) / ms, tok_s: (B / ms) * 1e3 };
  });
  engine.destroy();
  const run: Run = { label: labelOf(pdl, fold, prefetch), pdl, fold, prefetch, round, gpu: ceil.gpu, copy_bw_GBps: ceil.copy_bw_GBps, date: new Date().toISOString(), decode };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `chain-${run.label}-r${round}.json`), JSON.stringify(run, null, 1));
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

function report(dir: string): void {
  const runs = readdirSync(dir).filter((f) => /^chain-.*\.json$/.test(f)).map((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as Run);
  if (runs.length === 0) throw new Error(`no chain-*.json in ${dir}`);
  const r0 = runs[0]!;
  // One column per setting, in the order the first round ran them (file dates).
  const byLabel = new Map<string, Run[]>();
  for (const r of [...runs].sort((a, b) => a.round - b.round || a.date.localeCompare(b.date)))
    byLabel.set(r.label, [...(byLabel.get(r.label) ?? []), r]);
  const cols = [...byLabel.values()].map((rs) => ({ name: nameOf(rs[0]!), runs: rs }));
  const cell = (rs: Run[], B: number, roofline: number) => {
    if (rs.length === 0) return "-";
    const ms = rs.map((r) => r.decode.find((p) => p.batch === B)!.ms), m = median(ms);
    return `${m.toFixed(3)} (${((100 * roofline) / m).toFixed(1)}%) [${ms.map((x) => x.toFixed(3)).join(" ")}]`;
  };
  const lines = [
    `# Decode on the Llama-2-7B shape, ctx ${CTX}: programmatic dependent launch x the RMSNorm folded into the GEMVs (x o weights prefetched into L2)`,
    ``,
    `GPU ${r0.gpu}; ${r0.date}; copy bandwidth (same call) ${r0.copy_bw_GBps} GB/s. Roofline: (weights + K/V read) / copy bandwidth.`,
    `Each cell: median ms per step over rounds (% of roofline) [every round, in order]; each round one process per setting, settings alternating.`,
    ``,
    `| batch | roofline ms | ${cols.map((c) => c.name).join(" | ")} |`,
    `| --- | --- | ${cols.map(() => "---").join(" | ")} |`,
    ...BATCHES.map((B) => {
      const roofline = r0.decode.find((p) => p.batch === B)!.roofline_ms;
      return `| ${B} | ${roofline.toFixed(3)} | ${cols.map((c) => cell(c.runs, B, roofline)).join(" | ")} |`;
    }),
  ];
  console.log(lines.join("\n"));
}

const args = process.argv.slice(2);
if (args[0] === "--report") report(args[1] ?? "bench/results");
else measure(args[0] ?? "", args[1] ?? "bench/results");
