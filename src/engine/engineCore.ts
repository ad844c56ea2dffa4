/**
 * EngineCore: one replica's engine, synchronous. Each step() is one forward pass, in two halves
 * so that the host works while the forward runs (overlapped steps):
 *
 *   launchStep: schedule (policy, pure) → commitPlan → PassLifecycle.launch (NativeEngine.launch)
 *   prepareMasks: asks the grammar Worker for the pass's masks, which it computes while the
 *               forward runs; the host awaits them, bounded, before finishStep
 *   finishStep: PassLifecycle.finish (masks → fg_step_finish → applyStep) → per-sample deltas
 *
 * With overlapSteps off, finishStep builds the batch with its masks and calls fg_step once; the
 * masks of the next pass are asked for at the end of finishStep, so the Worker computes them while
 * the host posts the deltas and plans. (With overlap on, not: on the 2-core VM the woken Worker
 * preempted the engine thread there, delaying the launch; batch 64 lost ~20% against ~2%.)
 *
 * Its parts live beside it: loading (engineLoad.ts), admission (requestAdmission.ts), the pass
 * from launch to applied tokens (passLifecycle.ts), what passes wait for of the grammar Worker
 * (grammarPasses.ts), the live requests (requestTable.ts), deltas (requestDeltas.ts), metrics
 * (engineStats.ts). It runs inside the engine Worker (engineWorker.ts)
 * for serving, or in-process for `fastgen generate` and tests (runToCompletion.ts).
 */
import { loadModel, type LoadedModel } from "./engineLoad";
import { EngineStats } from "./engineStats";
import { GrammarPasses } from "./grammarPasses";
import { KvCacheManager } from "./kvCache/kvCacheManager";
import { KvEventRecorder } from "./kvCache/kvEvents";
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from "./options";
import { SequenceQueues } from "./queues";
import { PassLifecycle } from "./passLifecycle";
import { PenaltySlots } from "./penaltySlots";
import { RequestAdmission } from "./requestAdmission";
import { takeDeltas } from "./requestDeltas";
import { RequestTable, type RequestState, type StepItem } from "./requestTable";
import type { SamplingOptions } from "./samplingOptions";
import { commitPlan, getPolicy, schedule, validateSchedulerConfig, type Plan, type SchedulerConfig, type SchedulerPolicy } from "./scheduler";
import type { Speculator } from "./speculative/speculator";
import { abort as abortSequence, finishSequence, type StepperContext } from "./stepper";
import { EngineStepError, RequestRejectedError, type EngineMetrics, type GenerationDelta } from "./types";
import type { WorkerReadyInfo } from "./workerProtocol";
import { EngineGrammars } from "../grammar/engineGrammars";
import type { SequenceGrammar } from "../grammar/sequenceGrammar";
import { FastgenError, type NativeEngine } from "../native";
import type { Tokenizer } from "../tokenizer/tokenizer";

export type { StepItem } from "./requestTable";

export class EngineCore {
  private readonly blocks: KvCacheManager;
  private readonly queues = new SequenceQueues();
  private readonly policy: SchedulerPolicy;
  private readonly schedulerConfig: SchedulerConfig;
  private readonly ctx: StepperContext;
  private readonly native: NativeEngine;
  /** Speculative decoding, when on: proposes drafts before each pass and learns from verification. */
  private readonly speculator: Speculator | null;
  /** When the pass in flight began planning (performance.now()): the speculation governor times passes. */
  private passStartedAt = 0;
  private readonly requests = new RequestTable();
  private readonly admission: RequestAdmission;
  private readonly stats = new EngineStats();
  /**
   * Set when a forward pass failed with FG_ERR_DEVICE (a GPU fault, or a tensor-parallel rank that
   * failed or timed out): the native engine cannot run another pass, so the engine refuses new
   * work and the worker reports it dead (/health 503) instead of failing request after request.
   */
  fatalError: Error | null = null;
  readonly tokenizer: Tokenizer;
  readonly modelName: string;
  readonly maxModelLen: number;
  /** Host milliseconds summed over passes: the whole step() and the native forward pass in it. */
  readonly timing = this.stats.timing;
  /** The prefix cache's changes since the last drain, for cache-aware routing (null: caching off). */
  readonly kvEvents: KvEventRecorder | null;
  /** Grammar-constrained decoding (src/grammar/): matchers, masks, the compiled-grammar cache. */
  readonly grammars: EngineGrammars;
  /** The pass between launchStep() and finishStep() (passLifecycle.ts). */
  private readonly passes: PassLifecycle;
  /** Which engine slot keeps each sequence's penalty list (penaltySlots.ts). */
  private readonly penaltySlots = new PenaltySlots();
  /** Where passes meet the grammar Worker: who sits out a compile, what a pass waits for. */
  private readonly grammarPasses: GrammarPasses;
  /** Ask for the next pass's masks when a pass is applied (overlapSteps off; see the top). */
  private readonly prefetchMasks: boolean;

