/**
 * PassLifecycle: one committed plan's forward pass, from launch to its tokens applied. EngineCore
 * plans and commits the pass before it and turns the touched requests into news after it.
 *
 *   launch: overlapSteps on: build the batch without masks → NativeEngine.launch (fg_step_launch);
 *           off (or an empty plan): nothing yet
 *   finish: overlapSteps on: late masks (host work the forward hid) → NativeEngine.finish;
 *           off: build the batch with its masks → NativeEngine.step (fg_step)
 *           then applyStep (tokens, stop conditions, frees) and each sample's new ids/logprobs
 *   drop:   ends the pass unapplied (after an internal error); its blocks are never a cache hit
 *
 * A build, launch or forward that fails is not thrown: finish() returns the pass with `error`
 * set and nothing applied, and EngineCore fails the plan's requests.
 */
import { AllowedTokenMasks } from "./allowedTokens";
import { BadWordMasks } from "./badWords";
import { StepBatchBuilder } from "./batch";
import type { EngineStats } from "./engineStats";
import type { KvCacheManager } from "./kvCache/kvCacheManager";
import { recordPromptLogprobs, tokenLogprob } from "./logprobs";
import type { PenaltySlots } from "./penaltySlots";
import type { RequestState, RequestTable } from "./requestTable";
import { RowMaskBuilder, type RowMaskSource } from "./rowMasks";
import type { Plan } from "./scheduler";
import type { StepBatch } from "./stepBatch";
import { applyStep, finishSequence, type StepperContext } from "./stepper";
import type { EngineGrammars } from "../grammar/engineGrammars";
import type { LateMasks, NativeEngine, StepResult } from "../native";

/** The pass between launch() and finish(). */
export interface PassInFlight {
  readonly plan: Plan;
  /** Requests whose news this pass carries besides its rows' (rejections). */
  readonly touched: Set<RequestState>;
  /** The launched batch (overlapSteps; null: finish() builds it, or the plan is empty). */
  batch: StepBatch | null;
  /** A build, launch or forward that failed: EngineCore fails the plan with it. */
  error: Error | null;
}

/** EngineCore's parts a pass reads and writes. */
export interface PassDeps {
  readonly native: NativeEngine;
  readonly blocks: KvCacheManager;
  readonly requests: RequestTable;
  readonly ctx: StepperContext;
  readonly stats: EngineStats;
  readonly grammars: EngineGrammars;
  readonly penaltySlots: PenaltySlots;
  readonly vocabSize: number;
  /** Launch the forward before the masks are computed (EngineOptions.overlapSteps). */
  readonly overlap: boolean;
}

export class PassLifecycle {
  private pass: PassInFlight | null = null;
  private readonly builder: StepBatchBuilder;

  constructor(private readonly deps: PassDeps) {
    const { grammars, requests, vocabSize } = deps;
    // Allowed-token masks of sampled rows: a static set (allowed_token_ids), grammars (structured
    // outputs) and the bad_words bans of speculative verification rows.
    const grammarMasks: RowMaskSource = {
      maskFor: (seq, ahead) => (grammars.active ? grammars.maskFor(requests.samples.get(seq.id)?.grammar, seq.outputIds, ahead) : null),
    };
    const masks = new RowMaskBuilder(vocabSize, [new AllowedTokenMasks(vocabSize), grammarMasks, new BadWordMasks(vocabSize)]);
    this.builder = new StepBatchBuilder(deps.ctx.stop.eosTokenIds, masks, deps.penaltySlots);
  }

  /** Whether a launched pass awaits finish(). */
  get inFlight(): boolean {
    return this.pass !== null;
  }

  /** The plan of the pass in flight (null: none). */
  get plan(): Plan | null {
    return this.pass?.plan ?? null;
  }

