/**
 * What each op kind costs where it sits on the decode chain: ms per decode step of the
 * Llama-2-7B shape (random weights; bf16, or FP8 quantized at load with --fp8) at batch 1, ctx
 * 128 and 512, under the FASTGEN_SKIP of the environment (knobs.h: op kinds the forward leaves
 * out; timing only, the outputs are wrong). The knob is read once per process, so a shell loop
 * runs this once per setting and the differences from the run without skips are each op's
 * marginal cost on the critical path (what fusing it away could save at most).
 *
 *   FASTGEN_SKIP=rope bun bench/gpu/stepCost.ts <out.jsonl> [--fp8]     appends one JSON line
 *   bun bench/gpu/stepCost.ts --report <out.jsonl>                        markdown table
 */
import { appendFileSync, readFileSync } from "node:fs";
import { NativeEngine } from "../../src/native";
import { batchOf, loadRandom, shapeSpec, timeSteps } from "./randomModel";

interface Line { skip: string; weights: string; knobs: string; ctx128_ms: number; ctx512_ms: number; date: string }
// The other FASTGEN_* settings of the run: its rows compare with the unskipped run of the same ones.
const knobsOf = () => Object.keys(process.env).filter((k) => k.startsWith("FASTGEN_") && k !== "FASTGEN_SKIP").sort().map((k) => `${k}=${process.env[k]}`).join(",");

function report(file: string): void {
  const lines = readFileSync(file, "utf8").trim().split("\n").map((l) => JSON.parse(l) as Line);
  const out = ["| weights | knobs | FASTGEN_SKIP | ctx 128 ms | saved | ctx 512 ms | saved |", "| --- | --- | --- | --- | --- | --- | --- |"];
  for (const group of [...new Set(lines.map((l) => `${l.weights} ${l.knobs}`))]) {
    const rows = lines.filter((x) => `${x.weights} ${x.knobs}` === group);
    const base = rows.find((l) => l.skip === "");
    for (const l of rows) {
      const d = (a: number, b?: number) => (b === undefined ? "-" : (b - a).toFixed(3));
      out.push(`| ${l.weights} | ${l.knobs || "-"} | ${l.skip || "(none)"} | ${l.ctx128_ms.toFixed(3)} | ${d(l.ctx128_ms, base?.ctx128_ms)} | ${l.ctx512_ms.toFixed(3)} | ${d(l.ctx512_ms, base?.ctx512_ms)} |`);
    }
  }
  console.log(out.join("\n"));
}

function measure(file: string, fp8: boolean): void {
  const spec = shapeSpec("7b");
  const e = NativeEngine.create({ ...spec, ...(fp8 ? { quantization: "fp8" as const } : {}) }, "cuda");
  try {
    loadRandom(e, spec);
    // STEPCOST_BLOCKS: a KV pool of that many blocks instead of most of the GPU (under ncu, whose
    // kernel replay backs the device memory up in host memory when it cannot on the device).
    const blocks = Number(process.env.STEPCOST_BLOCKS ?? 0);
    const info = e.finalize(blocks > 0 ? { numBlocks: blocks } : {});
    const at = (ctx: number) => timeSteps(e, batchOf(spec, 1, 1, ctx, info.blockSize), 40, 3);
    const line: Line = { skip: process.env.FASTGEN_SKIP ?? "", weights: fp8 ? "fp8" : "bf16", knobs: knobsOf(), ctx128_ms: at(128), ctx512_ms: at(512), date: new Date().toISOString() };
    console.log(JSON.stringify(line));
    appendFileSync(file, JSON.stringify(line) + "\n");
  } finally {
    e.destroy();
  }
}

const args = process.argv.slice(2);
if (args[0] === "--report") report(args[1]!);
else measure(args[0] ?? "/tmp/step-cost.jsonl", args.includes("--fp8"));
