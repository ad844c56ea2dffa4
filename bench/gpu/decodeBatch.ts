/**
 * Small-batch decode on the Llama-2-7B shape (random bf16 weights, bench/gpu/randomModel.ts):
 * ms per step at batch 1, 2, 4, 8, 16 (ctx 128 and 512) against the roofline of the bytes a step
 * must read: every weight matrix once plus each sequence's K/V ((ctx + 1) positions x 32 layers x
 * K and V x 4096 x bf16), over the copy bandwidth ceilings.py measured in the same run. Also one
 * sequence taking 1-16 tokens a pass (speculative verification's shape).
 *
 *   bun bench/gpu/decodeBatch.ts <ceilings.json> <out-dir>     writes decode-batch-<label>.json
 *   bun bench/gpu/decodeBatch.ts --report <a.json> <b.json>... one markdown table of the runs
 * The label names the GEMV knobs of the environment, so run_gemv.sh runs it once per setting in
 * one device call (the knobs are read once per process) and reports them side by side.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeEngine } from "../../src/native";
import { batchOf, loadRandom, shapeSpec, timeSteps } from "./randomModel";

interface Point { batch: number; ctx: number; ms: number; roofline_ms: number; pct: number; tok_s: number }
interface Run { label: string; gpu: string; copy_bw_GBps: number; date: string; decode: Point[]; tokens_per_pass: { tokens: number; ms: number }[] }

function report(files: string[]): void {
  const runs = files.map((f) => JSON.parse(readFileSync(f, "utf8")) as Run);
  const r0 = runs[0]!;
  const head = runs.map((r) => `${r.label} ms (% roofline)`);
  const lines = [
    `# Decode at batch 1-16, Llama-2-7B shape: ${runs.map((r) => r.label).join(" vs ")}`,
    ``,
    `GPU ${r0.gpu}; ${r0.date}; copy bandwidth (same run) ${r0.copy_bw_GBps} GB/s. Roofline: (weights + K/V read) / copy bandwidth.`,
    ``,
    `| batch | ctx | roofline ms | ${head.join(" | ")} |`,
    `| --- | --- | --- | ${head.map(() => "---").join(" | ")} |`,
    ...r0.decode.map((p, i) => `| ${p.batch} | ${p.ctx} | ${p.roofline_ms.toFixed(3)} | ${runs.map((r) => `${r.decode[i]!.ms.toFixed(3)} (${r.decode[i]!.pct.toFixed(1)}%)`).join(" | ")} |`),
    ``,
    `One sequence, T tokens a pass at ctx 512 (ms):`,
    ``,
    `| tokens | ${runs.map((r) => r.label).join(" | ")} |`,
    `| --- | ${runs.map(() => "---").join(" | ")} |`,
    ...r0.tokens_per_pass.map((p, i) => `| ${p.tokens} | ${runs.map((r) => r.tokens_per_pass[i]!.ms.toFixed(3)).join(" | ")} |`),
  ];
  console.log(lines.join("\n"));
}

function measure(ceilPath: string, outDir: string): void {
  const ceil = existsSync(ceilPath) ? JSON.parse(readFileSync(ceilPath, "utf8")) : {};
  const env = process.env;
  const label = env.FASTGEN_GEMV === "0" ? "cublaslt-only"
    : [env.FASTGEN_GEMV_MAX_M ? `max-m-${env.FASTGEN_GEMV_MAX_M}` : "", env.FASTGEN_GEMV_ROWS ? `rows-${env.FASTGEN_GEMV_ROWS}` : ""]
      .filter(Boolean).join(",") || "default";
  const spec = shapeSpec("7b");
  const engine = NativeEngine.create(spec, "cuda");
  const weightBytes = loadRandom(engine, spec);
  const info = engine.finalize({});
  const bw = (ceil.copy_bw_GBps ?? NaN) * 1e9;
  const kvPerPos = spec.num_layers * 2 * spec.num_kv_heads! * spec.head_dim! * 2;
  const decode: Point[] = [];
  for (const ctx of [128, 512])
    for (const B of [1, 2, 4, 8, 16]) {
      const ms = timeSteps(engine, batchOf(spec, B, 1, ctx, info.blockSize), 30, 3);
      const roofline = ((weightBytes + B * (ctx + 1) * kvPerPos) / bw) * 1e3;
      decode.push({ batch: B, ctx, ms, roofline_ms: roofline, pct: (100 * roofline) / ms, tok_s: (B / ms) * 1e3 });
      console.log(`[${label}] decode batch ${B} ctx ${ctx}: ${ms.toFixed(3)} ms; roofline ${roofline.toFixed(3)} ms -> ${((100 * roofline) / ms).toFixed(1)}%`);
    }
  const tokensPerPass = [1, 2, 4, 8, 16].map((T) => ({ tokens: T, ms: timeSteps(engine, batchOf(spec, 1, T, 512, info.blockSize), 20, 3) }));
  engine.destroy();
  const run: Run = { label, gpu: ceil.gpu, copy_bw_GBps: ceil.copy_bw_GBps, date: new Date().toISOString(), decode, tokens_per_pass: tokensPerPass };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, `decode-batch-${label}.json`), JSON.stringify(run, null, 1));
}

const args = process.argv.slice(2);
if (args[0] === "--report") report(args.slice(1));
else measure(args[0] ?? "", args[1] ?? "bench/results");
