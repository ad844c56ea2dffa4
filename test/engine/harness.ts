/**
 * Drives the engine core (schedule → commit → build batch → fake model → apply) over one mix
 * of requests and checks, every step, what must hold whatever the policy: plan invariants
 * (inside schedule()), pool accounting, progress, and the per-policy pass shapes.
 */
import { KvCacheManager } from "../../src/engine/kvCache/kvCacheManager";
import { StepBatchBuilder } from "../../src/engine/batch";
import { SequenceQueues } from "../../src/engine/queues";
import { commitPlan, getPolicy, ownTokens, schedule } from "../../src/engine/scheduler";
import type { Plan, PolicyName, SchedulerConfig } from "../../src/engine/scheduler";
import type { SamplingParams } from "../../src/engine/samplingParams";
import { Sequence, runsBefore } from "../../src/engine/sequence";
import type { SequenceFinishReason } from "../../src/engine/sequence";
import { PenaltySlots } from "../../src/engine/penaltySlots";
import { usesPenalties } from "../../src/engine/samplingParams";
import { abort, applyStep } from "../../src/engine/stepper";
import type { StepperContext } from "../../src/engine/stepper";
import { Speculator } from "../../src/engine/speculative/speculator";
import type { SpeculativeConfig } from "../../src/engine/speculative/config";
import type { Proposer } from "../../src/engine/speculative/proposer";
import { BadWordMasks } from "../../src/engine/badWords";
import { RowMaskBuilder } from "../../src/engine/rowMasks";
import { EOS, FakeModel, VOCAB } from "./fakeModel";

export const EOS_IDS = [EOS];

export interface RequestSpec {
  id: number;
  arrivalStep: number;
  prompt: number[];
  params: SamplingParams;
  /** Which sample of its request this is (0 = the first; see runsBefore). */
  sampleIndex?: number;
  /** Abort at this step: before planning, or between the forward pass and apply. */
  abortAtStep?: number;
  abortMidStep?: boolean;
}

export interface MixSpec {
  label: string;
  policy: PolicyName;
  config: SchedulerConfig;
  numBlocks: number;
  blockSize: number;
  requests: RequestSpec[];
  /** Prefix caching (default on). */
  prefixCaching?: boolean;
  /** Speculative decoding: drafts from `proposer`, verified in the passes (absent = off). */
  speculation?: { config: SpeculativeConfig; proposer: Proposer };
  /** Penalty slots (default on): false sends every penalty list whole, every pass. */
  penaltySlots?: boolean;
}

export interface FinishRecord {
  tokens: number[];
  finishReason: SequenceFinishReason;
  count: number;
  /** The step it finished in. */
  step: number;
}

export interface MixResult {
  finished: Map<number, FinishRecord>;
  steps: number;
  preemptions: number;
  rejections: number;
  /** SplitFuse passes that filled the budget exactly / fell short (legitimately). */
  fullPasses: number;
  shortPasses: number;
  chunkedPrompts: number;
  /** Step of each request's first sampled token. */
  firstTokenStep: Map<number, number>;
  /** Prompt tokens admissions found in the prefix cache. */
  cachedTokens: number;
  /** Speculation: draft tokens verified, accepted, and passes that carried a draft. */
  draftTokens: number;
  acceptedTokens: number;
  draftPasses: number;
  /** Draft tokens accepted for sequences with penalties, and with bad_words. */
  penalizedAccepted: number;
  badWordsAccepted: number;
  /** Sample rows that carried a mask (per-row bad_words bans of drafted sequences). */
  maskedRows: number;
}

