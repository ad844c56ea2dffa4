/**
 * Mixed passes eager vs in CUDA graph pieces (FASTGEN_PIECEWISE_GRAPHS, libfastgen/src/cuda/
 * piecewise.cu; issue #24 item 3) on the Llama-2-7B shape (random bf16 weights,
 * bench/gpu/randomModel.ts): SplitFuse's normal pass, 32 decodes (ctx 512) plus one prompt chunk
 * (ctx 512) of 32-992 tokens, and bench/gpu/llama7b.ts's tokens-per-pass points of 64-1024 tokens
 * (one chunk, ctx 512). Each pass is timed on the host around fg_step (median), as llama7b.ts
 * does. Knobs are read once a process, so bench/device/run-wave.sh's `piecewise` stage runs one
 * process per setting and round, alternating, then --report.
 *
 *   bun bench/gpu/piecewise.ts <out-dir>            writes piecewise-<0|1>-r<ROUND>.json
 *   bun bench/gpu/piecewise.ts --report <out-dir>   one markdown table: median ms per setting
 */
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NativeEngine, type StepBatch } from "../../src/native";
import type { ModelSpec } from "../../src/native/modelSpec";
import { loadRandom, shapeSpec, timeSteps } from "./randomModel";

/** [name, parts]: each part [tokens, context] is one sequence of the pass. */
const decodes = (n: number): [number, number][] => Array.from({ length: n }, () => [1, 512]);
const PASSES: [string, [number, number][]][] = [
  ...[32, 96, 224, 256, 480, 992].map((c): [string, [number, number][]] => [`32 decodes + ${c}-token chunk`, [...decodes(32), [c, 512]]]),
  ...[64, 128, 256, 512, 1024].map((t): [string, [number, number][]] => [`${t}-token chunk`, [[t, 512]]]),
];

interface Point { pass: string; tokens: number; ms: number }
interface Run { setting: string; round: number; date: string; points: Point[] }

function mixedBatch(spec: ModelSpec, parts: [number, number][], blockSize: number): StepBatch {
  const T = parts.reduce((a, [n]) => a + n, 0), S = parts.length;
  const tokenIds = new Int32Array(T), positions = new Int32Array(T), cu = new Int32Array(S + 1);
  const blockIndptr = new Int32Array(S + 1), blocks: number[] = [];
  let t = 0;
  parts.forEach(([n, ctx], s) => {
    for (let i = 0; i < n; i++, t++) tokenIds[t] = (s * 7919 + i * 31) % spec.vocab_size, positions[t] = ctx + i;
    cu[s + 1] = t;
    const per = Math.ceil((ctx + n) / blockSize), first = blocks.length;
    for (let b = 0; b < per; b++) blocks.push(first + b);
    blockIndptr[s + 1] = blocks.length;
  });
  const f = (v: number) => new Float32Array(S).fill(v);
  return {
    tokenIds, positions, cuSeqlens: cu, contextLens: Int32Array.from(parts.map(([, ctx]) => ctx)), blockIndptr,
    blockIndices: Int32Array.from(blocks), rowIndptr: Int32Array.from({ length: S + 1 }, (_, s) => s),
    rowTokens: cu.slice(1).map((x) => x - 1), temperature: f(0), topP: f(1), topK: new Int32Array(S), minP: f(0),
    seed: new BigUint64Array(S), numLogprobs: 0,
  } as StepBatch;
}

function measure(outDir: string): void {
  const setting = process.env.FASTGEN_PIECEWISE_GRAPHS ?? "0", round = Number(process.env.ROUND ?? 1);
  const spec = shapeSpec("7b");
  const engine = NativeEngine.create(spec, "cuda");
  loadRandom(engine, spec);
  const info = engine.finalize({});
  const points: Point[] = PASSES.map(([pass, parts]) => {
    const tokens = parts.reduce((a, [n]) => a + n, 0);
    // warmup 3: the pieces of a bucket run live, then are captured, then replay
    const ms = timeSteps(engine, mixedBatch(spec, parts, info.blockSize), tokens >= 512 ? 10 : 20, 3);
    console.log(`[pieces ${setting} r${round}] ${pass} (${tokens} tokens): ${ms.toFixed(3)} ms`);
    return { pass, tokens, ms };
  });
  engine.destroy();
  mkdirSync(outDir, { recursive: true });
  const run: Run = { setting, round, date: new Date().toISOString(), points };
  writeFileSync(join(outDir, `piecewise-${setting}-r${round}.json`), JSON.stringify(run, null, 1));
}

function report(outDir: string): void {
  const runs: Run[] = readdirSync(outDir).filter((f) => /^piecewise-.*\.json$/.test(f)).map((f) => JSON.parse(readFileSync(join(outDir, f), "utf8")));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
  const at = (setting: string, pass: string) => median(runs.filter((r) => r.setting === setting).flatMap((r) => r.points.filter((p) => p.pass === pass).map((p) => p.ms)));
  console.log("| pass | tokens | eager ms | pieces ms | pieces / eager |\n|---|---|---|---|---|");
  for (const [pass, parts] of PASSES) {
    const a = at("0", pass), b = at("1", pass);
    console.log(`| ${pass} | ${parts.reduce((s, [n]) => s + n, 0)} | ${a.toFixed(3)} | ${b.toFixed(3)} | ${(b / a).toFixed(3)} |`);
  }
  console.log(`(median over ${runs.length} runs of both settings, rounds alternating)`);
}

const args = process.argv.slice(2);
if (args[0] === "--report") report(args[1] ?? "/tmp/piecewise");
else if (args[0]) measure(args[0]);
else throw new Error("usage: bun bench/gpu/piecewise.ts <out-dir> | --report <out-dir>");