  private constructor(loaded: LoadedModel, readonly options: EngineOptions) {
    const { native, tokenizer, speculator } = loaded;
    this.native = native;
    this.tokenizer = tokenizer;
    this.modelName = loaded.modelName;
    this.maxModelLen = loaded.maxModelLen;
    this.speculator = speculator;
    const info = native.info();
    this.grammars = new EngineGrammars({ modelDir: loaded.modelDir, vocabSize: info.vocabSize, eosTokenIds: tokenizer.eosTokenIds }, {
      workers: options.grammarWorkers,
      gpu: info.backend !== "cpu",
      compileTimeoutMs: options.grammarCompileTimeout * 1000,
    });
    this.grammarPasses = new GrammarPasses(this.grammars, this.requests);
    this.admission = new RequestAdmission(tokenizer, info.vocabSize, this.maxModelLen, this.grammars);
    this.kvEvents = options.enablePrefixCaching ? new KvEventRecorder(info.blockSize) : null;
    this.blocks = new KvCacheManager(info.numBlocks, info.blockSize, options.enablePrefixCaching, this.kvEvents);
    this.policy = getPolicy(options.policy);
    this.schedulerConfig = { tokenBudget: options.maxBatchTokens, maxSeqs: options.maxSeqs, specDisableBatchSize: speculator?.config.disableByBatchSize };
    validateSchedulerConfig(this.schedulerConfig);
    const samples = this.requests.samples;
    this.ctx = {
      queues: this.queues,
      blocks: this.blocks,
      stop: { eosTokenIds: tokenizer.eosTokenIds, maxModelLen: this.maxModelLen },
      stopStringHook: (seq) => {
        const s = samples.get(seq.id);
        return s ? s.out.catchUp(seq.outputIds) : null;
      },
      onDraftVerified: speculator ? (seq, proposed, accepted) => speculator.onVerified(seq, proposed, accepted) : undefined,
    };
    // overlapSteps absent: on (see EngineOptions.overlapSteps).
    const overlap = options.overlapSteps ?? true;
    this.prefetchMasks = !overlap;
    const { blocks, requests, ctx, stats, grammars, penaltySlots } = this;
    this.passes = new PassLifecycle({ native, blocks, requests, ctx, stats, grammars, penaltySlots, vocabSize: info.vocabSize, overlap });
  }

  /** Loads `modelDir` (config, weights, tokenizer) into a native engine and sizes its KV pool. */
  static async load(
    modelDir: string,
    options: Partial<EngineOptions> = {},
    onProgress?: (done: number, total: number) => void,
  ): Promise<EngineCore> {
    const opts: EngineOptions = { ...DEFAULT_ENGINE_OPTIONS, ...options };
    return new EngineCore(loadModel(modelDir, opts, onProgress), opts);
  }

  readyInfo(): WorkerReadyInfo {
    const info = this.native.info();
    return { modelName: this.modelName, maxModelLen: this.maxModelLen, numBlocks: info.numBlocks, blockSize: info.blockSize, backend: info.backend };
  }

  /**
   * Queues a request of `sampling.n` samples.
   * @throws RequestRejectedError when it can never run (too long, bad parameters, duplicate id).
   */
  addRequest(id: string, promptIds: number[], sampling: SamplingOptions, firstSample = 0, grammars?: SequenceGrammar[]): void {
    if (this.fatalError) throw new Error(`engine failed: ${this.fatalError.message}`);
    if (this.requests.has(id)) throw new RequestRejectedError(`duplicate request id ${id}`);
    const request = this.admission.build(id, promptIds, sampling, firstSample, grammars);
    this.requests.add(request);
    for (const s of request.samples) this.queues.add(s.seq);
    this.stats.counters.promptTokens += promptIds.length;
    this.grammarPasses.arrived();
  }