export function runMix(mix: MixSpec): MixResult {
  const { config, numBlocks, blockSize } = mix;
  const policy = getPolicy(mix.policy);
  const blocks = new KvCacheManager(numBlocks, blockSize, mix.prefixCaching ?? true);
  const queues = new SequenceQueues();
  // Penalty lists sent in pieces (penalty slots), as EngineCore sends them; the fake model
  // keeps the slots as the library does, so a slot out of step changes the output.
  const slots = mix.penaltySlots === false ? null : new PenaltySlots();
  // Row masks carry the per-row bad_words bans of drafted sequences, as EngineCore's do.
  const builder = new StepBatchBuilder(EOS_IDS, new RowMaskBuilder(VOCAB, [new BadWordMasks(VOCAB)]), slots);
  const model = new FakeModel(numBlocks, blockSize);
  const spec = mix.speculation ? new Speculator(mix.speculation.config, mix.speculation.proposer, { eosTokenIds: EOS_IDS }) : null;
  const ctx: StepperContext = {
    queues, blocks, stop: { eosTokenIds: EOS_IDS },
    onDraftVerified: spec ? (seq, proposed, accepted) => {
      spec.onVerified(seq, proposed, accepted);
      if (usesPenalties(seq.params)) result.penalizedAccepted += accepted;
      if (seq.params.badWords.length > 0) result.badWordsAccepted += accepted;
    } : undefined,
  };
  const policyConfig: SchedulerConfig = spec ? { ...config, specDisableBatchSize: spec.config.disableByBatchSize } : config;
  const pending = [...mix.requests].sort((a, b) => a.arrivalStep - b.arrivalStep);
  const result: MixResult = {
    finished: new Map(), steps: 0, preemptions: 0, rejections: 0, fullPasses: 0, shortPasses: 0, chunkedPrompts: 0,
    firstTokenStep: new Map(), cachedTokens: 0, draftTokens: 0, acceptedTokens: 0, draftPasses: 0,
    penalizedAccepted: 0, badWordsAccepted: 0, maskedRows: 0,
  };
  const fail = (m: string): never => {
    throw new Error(`[${mix.label}] step ${result.steps}: ${m}`);
  };
  const record = (seq: Sequence) => {
    slots?.release(seq.id);
    const r = result.finished.get(seq.id);
    if (r) r.count++;
    else result.finished.set(seq.id, { tokens: [...seq.outputIds], finishReason: seq.finishReason!, count: 1, step });
  };
  const abortAt = (step: number, mid: boolean) => {
    for (const r of mix.requests) {
      if (r.abortAtStep !== step || (r.abortMidStep ?? false) !== mid) continue;
      const seq = abort(r.id, ctx);
      if (seq) record(seq);
    }
  };
  const totalWork = mix.requests.reduce((s, r) => s + r.prompt.length + r.params.maxTokens, 0);
  const maxSteps = 50 * totalWork + 1000;
  let step = 0;
  let next = 0;
  let arrival = 0;
  while (next < pending.length || queues.size > 0) {
    if (queues.size === 0 && pending[next]!.arrivalStep > step) step = pending[next]!.arrivalStep;
    while (next < pending.length && pending[next]!.arrivalStep <= step) {
      const r = pending[next++]!;
      queues.add(new Sequence(r.id, arrival++, r.prompt, r.params, r.sampleIndex ?? 0));
    }
    abortAt(step, false);
    const runningBefore = [...queues.running];
    const uncomputed = new Map(runningBefore.map((s) => [s, s.numUncomputedTokens]));
    const proposals = spec?.propose(queues.running);
    const plan = schedule(policy, { running: queues.running, waiting: queues.waiting, blocks, proposals }, policyConfig);
    if (plan.entries.some((e) => e.draft)) result.draftPasses++;
    checkPassShape(plan, uncomputed, config, fail);
    const hashesBefore = hashedBlocks(blocks);
    commitPlan(plan, queues, blocks);
    for (const seq of plan.preempted) slots?.release(seq.id);
    checkNoCachedWrite(plan, blocks, hashesBefore, fail);
    for (const seq of plan.admitted) result.cachedTokens += plan.entries.find((e) => e.seq === seq)!.contextLen;
    for (const r of plan.rejected) record(r.seq);
    result.preemptions += plan.preempted.length;
    result.rejections += plan.rejected.length;
    if (policy.neverSkipsDecodes) checkBudgetFilled(plan, runningBefore, uncomputed, queues, blocks, config, result, fail);
    if (plan.entries.length > 0) {
      for (const e of plan.entries) if (!e.wantsToken && e.contextLen < e.seq.numPromptTokens) result.chunkedPrompts++;
      const batch = builder.build(plan, blocks);
      if (batch.rowMasks) for (const m of batch.rowMasks) if (m >= 0) result.maskedRows++;
      const sampled = model.step(batch);
      abortAt(step, true);
      for (const ev of applyStep(plan, sampled, ctx)) {
        if (!result.firstTokenStep.has(ev.seq.id)) result.firstTokenStep.set(ev.seq.id, step);
        if (ev.finishReason !== null) record(ev.seq);
      }
    } else if (plan.rejected.length === 0 && queues.size > 0) {
      fail(`no progress: ${queues.running.length} running, ${queues.waiting.length} waiting`);
    }
    checkAccounting(queues, blocks, fail);
    checkKvContents(queues, blocks, model, fail);
    step++;
    if (++result.steps > maxSteps) fail(`still running after ${maxSteps} steps (livelock?)`);
  }
  if (spec) {
    result.draftTokens = spec.stats.numDraftTokens;
    result.acceptedTokens = spec.stats.numAcceptedTokens;
  }
  if (blocks.numFreeBlocks !== numBlocks) fail(`${numBlocks - blocks.numFreeBlocks} blocks leaked`);
  for (let b = 0; b < numBlocks; b++) if (blocks.refCount(b) !== 0) fail(`block ${b} ends with ${blocks.refCount(b)} references`);
  return result;
}

