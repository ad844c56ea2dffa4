/**
 * Where a pass's grammar time goes, without a model: `batch` samples of the overhead bench's
 * schema (grammarOverhead.ts LONG_SCHEMA) decode on a synthetic byte-level vocab (32K by default)
 * through the engine's own grammar side (EngineGrammars: the Worker pool, the mask cache) and its
 * RowMaskBuilder, each pass as the engine runs it:
 *
 *   ask       requestMasks on the engine thread (cache lookups, syncs packed, one post a Worker)
 *   [forward] --forward-ms of sleep, standing in for the device's forward (0: none)
 *   wait      masksFor: until every ask of the pass is answered
 *   build     RowMaskBuilder: the rows' masks copied into the batch's late-mask buffer
 *   sample    a uniformly random allowed id per row (the model's part: not counted)
 *
 * and, from the Workers' replies: their compute (sync: rollback/accept; fill: XGrammar's
 * getNextTokenBitmask; the rest: our copy out), the hand-off latencies (toWorker: post -> the
 * Worker takes it; handBack: the masks written -> the engine takes them: the round's last row ->
 * the engine's wake, or in a checkout before the rounds, the Worker's answer -> the engine), the engine thread's handling of answers (receive), the
 * busiest Worker against the mean (balance: 1 = the work split evenly) and what a pass took past
 * the stand-in forward (late: wall - forward, what the device's pass would grow by).
 * The native side (upload + masked sampling) needs a model: grammarOverhead.ts with --overlap off
 * on bench/vocabModel.ts's 32K model gives it (native ms/pass, json_schema minus none).
 *
 *   bun bench/grammarProfile.ts [--vocab 32000] [--batch 64] [--passes 48] [--rounds 3]
 *                               [--grammar-workers 1,2] [--forward-ms 0]
 * Prints a table (ms per pass, median round) and writes bench/results/grammar-profile-<vocab>.json.
 *
 *   bun bench/grammarProfile.ts --costs [--vocab 32000] [--batch 64]
 * XGrammar's cost per mask in this thread along 8 random walks of the schema (mean, max), and what
 * a pass of `batch` such masks waits for on K = 1, 2, 4, 8 threads: split ahead by sample (each
 * Worker a fixed batch / K rows) or claimed one at a time, against the even split (total / K).
 */
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { GrammarMatcher } from "@mlc-ai/web-xgrammar";
import { EngineGrammars } from "../src/grammar/engineGrammars";
import { GrammarCache } from "../src/grammar/grammarCache";
import type { SequenceGrammar } from "../src/grammar/sequenceGrammar";
import { RowMaskBuilder } from "../src/engine/rowMasks";
import type { Plan } from "../src/engine/scheduler/types";
import type { StepBatch } from "../src/engine/stepBatch";
import { syntheticByteLevelVocab } from "./syntheticVocab";

export const LONG_SCHEMA = JSON.stringify({
  type: "object",
  properties: { items: { type: "array", items: { type: "string", maxLength: 8 }, minItems: 64 } },
  required: ["items"],
});

const FIELDS = ["ask", "wait", "build", "receive", "toWorker", "handBack", "workerSum", "busiest", "balance", "sync", "fill", "workerRest", "wall", "late"] as const;
type Profile = Record<(typeof FIELDS)[number], number> & { workers: number; computed: number; cacheHits: number };

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** A seeded uniform [0, 1). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32;
}

