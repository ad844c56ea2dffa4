/**
 * Scheduler benchmark: CPU time of one engine step outside the forward pass, i.e.
 * schedule() (invariants included) + commitPlan() + StepBatchBuilder.build(), and applyStep()
 * separately. No model: sampled ids are fixed.
 *
 * Workload, steady state: B = 768, requests of 600-1000 prompt tokens generating 200-600 tokens,
 * the queue never empty. Each pass then holds ~256 decodes (contexts ~1k) and fills the other
 * ~512 tokens with prompt chunks, so it splits and fuses every step.
 *
 *   bun bench/scheduler.ts [--steps 2000] [--rounds 3] [--only <scenario substring>] [--no-write]
 *
 * --only keeps the scenarios whose "policy scenario" name contains the substring, and --no-write
 * leaves the JSON alone: for quick A/B runs of a change.
 *
 * Napkin math: 256 rows x ~64 block ids (1k context / 16) = 16k ids + 768 tokens per pass.
 * Copied one element at a time at ~1.6 ns (this 2-core VM) that alone is ~27 us; the block
 * CSR is therefore rebuilt from the previous pass with a few memcpys (see blockCsr.ts).
 * The penalty scenarios run twice: every list whole each pass (the CSR as before issue #24 item
 * 4), and with penalty slots (EngineCore's way: the library keeps the lists, a pass sends each
 * sequence's new ids).
 * Prints a table and writes bench/results/scheduler.json.
 */
import { cpus } from "node:os";
import { KvCacheManager } from "../src/engine/kvCache/kvCacheManager";
import { StepBatchBuilder } from "../src/engine/batch";
import { PenaltySlots } from "../src/engine/penaltySlots";
import { SequenceQueues } from "../src/engine/queues";
import { commitPlan, getPolicy, schedule } from "../src/engine/scheduler";
import type { PolicyName } from "../src/engine/scheduler";
import { samplingParams } from "../src/engine/samplingParams";
import type { SamplingInput } from "../src/engine/samplingParams";
import { Sequence } from "../src/engine/sequence";
import { applyStep } from "../src/engine/stepper";
import type { StepperContext } from "../src/engine/stepper";

const args = process.argv.slice(2);
const flag = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) : fallback);
const STEPS = flag("--steps", 2000);
/** Rounds per scenario: on a shared machine the quietest round is the one that tells. */
const ROUNDS = flag("--rounds", 3);
const ONLY = args.includes("--only") ? args[args.indexOf("--only") + 1]! : null;
const WRITE = !args.includes("--no-write");
const BUDGET = 768;
const WARMUP_STEPS = 2500;
const BLOCK_SIZE = 16;
const NUM_BLOCKS = 60_000;

interface Scenario {
  name: string;
  policy: PolicyName;
  sampling: Partial<SamplingInput>;
  /** Penalty slots (EngineCore's way): each list sent whole once, then only its new ids. */
  penaltySlots?: boolean;
}