/** Pass shapes per policy: SplitFuse may split; the baselines never do. */
function checkPassShape(plan: Plan, uncomputed: Map<Sequence, number>, config: SchedulerConfig, fail: (m: string) => never): void {
  if (plan.policy === "splitfuse") return;
  for (const e of plan.entries) {
    const whole = uncomputed.get(e.seq) ?? e.seq.numTokens - e.contextLen;
    if (ownTokens(e) !== whole) fail(`${plan.policy} split sequence ${e.seq.id}: ${e.numTokens} of ${whole}`);
  }
  if (plan.policy === "prefill-first" && plan.admitted.length > 0 && plan.entries.length !== plan.admitted.length) {
    fail("prefill-first mixed prompts and decodes in one pass");
  }
  if (plan.numTokens > config.tokenBudget && plan.entries.length !== 1) fail("over budget with more than one row");
}

/**
 * SplitFuse: a pass short of the budget means nothing more could go in: every running sequence
 * got all its uncomputed tokens, and the head of the queue could not be admitted.
 */
function checkBudgetFilled(
  plan: Plan, runningBefore: Sequence[], uncomputed: Map<Sequence, number>, queues: SequenceQueues,
  blocks: KvCacheManager, config: SchedulerConfig, result: MixResult, fail: (m: string) => never,
): void {
  if (plan.numTokens === config.tokenBudget) {
    result.fullPasses++;
    return;
  }
  result.shortPasses++;
  if (plan.entries.length >= config.maxSeqs) return;
  const planned = new Map(plan.entries.map((e) => [e.seq, ownTokens(e)]));
  const removed = new Set([...plan.preempted, ...plan.rejected.map((r) => r.seq)]);
  for (const seq of runningBefore) {
    if (removed.has(seq)) continue;
    if (planned.get(seq) !== uncomputed.get(seq)) fail(`short pass (${plan.numTokens}/${config.tokenBudget}) left tokens of running ${seq.id}`);
  }
  const head = queues.waiting[0];
  if (head === undefined || plan.preempted.length > 0) return;
  const running = queues.running.length;
  const kvBlocked = blocks.blocksFor(head.numTokens) + running > blocks.numFreeBlocks;
  if (running < config.maxSeqs && !kvBlocked) {
    fail(`short pass (${plan.numTokens}/${config.tokenBudget}) while waiting ${head.id} was admissible`);
  }
}

