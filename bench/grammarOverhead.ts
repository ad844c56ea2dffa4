/**
 * The cost of grammar-constrained decoding, through the whole engine loop as the engine host runs
 * it (launchStep, prepareMasks while the forward runs, finishStep): decode tokens/s at batch 1,
 * 16, 64 with no constraint and with a JSON schema, with overlapped steps off (masks, then one
 * fg_step: the engine before overlap) and on, in one run on two engines; the host ms per pass
 * spent on masks; and the cold compile time of a 20-field schema. The schema (a list of >= 64
 * short strings) keeps every sequence running for all `steps`, so every run decodes the same
 * batch for the same number of passes. Each (batch, constraint, overlap) is timed `rounds` times,
 * the two engines interleaved, and the median round reported (every round's tokens/s is in the
 * JSON: on a shared 2-core VM single rounds swing by 2x at batch 1). The masks are computed in the
 * grammar Workers: per pass, the engine thread's own mask work (mask ms), how long the pass waited
 * for the Workers (wait ms), their compute summed (worker ms) and the busiest Worker's (busiest
 * ms: what a pass can wait for, with K Workers computing at once).
 *
 *   bun run bench -- grammar [--model DIR] [--backend cpu|cuda] [--steps N] [--rounds R] [--batches 1,16,64]
 *                            [--overlap both|on|off] [--grammar-workers 1,2,4] [--baseline DIR] [--schema strings|records]
 * Writes bench/results/grammar-<backend>-<model>.json (-overlap-on / -off with --overlap on / off;
 * -gw1,2,4 with --grammar-workers). --grammar-workers K[,K..]: one engine per K (the pool size,
 * EngineOptions.grammarWorkers), interleaved round by round; the KV blocks are split between the
 * engines (each needs ~batch * (32 + steps) tokens). Default: one engine with 1 Worker.
 * --baseline DIR: also runs the EngineCore of another checkout (e.g. `git worktree add DIR <commit>`),
 * interleaved round by round with this one, for a before/after in one run (suffix -vs-baseline).
 *   bun run bench -- grammar --vocab 32000,128256 [--mask-reps N]
 * loads no model: compile and mask costs on synthetic vocabs of those sizes (bench/grammarCompile.ts).
 */
import { cpus } from "node:os";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { EngineCore } from "../src/engine/engineCore";
import type { SamplingOptions } from "../src/engine/samplingOptions";
import { defaultModelDir } from "../src/model/defaultModel";
import { vocabCompileBench } from "./grammarCompile";

const LONG_SCHEMA = JSON.stringify({
  type: "object",
  properties: { items: { type: "array", items: { type: "string", maxLength: 8 }, minItems: 64 } },
  required: ["items"],
});

/**
 * --schema records: what apps ask for (tool arguments, extraction): a list of at least 3 objects of
 * the 20 fields below, so the output is mostly keys and punctuation the grammar forces, with short
 * values between. LONG_SCHEMA (--schema strings, the default) is the hard case: every token is
 * inside a string of at most 8 characters, where XGrammar's masks cost the most.
 */
export function recordsSchema(): string {
  return JSON.stringify({ type: "object", properties: { records: { type: "array", items: JSON.parse(twentyFieldSchema(0)), minItems: 3 } }, required: ["records"] });
}

/** 20 fields of every kind: strings, enums, integers with ranges, numbers, booleans, arrays, a nested object. */
export function twentyFieldSchema(salt: number): string {
  const props: Record<string, unknown> = {};
  for (let i = 0; i < 20; i++) {
    const k = `field_${salt}_${i}`;
    props[k] = [
      { type: "string", maxLength: 32 },
      { type: "string", enum: ["alpha", "beta", "gamma", `v${salt}`] },
      { type: "integer", minimum: 0, maximum: 1000 + i },
      { type: "number" },
      { type: "boolean" },
      { type: "array", items: { type: "integer" }, maxItems: 5 },
      { type: "object", properties: { x: { type: "string" }, y: { type: "integer" } }, required: ["x", "y"] },
    ][i % 7];
  }
  return JSON.stringify({ type: "object", properties: props, required: Object.keys(props), additionalProperties: false });
}

interface Row {
  /** "this" checkout's engine, or the --baseline one. */
  impl: "this" | "baseline";
  /** Grammar Workers of the engine. */
  workers: number;
  batch: number;
  mode: "none" | "json_schema";
  overlap: boolean;
  tokens: number;
  ms: number;
  tokPerS: number;
  /** Wall time per decode pass. */
  wallMsPerPass: number;
  /** Host time blocked in libfastgen (launch + finish, or fg_step). */
  nativeMsPerPass: number;
  /** Of it, fg_step_launch (the rest: the finish, waiting for the forward and sampling). */
  launchMsPerPass: number;
  /** Engine-thread ms on masks (asking, receiving, handing out). */
  maskMsPerPass: number;
  /** Ms the pass waited for the grammar Worker's masks. */
  maskWaitMsPerPass: number;
  /** The grammar Workers' ms computing masks (on their own threads), summed. */
  workerMsPerPass: number;
  /** The busiest Worker's ms per ask round (equal to workerMsPerPass with one Worker). */
  busiestMsPerPass: number;
}