  /** Starts the pass of the committed `plan` (its forward, with overlapSteps on). */
  launch(plan: Plan, touched: Set<RequestState>): void {
    if (this.pass !== null) throw new Error("PassLifecycle.launch: a pass is in flight");
    const pass: PassInFlight = { plan, touched, batch: null, error: null };
    this.pass = pass;
    if (plan.entries.length === 0 || !this.deps.overlap) return;
    try {
      const batch = this.builder.build(plan, this.deps.blocks, /*withMasks=*/ false);
      this.timeNative(() => this.deps.native.launch(batch), true);
      pass.batch = batch;
    } catch (e) {
      pass.error = e as Error;
    }
  }

  /**
   * Completes the pass in flight and applies its tokens; adds every request with a new token to
   * `touched`. On failure the pass comes back with `error` set and nothing applied.
   */
  finish(): PassInFlight {
    const pass = this.pass;
    if (pass === null) throw new Error("PassLifecycle.finish: no pass in flight");
    this.pass = null;
    const { plan } = pass;
    if (plan.entries.length === 0) return pass;
    let result: StepResult;
    let batch: StepBatch;
    try {
      if (pass.error) throw pass.error;
      if (pass.batch) {
        batch = pass.batch;
        const late = this.lateMasks(plan, batch);
        result = this.timeNative(() => this.deps.native.finish(late));
      } else {
        const built = this.builder.build(plan, this.deps.blocks);
        batch = built;
        result = this.timeNative(() => this.deps.native.step(built));
      }
    } catch (e) {
      pass.error = e as Error;
      return pass;
    }
    this.apply(pass, batch, result);
    return pass;
  }

  /** Ends the pass in flight without applying it; its blocks are not trusted as cache hits. */
  drop(): void {
    if (this.pass === null) return;
    this.pass = null;
    this.deps.native.dropPass();
    this.deps.blocks.failPass();
  }

  /** Forgets the pass in flight: the native engine's destroy() ends it. */
  abandon(): void {
    this.pass = null;
  }

  /** Applies a finished forward: tokens, stop conditions, and each sample's new ids and logprobs. */
  private apply(pass: PassInFlight, batch: StepBatch, result: StepResult): void {
    const { requests, ctx } = this.deps;
    const counters = this.deps.stats.counters;
    const stride = batch.numLogprobs ?? 0;
    recordPromptLogprobs(pass.plan, batch, result, stride, requests.samples);
    counters.steps++;
    for (const ev of applyStep(pass.plan, { rowIndptr: batch.rowIndptr, ids: result.ids }, ctx)) {
      const sample = requests.sampleOf(ev.seq.id);
      counters.generationTokens++;
      const g = sample.grammar;
      if (g && (!g.accept(ev.tokenId) || g.isTerminated) && !ev.seq.isFinished) {
        // A token the mask did not hold (an all-masked row draws id 0): stop rather than generate
        // text the constraint can no longer match. A complete grammar (its stop token accepted,
        // with ignore_eos) allows nothing more either.
        finishSequence(ev.seq, "stop", ctx);
      }
      sample.out.pendingIds.push(ev.tokenId);
      const k = sample.seq.params.logprobs;
      if (k > 0) sample.out.pendingLogprobs.push(tokenLogprob(result, ev.row, ev.tokenId, k, stride));
      pass.touched.add(sample.request);
    }
  }

  /** The launched pass's masks (host work its forward hides); a failure drops the pass. */
  private lateMasks(plan: Plan, batch: StepBatch): LateMasks | undefined {
    try {
      return this.builder.lateMasks(plan, batch) ?? undefined;
    } catch (e) {
      this.deps.native.dropPass();
      throw e;
    }
  }

  /** Runs a native call, adding its host time to timing.nativeMs (and launchMs for a launch). */
  private timeNative<T>(call: () => T, launch = false): T {
    const t0 = performance.now();
    try {
      return call();
    } finally {
      const ms = performance.now() - t0;
      this.deps.stats.timing.nativeMs += ms;
      if (launch) this.deps.stats.timing.launchMs += ms;
    }
  }
}