  /**
   * addRequest, after compiling the request's output constraint (cached by key) and making one
   * matcher per sample. A request aborted while its grammar compiles is dropped.
   * @throws RequestRejectedError also for a constraint XGrammar cannot compile
   */
  async addRequestAsync(id: string, promptIds: number[], sampling: SamplingOptions, firstSample = 0): Promise<void> {
    if (!sampling.structured) return this.addRequest(id, promptIds, sampling, firstSample);
    if (this.requests.has(id) || this.admission.isCompiling(id)) throw new RequestRejectedError(`duplicate request id ${id}`);
    const grammars = await this.admission.compile(id, sampling);
    if (!grammars) return; // aborted while compiling
    try {
      this.addRequest(id, promptIds, sampling, firstSample, grammars);
    } catch (e) {
      for (const g of grammars) this.grammars.release(g);
      throw e;
    }
  }

  /**
   * Waits for the grammar masks of the pass in flight (between launchStep and finishStep, while
   * its forward runs; the grammar Worker computes them, at most EngineGrammars.maskTimeoutMs);
   * null when none is missing (no await). When the pass is empty because every sequence waits
   * for a compile, waits for the grammar Worker's next answer or a new request instead.
   */
  prepareMasks(): Promise<void> | null {
    return this.grammarPasses.prepareMasks(this.passes.plan);
  }

  hasWork(): boolean {
    return this.queues.size > 0;
  }

  /** Whether a launched pass awaits finishStep(). */
  get passInFlight(): boolean {
    return this.passes.inFlight;
  }

  /** Runs one forward pass and returns the new output of every request it touched. */
  step(): StepItem[] {
    this.launchStep();
    return this.finishStep();
  }

  /**
   * Plans the next pass, commits it and starts its forward pass; finishStep() completes it. The
   * masks of its rows are best computed in between (prepareMasks), while the forward runs.
   */
  launchStep(): void {
    if (this.passes.inFlight) throw new Error("launchStep: a pass is in flight (finishStep first)");
    const t0 = performance.now();
    this.passStartedAt = t0;
    try {
      const { plan, touched } = this.planPass();
      this.passes.launch(plan, touched);
    } finally {
      this.timing.stepMs += performance.now() - t0;
    }
  }

  /**
   * Ends a pass in flight without applying it (after an internal error; the caller aborts its
   * requests). Its blocks are not trusted as cache hits.
   */
  dropStep(): void {
    this.passes.drop();
  }

  /** Completes the launched pass and returns the new output of every request it touched. */
  finishStep(): StepItem[] {
    if (!this.passes.inFlight) throw new Error("finishStep: no pass in flight (launchStep first)");
    const t0 = performance.now();
    try {
      const failed = this.grammarPasses.failed().map(([r, e]) => this.fail(r, new EngineStepError(`structured output failed: ${e.message}`)));
      const { plan, touched, error } = this.passes.finish();
      if (error) {
        if (error instanceof FastgenError && error.code === "device") this.fatalError = error;
        return [...failed, ...this.failPlan(plan, error, touched)];
      }
      this.speculator?.onPassEnd(plan, performance.now() - this.passStartedAt);
      const items = [...touched].map((r) => this.collect(r));
      if (this.prefetchMasks) this.grammars.requestMasks();
      return failed.length > 0 ? [...failed, ...items] : items;
    } finally {
      this.timing.steps++;
      this.timing.stepMs += performance.now() - t0;
    }
  }