function promptOf(len: number, salt: number): number[] {
  return Array.from({ length: len }, (_, i) => 10 + ((i * 31 + salt * 17) % 1000));
}

async function decode(core: EngineCore, batch: number, steps: number, constrained: boolean, tag: string, schema: string): Promise<Row> {
  const sampling: SamplingOptions = { maxTokens: steps + 2, temperature: 1, seed: 1, ignoreEos: true };
  if (constrained) sampling.structured = { type: "json", schema };
  for (let i = 0; i < batch; i++) await core.addRequestAsync(`${tag}-${i}`, promptOf(32, i), { ...sampling, seed: i });
  const pass = async () => {
    core.launchStep();
    const masks = core.prepareMasks();
    if (masks) await masks;
    core.finishStep();
  };
  await pass(); // the prompts
  await pass(); // warm-up decode
  const t = core.timing, g = core.grammars.timing;
  const native0 = t.nativeMs, launch0 = t.launchMs, mask0 = g.maskMs, wait0 = g.waitMs, worker0 = g.workerMs, busiest0 = g.busiestMs ?? 0, tokens0 = core.metrics().generationTokensTotal;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) await pass();
  const ms = performance.now() - t0;
  const tokens = core.metrics().generationTokensTotal - tokens0; // batch * steps unless a sequence ended early
  while (core.hasWork()) await pass();
  return {
    impl: "this", workers: core.grammars.numWorkers ?? 1, batch, mode: constrained ? "json_schema" : "none", overlap: core.options.overlapSteps ?? core.readyInfo().backend === "cpu", tokens, ms, tokPerS: (tokens / ms) * 1000,
    wallMsPerPass: ms / steps, nativeMsPerPass: (t.nativeMs - native0) / steps, launchMsPerPass: (t.launchMs - launch0) / steps, maskMsPerPass: (g.maskMs - mask0) / steps,
    maskWaitMsPerPass: ((g.waitMs ?? 0) - (wait0 ?? 0)) / steps, workerMsPerPass: ((g.workerMs ?? 0) - (worker0 ?? 0)) / steps,
    busiestMsPerPass: ((g.busiestMs ?? g.workerMs ?? 0) - (g.busiestMs === undefined ? worker0 ?? 0 : busiest0)) / steps,
  };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { model: { type: "string" }, backend: { type: "string" }, steps: { type: "string" }, rounds: { type: "string" }, batches: { type: "string" }, overlap: { type: "string" }, vocab: { type: "string" }, "mask-reps": { type: "string" }, baseline: { type: "string" }, "grammar-workers": { type: "string" }, schema: { type: "string" } } });
  const schemaName = values.schema ?? "strings";
  if (schemaName !== "strings" && schemaName !== "records") throw new Error(`--schema must be strings or records, got ${schemaName}`);
  const schema = schemaName === "records" ? recordsSchema() : LONG_SCHEMA;
  if (values.vocab) return vocabCompileBench(values.vocab.split(",").map(Number), Number(values["mask-reps"] ?? 200), twentyFieldSchema, argv);
  const modelDir = values.model ?? defaultModelDir();
  const backend = (values.backend ?? "cpu") as "cpu" | "cuda";
  const steps = Number(values.steps ?? 32);
  const rounds = Number(values.rounds ?? 5);
  const batches = (values.batches ?? "1,16,64").split(",").map(Number);
  const which = values.overlap ?? "both";
  const poolSizes = values["grammar-workers"] ? values["grammar-workers"].split(",").map(Number) : null;
  const overlaps = which === "both" ? [false, true] : [which === "on"];
  const numEngines = overlaps.length * (poolSizes?.length ?? 1) * (values.baseline ? 2 : 1);
  // 2048 blocks in all (what one engine had before --grammar-workers), split between the engines,
  // but never fewer than the largest batch needs at 16 tokens a block.
  const needed = Math.max(...batches) * Math.ceil((32 + steps + 8) / 16) + 16;
  const opts = { backend, maxBatchTokens: 4096, maxSeqs: 256, kvBlocks: Math.max(needed, Math.floor(2048 / numEngines)) };
  const Baseline = values.baseline ? ((await import(join(resolve(values.baseline), "src", "engine", "engineCore.ts"))).EngineCore as typeof EngineCore) : null;
  const engines: { impl: Row["impl"]; core: EngineCore; overlap: boolean; workers: number }[] = [];
  for (const overlap of overlaps) {
    for (const workers of poolSizes ?? [1]) engines.push({ impl: "this", core: await EngineCore.load(modelDir, { ...opts, overlapSteps: overlap, grammarWorkers: workers }), overlap, workers });
    if (Baseline) engines.push({ impl: "baseline", core: await Baseline.load(modelDir, { ...opts, overlapSteps: overlap }), overlap, workers: 1 });
  }
  const core = engines[0]!.core;
  const vocab = core.tokenizer.vocabSize;
  try {
    // Compile times through the grammar Worker: its start (the tokenizer and XGrammar's tokenizer
    // info, once per engine), then cold 20-field schemas (fresh keys), each a round trip.
    let t0 = performance.now();
    await core.grammars.ready();
    const tokenizerInfoMs = performance.now() - t0;
    const compileMs: number[] = [];
    for (let k = 0; k < 3; k++) {
      t0 = performance.now();
      await core.grammars.compile({ type: "json", schema: twentyFieldSchema(k) });
      compileMs.push(performance.now() - t0);
    }
    t0 = performance.now();
    await core.grammars.compile({ type: "json", schema: twentyFieldSchema(0) });
    const cachedMs = performance.now() - t0;

    const all = new Map<string, Row[]>();
    const roundTokPerS: Record<string, number[]> = {};
    const keyOf = (r: Pick<Row, "impl" | "workers" | "batch" | "mode" | "overlap">) =>
      `${Baseline ? `${r.impl}/` : ""}${poolSizes ? `K=${r.workers}/` : ""}${r.batch}/${r.mode}/overlap ${r.overlap ? "on" : "off"}`;
    let run = 0;
    for (const b of batches)
      for (const constrained of [false, true])
        for (let k = 0; k < rounds; k++)
          for (const e of engines) {
            const row = { ...(await decode(e.core, b, steps, constrained, `r${run++}`, schema)), impl: e.impl, workers: e.workers };
            const key = keyOf(row);
            (roundTokPerS[key] ??= []).push(Math.round(row.tokPerS));
            all.set(key, [...(all.get(key) ?? []), row]);
          }
    const rows = [...all.values()].map((rs) => [...rs].sort((a, b) => a.tokPerS - b.tokPerS)[Math.floor(rs.length / 2)]!);
    console.log(`\ngrammar overhead, model ${basename(modelDir)} (vocab ${vocab}), backend ${backend}, ${cpus().length} cores, ${steps} decode passes, median of ${rounds} rounds`);
    console.table(rows.map((r) => ({ ...(Baseline && { impl: r.impl }), ...(poolSizes && { K: r.workers }), batch: r.batch, constraint: r.mode, overlap: r.overlap ? "on" : "off", "tokens/s": r.tokPerS.toFixed(0), "ms/pass": r.wallMsPerPass.toFixed(2), "native ms/pass": r.nativeMsPerPass.toFixed(2), "of it launch": r.launchMsPerPass.toFixed(2), "mask ms/pass": r.maskMsPerPass.toFixed(2), "wait ms/pass": r.maskWaitMsPerPass.toFixed(2), "worker ms/pass": r.workerMsPerPass.toFixed(2), "busiest ms/pass": r.busiestMsPerPass.toFixed(2) })));
    const loss = batches.flatMap((b) => engines.map(({ impl, overlap, workers }) => {
      const find = (mode: Row["mode"]) => rows.find((r) => r.impl === impl && r.workers === workers && r.batch === b && r.mode === mode && r.overlap === overlap)!;
      return { impl, workers, batch: b, overlap, lossPercent: (1 - find("json_schema").tokPerS / find("none").tokPerS) * 100 };
    }));
    console.table(loss.map((l) => ({ ...(Baseline && { impl: l.impl }), ...(poolSizes && { K: l.workers }), batch: l.batch, overlap: l.overlap ? "on" : "off", "tokens/s lost to the grammar": `${l.lossPercent.toFixed(1)}%` })));
    console.log(`grammar worker start ${tokenizerInfoMs.toFixed(1)} ms; 20-field schema compile (cold, via the worker) ${compileMs.map((m) => m.toFixed(1)).join(", ")} ms; cached ${cachedMs.toFixed(3)} ms`);
    const out = {
      command: `bun run bench -- grammar ${argv.join(" ")}`.trim(), date: new Date().toISOString(), model: basename(modelDir), vocab, backend,
      cores: cpus().length, cpu: cpus()[0]?.model, schema: schemaName, steps, rounds, rows, roundTokPerS, loss, tokenizerInfoMs, compile20FieldMs: compileMs, cachedLookupMs: cachedMs,
    };
    const suffix = (which === "both" ? "" : `-overlap-${which}`) + (poolSizes ? `-gw${poolSizes.join(",")}` : "") + (Baseline ? "-vs-baseline" : "") + (schemaName === "records" ? "-records" : "");
    const file = join(import.meta.dir, "results", `grammar-${backend}-${basename(modelDir)}${suffix}.json`);
    await Bun.write(file, JSON.stringify(out, null, 2) + "\n");
    console.log(`wrote ${file}`);
  } finally {
    for (const e of engines) e.core.destroy();
  }
}

if (import.meta.main) await main(process.argv.slice(2));