interface Timing {
  scenario: string;
  policy: PolicyName;
  /** Medians of the round whose plan+batch median was lowest. */
  medianUs: { schedule: number; commit: number; build: number; planAndBatch: number; apply: number };
  p99PlanAndBatchUs: number;
  /** plan+batch median of every round, for the spread. */
  roundMediansUs: number[];
  meanTokensPerStep: number;
  meanRowsPerStep: number;
  meanDecodesPerStep: number;
  meanDecodeContext: number;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

function runRound(s: Scenario): Timing {
  const policy = getPolicy(s.policy);
  const config = { tokenBudget: BUDGET, maxSeqs: 512 };
  const blocks = new KvCacheManager(NUM_BLOCKS, BLOCK_SIZE);
  const queues = new SequenceQueues();
  const ctx: StepperContext = { queues, blocks, stop: { eosTokenIds: [0] } };
  const slots = s.penaltySlots ? new PenaltySlots() : null;
  const builder = new StepBatchBuilder([0], null, slots);
  let id = 0;
  const add = (len: number, maxTokens: number) => {
    const prompt = Array.from({ length: len }, (_, i) => 1 + ((i * 31 + id) % 30000));
    queues.add(new Sequence(id, id, prompt, samplingParams({ maxTokens, ignoreEos: true, seed: id, ...s.sampling })));
    id++;
  };
  let sampled = new Int32Array(1024);
  const step = () => {
    const t0 = Bun.nanoseconds();
    const plan = schedule(policy, { running: queues.running, waiting: queues.waiting, blocks }, config);
    const t1 = Bun.nanoseconds();
    commitPlan(plan, queues, blocks);
    if (slots) for (const seq of plan.preempted) slots.release(seq.id);
    const t2 = Bun.nanoseconds();
    const batch = builder.build(plan, blocks);
    const t3 = Bun.nanoseconds();
    const rows = batch.rowTokens.length;
    if (sampled.length < rows) sampled = new Int32Array(rows * 2);
    for (let r = 0; r < rows; r++) sampled[r] = 1 + (r % 50);
    const t4 = Bun.nanoseconds();
    const events = applyStep(plan, { rowIndptr: batch.rowIndptr, ids: sampled }, ctx);
    if (slots) for (const ev of events) if (ev.finishReason !== null) slots.release(ev.seq.id);
    const t5 = Bun.nanoseconds();
    let decodes = 0;
    let context = 0;
    for (const e of plan.entries) {
      if (e.numTokens === 1) {
        decodes++;
        context += e.contextLen;
      }
    }
    return {
      schedule: t1 - t0, commit: t2 - t1, build: t3 - t2, apply: t5 - t4,
      tokens: batch.tokenIds.length, rows: plan.entries.length, decodes, context: decodes > 0 ? context / decodes : 0,
    };
  };
  const keepWaiting = () => {
    while (queues.waiting.length < 8) add(600 + ((id * 37) % 400), 200 + ((id * 53) % 400));
  };
  // Warm up (untimed) into the steady state: ~256 decoding, prompts chunked behind them.
  for (let i = 0; i < WARMUP_STEPS; i++) {
    keepWaiting();
    step();
  }
  const t = { schedule: [] as number[], commit: [] as number[], build: [] as number[], total: [] as number[], apply: [] as number[] };
  let tokens = 0;
  let rows = 0;
  let decodes = 0;
  let context = 0;
  for (let i = 0; i < STEPS; i++) {
    keepWaiting();
    const r = step();
    t.schedule.push(r.schedule / 1e3);
    t.commit.push(r.commit / 1e3);
    t.build.push(r.build / 1e3);
    t.total.push((r.schedule + r.commit + r.build) / 1e3);
    t.apply.push(r.apply / 1e3);
    tokens += r.tokens;
    rows += r.rows;
    decodes += r.decodes;
    context += r.context;
  }
  const round = (x: number) => Math.round(x * 10) / 10;
  return {
    scenario: s.name,
    policy: s.policy,
    medianUs: {
      schedule: round(median(t.schedule)), commit: round(median(t.commit)), build: round(median(t.build)),
      planAndBatch: round(median(t.total)), apply: round(median(t.apply)),
    },
    p99PlanAndBatchUs: round(pct(t.total, 0.99)),
    roundMediansUs: [],
    meanTokensPerStep: round(tokens / STEPS),
    meanRowsPerStep: round(rows / STEPS),
    meanDecodesPerStep: round(decodes / STEPS),
    meanDecodeContext: Math.round(context / STEPS),
  };
}

const scenarios: Scenario[] = [
  { name: "default sampling", policy: "splitfuse", sampling: {} },
  { name: "top-p/top-k + logit bias", policy: "splitfuse", sampling: { temperature: 0.7, topP: 0.9, topK: 50, logitBias: { 5: -100, 6: 2 } } },
  { name: "presence penalty (outputs CSR)", policy: "splitfuse", sampling: { presencePenalty: 0.5 } },
  { name: "repetition penalty (prompt+outputs CSR)", policy: "splitfuse", sampling: { repetitionPenalty: 1.1 } },
  { name: "presence penalty (slots: new ids only)", policy: "splitfuse", sampling: { presencePenalty: 0.5 }, penaltySlots: true },
  { name: "repetition penalty (slots: new ids only)", policy: "splitfuse", sampling: { repetitionPenalty: 1.1 }, penaltySlots: true },
  { name: "default sampling", policy: "orca", sampling: {} },
  { name: "default sampling", policy: "prefill-first", sampling: {} },
];

function run(s: Scenario): Timing {
  const rounds = Array.from({ length: ROUNDS }, () => runRound(s));
  const best = rounds.reduce((a, b) => (b.medianUs.planAndBatch < a.medianUs.planAndBatch ? b : a));
  return { ...best, roundMediansUs: rounds.map((r) => r.medianUs.planAndBatch) };
}

const results = scenarios.filter((s) => ONLY === null || `${s.policy} ${s.name}`.includes(ONLY)).map(run);
const header = ["policy", "scenario", "rows", "decodes", "ctx", "tokens", "schedule", "commit", "build", "plan+batch", "p99", "apply", "rounds"];
const table = results.map((r) => [
  r.policy, r.scenario, String(r.meanRowsPerStep), String(r.meanDecodesPerStep), String(r.meanDecodeContext), String(r.meanTokensPerStep), String(r.medianUs.schedule),
  String(r.medianUs.commit), String(r.medianUs.build), String(r.medianUs.planAndBatch), String(r.p99PlanAndBatchUs),
  String(r.medianUs.apply), r.roundMediansUs.join("/"),
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
console.log(`scheduler step CPU time in µs: medians over ${STEPS} steps of the best of ${ROUNDS} rounds (all rounds' plan+batch medians last); B=${BUDGET}, block ${BLOCK_SIZE}, steady state`);
console.log(line(header));
for (const row of table) console.log(line(row));
// Issue #24 item 4: under 50 us a step in every scenario (the whole-list CSR ones are the pre-slot
// path, kept for comparison), on its host; this 2-core VM ran the same code ~2x slower before.
const worst = Math.max(...results.filter((r) => r.policy === "splitfuse" && !r.scenario.includes("CSR")).map((r) => r.medianUs.planAndBatch));
// (none of those scenarios under --only: no verdict)
if (worst > -Infinity) console.log(`\nsplitfuse plan+batch median, worst scenario (whole-list CSR aside): ${worst} µs (target < 50 µs: ${worst < 50 ? "met" : "MISSED"}; < 100 µs on a host 2x slower: ${worst < 100 ? "met" : "MISSED"})`);

if (WRITE) await Bun.write(
  new URL("./results/scheduler.json", import.meta.url),
  JSON.stringify({
    command: `bun bench/scheduler.ts --steps ${STEPS} --rounds ${ROUNDS}`,
    date: new Date().toISOString(),
    bun: Bun.version,
    cpu: cpus()[0]?.model ?? "unknown",
    cores: cpus().length,
    setup: { rounds: ROUNDS, workload: "prompts 600-1000, outputs 200-600, queue kept at 8", warmupSteps: WARMUP_STEPS, tokenBudget: BUDGET, maxSeqs: 512, blockSize: BLOCK_SIZE, numBlocks: NUM_BLOCKS, steps: STEPS },
    unit: "microseconds per step: medians over the steps of the best round",
    results,
  }, null, 2) + "\n",
);