  /** Schedules and commits the next pass; the requests it rejected carry news of their own. */
  private planPass(): { plan: Plan; touched: Set<RequestState> } {
    const requests = this.requests;
    const counters = this.stats.counters;
    // A grammar-constrained sequence does not speculate: its masks are built for one row a pass
    // (a matcher advanced through the draft, rolled back on rejection, is the way to add it).
    const proposals = this.speculator?.propose(
      this.grammars.active ? this.queues.running.filter((seq) => !requests.samples.get(seq.id)?.grammar) : this.queues.running,
    );
    const { running, waiting, config } = this.grammarPasses.schedulable(this.queues, this.schedulerConfig);
    const plan = schedule(this.policy, { running, waiting, blocks: this.blocks, proposals }, config);
    commitPlan(plan, this.queues, this.blocks);
    for (const seq of plan.preempted) this.penaltySlots.release(seq.id); // re-admitted: sent whole again
    counters.preemptions += plan.preempted.length;
    for (const seq of plan.admitted) {
      const r = requests.sampleOf(seq.id).request;
      if (r.arrivedAt >= 0) this.stats.queueTime.observe((performance.now() - r.arrivedAt) / 1000);
      r.arrivedAt = -1;
    }
    if (plan.numTokens > 0) this.stats.iterationTokens.observe(plan.numTokens);
    const touched = new Set<RequestState>();
    for (const r of plan.rejected) {
      const request = requests.sampleOf(r.seq.id).request;
      // Before any output the request can never run: it fails (collect). After some, it ran out of room: "length".
      if (r.finishReason === "rejected") request.rejection ??= r.message;
      touched.add(request);
    }
    return { plan, touched };
  }

  /** Aborts a request wherever it is; returns its closing deltas (empty if unknown). */
  abort(id: string): GenerationDelta[] {
    this.admission.abortCompiling(id);
    const request = this.requests.get(id);
    if (!request) return [];
    for (const s of request.samples) if (!s.seq.isFinished) abortSequence(s.seq.id, this.ctx);
    return this.collect(request).deltas;
  }

  /** Aborts every request (shutdown, or after an internal error); returns their ids. */
  abortAll(): string[] {
    const ids = this.requests.ids();
    for (const id of ids) this.abort(id);
    return ids;
  }

  metrics(): EngineMetrics {
    return this.stats.metrics(this.queues, this.blocks, this.speculator, this.grammars);
  }

  /** Test hook: the next `n` forward passes fail inside libfastgen. */
  debugFailNextSteps(n: number, device = false): void {
    this.native.debugFailNextSteps(n, device);
  }

  destroy(): void {
    this.passes.abandon(); // a pass in flight is ended (and dropped) by native.destroy()
    this.abortAll();
    this.speculator?.destroy();
    this.grammars.destroy();
    this.native.destroy();
  }

  /** A failed forward pass fails the requests in it (their blocks are freed); the rest go on. */
  private failPlan(plan: Plan, error: Error, touched: Set<RequestState>): StepItem[] {
    this.blocks.failPass(); // the blocks this pass was to fill hold no KV: never a cache hit
    const failed = new Set<RequestState>();
    for (const e of plan.entries) {
      const sample = this.requests.samples.get(e.seq.id); // gone: aborted while the pass ran
      if (sample && !e.seq.isFinished) failed.add(sample.request);
    }
    const items: StepItem[] = [];
    for (const r of failed) items.push(this.fail(r, new EngineStepError(`forward pass failed: ${error.message}`)));
    for (const r of touched) if (!failed.has(r)) items.push(this.collect(r));
    return items;
  }

  /** The request's news for its client (deltas, or its failure); forgets it once it is over. */
  private collect(request: RequestState): StepItem {
    if (request.rejection !== null) return this.fail(request, new RequestRejectedError(`the request can never fit in the KV cache: ${request.rejection}`));
    const deltas: GenerationDelta[] = [];
    if (takeDeltas(request, deltas)) this.forget(request);
    return { id: request.id, deltas };
  }

  /** Fails `request`: its unfinished samples end (their blocks are freed) and it is forgotten. */
  private fail(request: RequestState, error: Error): StepItem {
    for (const s of request.samples) if (!s.seq.isFinished) finishSequence(s.seq, "abort", this.ctx);
    this.forget(request);
    return { id: request.id, deltas: [], error };
  }

  private forget(request: RequestState): void {
    if (!this.requests.remove(request)) return;
    this.stats.counters.finished++;
    for (const s of request.samples) {
      this.penaltySlots.release(s.seq.id);
      if (s.grammar) this.grammars.release(s.grammar);
      this.speculator?.release(s.seq.id);
    }
  }
}