/** A uniformly random id allowed by `mask`. */
function sampleAllowed(mask: Uint32Array, rand: () => number): number {
  let n = 0;
  for (let w = 0; w < mask.length; w++) {
    let x = mask[w]! - ((mask[w]! >>> 1) & 0x55555555);
    x = (x & 0x33333333) + ((x >>> 2) & 0x33333333);
    n += (((x + (x >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
  }
  let k = Math.floor(rand() * n);
  for (let w = 0; w < mask.length; w++) {
    for (let b = 0, m = mask[w]!; m !== 0; b++, m >>>= 1) if (m & 1 && k-- === 0) return w * 32 + b;
  }
  throw new Error("an empty mask");
}

/** One round: `batch` fresh samples, `passes` passes; ms per pass of each part. */
async function round(grammars: EngineGrammars, vocab: number, batch: number, passes: number, forwardMs: number, seed: number): Promise<Profile> {
  const gs: SequenceGrammar[] = [];
  for (let i = 0; i < batch; i++) gs.push(...(await grammars.forRequest({ type: "json", schema: LONG_SCHEMA }, 1)));
  await grammars.replicasSettled?.(); // every sample's replicas made (absent in a --baseline-style older checkout)
  const maskOf = new Map<number, SequenceGrammar>(gs.map((g, i) => [i, g]));
  const builder = new RowMaskBuilder(vocab, [{ maskFor: (seq) => maskOf.get(seq.id)!.nextMask }]);
  const plan = { entries: gs.map((_, i) => ({ seq: { id: i } })) } as unknown as Plan;
  const stepBatch = { rowIndptr: Int32Array.from({ length: batch + 1 }, (_, i) => i), rowTargets: null } as unknown as StepBatch;
  const rand = rng(seed);
  const t = grammars.timing;
  const before = { ...t, hits: grammars.maskCache.stats.hits };
  let ask = 0, wait = 0, build = 0, wall = 0, late = 0;
  for (let p = 0; p < passes; p++) {
    const t0 = performance.now();
    grammars.requestMasks();
    const t1 = performance.now();
    if (forwardMs > 0) await Bun.sleep(forwardMs);
    const t2 = performance.now();
    const masks = grammars.masksFor(gs);
    if (masks) await masks;
    const t3 = performance.now();
    if (grammars.takeFailures()) throw new Error("a grammar sample failed");
    builder.masksOf(plan, stepBatch);
    const t4 = performance.now();
    ask += t1 - t0;
    wait += t3 - t2;
    build += t4 - t3;
    wall += t4 - t0;
    late += Math.max(0, t4 - t0 - forwardMs);
    for (const g of gs) if (!g.accept(sampleAllowed(g.nextMask!, rand))) throw new Error("a sampled id was refused");
  }
  for (const g of gs) grammars.release(g);
  // By name: a checkout before the rounds (bench --baseline style) has fromWorkerMs, not wakeMs.
  const now = t as unknown as Record<string, number>, was = before as unknown as Record<string, number>;
  const d = (k: string) => ((now[k] ?? 0) - (was[k] ?? 0)) / passes;
  return {
    workers: grammars.numWorkers, ask: ask / passes, wait: wait / passes, build: build / passes, wall: wall / passes,
    receive: d("receiveMs"), toWorker: d("toWorkerMs"), handBack: "wakeMs" in t ? d("wakeMs") : d("fromWorkerMs"), workerSum: d("workerMs"), busiest: d("busiestMs"),
    sync: d("syncMs"), fill: d("fillMs"), workerRest: d("workerMs") - d("syncMs") - d("fillMs"), computed: d("computed"),
    balance: d("busiestMs") / (d("workerMs") / grammars.numWorkers), late: late / passes,
    cacheHits: (grammars.maskCache.stats.hits - before.hits) / passes,
  };
}

/** Per-mask costs along random walks, and the busiest thread of a pass split ahead vs claimed (see the top). */
async function costs(vocabSize: number, batch: number): Promise<void> {
  const vocab = syntheticByteLevelVocab(vocabSize);
  const cache = await GrammarCache.create(vocab, vocab.stopTokenIds);
  const compiled = await cache.get({ type: "json", schema: LONG_SCHEMA });
  const rand = rng(1);
  const ms: number[] = [];
  for (let walk = 0; walk < 8; walk++) {
    const m = await GrammarMatcher.createGrammarMatcher(compiled);
    for (let s = 0; s < 100; s++) {
      const t0 = performance.now();
      const mask = await m.getNextTokenBitmask();
      ms.push(performance.now() - t0);
      m.acceptToken(sampleAllowed(new Uint32Array(mask.buffer, mask.byteOffset, mask.length), rand));
    }
    m.dispose();
  }
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  const sorted = [...ms].sort((a, b) => a - b);
  console.log(`\nXGrammar per mask, vocab ${vocabSize}, ${ms.length} masks: mean ${mean.toFixed(3)} ms, median ${sorted[ms.length >> 1]!.toFixed(3)}, p90 ${sorted[Math.floor(ms.length * 0.9)]!.toFixed(3)}, max ${sorted.at(-1)!.toFixed(2)}`);
  const rows = [1, 2, 4, 8].map((k) => {
    let ahead = 0, claimed = 0, even = 0;
    const P = 2000;
    for (let p = 0; p < P; p++) {
      const pass = Array.from({ length: batch }, () => ms[Math.floor(rand() * ms.length)]!);
      const fixed = new Array<number>(k).fill(0), free = new Array<number>(k).fill(0);
      pass.forEach((c, i) => (fixed[i % k]! += c));
      for (const c of pass) free[free.indexOf(Math.min(...free))]! += c; // the next row to the first free thread
      ahead += Math.max(...fixed);
      claimed += Math.max(...free);
      even += pass.reduce((a, b) => a + b, 0) / k;
    }
    return { K: k, "split ahead ms": (ahead / P).toFixed(2), "claimed ms": (claimed / P).toFixed(2), "even split ms": (even / P).toFixed(2) };
  });
  console.log(`a pass of ${batch} masks drawn from these (2000 passes): the busiest thread`);
  console.table(rows);
  cache.dispose();
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { vocab: { type: "string" }, batch: { type: "string" }, passes: { type: "string" }, rounds: { type: "string" }, "grammar-workers": { type: "string" }, "forward-ms": { type: "string" }, costs: { type: "boolean" } } });
  const vocabSize = Number(values.vocab ?? 32000), batch = Number(values.batch ?? 64), passes = Number(values.passes ?? 48);
  if (values.costs) return costs(vocabSize, batch);
  const rounds = Number(values.rounds ?? 3), forwardMs = Number(values["forward-ms"] ?? 0);
  const pools = (values["grammar-workers"] ?? "1,2").split(",").map(Number);
  const vocab = syntheticByteLevelVocab(vocabSize);
  const engines = pools.map((k) => new EngineGrammars({ modelDir: "", vocabSize, eosTokenIds: vocab.stopTokenIds }, { workers: k, source: { vocab } }));
  try {
    for (const e of engines) {
      await e.ready();
      await e.compile({ type: "json", schema: LONG_SCHEMA });
    }
    const all = new Map<number, Profile[]>();
    for (let r = 0; r < rounds; r++)
      for (const e of engines) all.set(e.numWorkers, [...(all.get(e.numWorkers) ?? []), await round(e, vocabSize, batch, passes, forwardMs, 17 + r)]);
    const rows = [...all.values()].map((ps) => {
      const out = { workers: ps[0]!.workers } as Profile;
      for (const k of [...FIELDS, "computed", "cacheHits"] as const) out[k] = median(ps.map((p) => p[k]));
      return out;
    });
    console.log(`\ngrammar profile: vocab ${vocabSize}, batch ${batch}, ${passes} passes, forward ${forwardMs} ms, ${cpus().length} cores, median of ${rounds} rounds (ms per pass)`);
    console.table(rows.map((r) => Object.fromEntries([["K", r.workers], ...FIELDS.map((k) => [k, r[k].toFixed(3)]), ["computed", r.computed.toFixed(1)], ["cache hits", r.cacheHits.toFixed(1)]])));
    const file = join(import.meta.dir, "results", `grammar-profile-${vocabSize}.json`);
    await Bun.write(file, JSON.stringify({ command: `bun bench/grammarProfile.ts ${argv.join(" ")}`.trim(), date: new Date().toISOString(), cores: cpus().length, cpu: cpus()[0]?.model, vocabSize, batch, passes, rounds, forwardMs, rows, all: Object.fromEntries(all) }, null, 2) + "\n");
    console.log(`wrote ${file}`);
  } finally {
    for (const e of engines) e.destroy();
  }
}

if (import.meta.main) await main(process.argv.slice(2));