function checkAccounting(queues: SequenceQueues, blocks: KvCacheManager, fail: (m: string) => never): void {
  const refs = new Map<number, number>();
  for (const seq of queues.running) {
    const t = blocks.table(seq.id);
    if (seq.status !== "running" || t === undefined) fail(`running ${seq.id} is ${seq.status} / has no table`);
    if (t!.length * blocks.blockSize < seq.numComputedTokens) fail(`running ${seq.id}: ${t!.length} blocks < computed ${seq.numComputedTokens}`);
    if (seq.numUncomputedTokens < 1) fail(`running ${seq.id} has nothing left to compute`);
    const own = new Set<number>();
    for (let i = 0; i < t!.length; i++) {
      const b = t!.ids[i]!;
      if (own.has(b)) fail(`running ${seq.id} holds block ${b} twice`);
      own.add(b);
      refs.set(b, (refs.get(b) ?? 0) + 1);
    }
  }
  for (const seq of queues.waiting) {
    if (seq.status !== "waiting" || seq.numComputedTokens !== 0 || blocks.table(seq.id)) fail(`waiting ${seq.id} holds KV`);
  }
  // Admission takes a prefix and preemption the end: both lists stay in scheduling order.
  for (const list of [queues.running, queues.waiting]) {
    for (let i = 1; i < list.length; i++) {
      if (runsBefore(list[i]!, list[i - 1]!)) fail(`queues out of scheduling order at sequence ${list[i]!.id}`);
    }
  }
  // Reference counts are the tables' holdings; free means unreferenced; every hash maps back.
  for (let b = 0; b < blocks.numBlocks; b++) {
    const r = refs.get(b) ?? 0;
    if (blocks.refCount(b) !== r) fail(`block ${b}: ${blocks.refCount(b)} references, ${r} tables hold it`);
    if (blocks.isFree(b) !== (r === 0)) fail(`block ${b} is ${blocks.isFree(b) ? "free" : "not free"} with ${r} references`);
    const h = blocks.blockHash(b);
    if (h !== null && blocks.lookup(h) !== b) fail(`block ${b}'s hash maps to block ${blocks.lookup(h)}`);
  }
  if (refs.size + blocks.numFreeBlocks !== blocks.numBlocks) fail(`referenced ${refs.size} + free ${blocks.numFreeBlocks} != ${blocks.numBlocks}`);
  if (blocks.numSequences !== queues.running.length) fail("a finished or waiting sequence still holds a block table");
}

/**
 * Speculative rollback, checked against the fake model's KV: every computed position of a
 * running sequence holds its real token (accepted drafts stay, rejected ones were or will be
 * overwritten past the computed tokens), and every cached block holds exactly the tokens its
 * hash names, so no block that held rejected draft tokens was registered with them.
 */
function checkKvContents(queues: SequenceQueues, blocks: KvCacheManager, model: FakeModel, fail: (m: string) => never): void {
  const bs = blocks.blockSize;
  for (const seq of queues.running) {
    const t = blocks.table(seq.id)!;
    if (t.length > Math.max(1, blocks.blocksFor(seq.numTokens))) fail(`running ${seq.id} holds ${t.length} blocks for ${seq.numTokens} tokens`);
    for (let p = 0; p < seq.numComputedTokens; p++) {
      if (model.slot(t.ids[Math.floor(p / bs)]!, p) !== seq.tokenAt(p)) fail(`running ${seq.id}: position ${p} holds the wrong token`);
    }
    const hashes = seq.blockHashes;
    for (let i = 0; i < t.length; i++) {
      const h = blocks.blockHash(t.ids[i]!);
      if (h === null) continue;
      if (i >= hashes.length || hashes[i] !== h) fail(`running ${seq.id}: block ${t.ids[i]} (table index ${i}) is cached under another prefix`);
    }
  }
}

/** Every block's hash before a commit. */
function hashedBlocks(blocks: KvCacheManager): Map<number, string> {
  const out = new Map<number, string>();
  for (let b = 0; b < blocks.numBlocks; b++) {
    const h = blocks.blockHash(b);
    if (h !== null) out.set(b, h);
  }
  return out;
}

/**
 * A cached block is never written: a block a row writes either had no hash before the commit
 * or lost it (evicted, handed out fresh); only the blocks this pass fills get new hashes.
 */
function checkNoCachedWrite(plan: Plan, blocks: KvCacheManager, before: Map<number, string>, fail: (m: string) => never): void {
  const bs = blocks.blockSize;
  const registered = new Set(blocks.registeredInPass);
  for (const e of plan.entries) {
    const t = blocks.table(e.seq.id)!;
    for (let k = Math.floor(e.contextLen / bs); k < Math.ceil((e.contextLen + e.numTokens) / bs); k++) {
      const b = t.ids[k]!;
      const h = before.get(b);
      if (h !== undefined && blocks.blockHash(b) === h && !registered.has(b)) fail(`sequence ${e.seq.id} writes cached block ${b} (table index ${k})`);
    }
  }
}
