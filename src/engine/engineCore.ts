/**
 * EngineCore: one replica's engine, synchronous. Each step() is one forward pass, in two halves
 * so that the host works while the forward runs (overlapped steps):
 *
 *   launchStep: schedule (policy, pure) → commitPlan → StepBatchBuilder → NativeEngine.launch
 *   (the host computes the pass's grammar masks: prepareMasks, or synchronously in finishStep)
 *   finishStep: masks → NativeEngine.finish (fg_step_finish) → applyStep (tokens, stop
 *   conditions, frees) → per-sample deltas (detokenized text)
 *
 * With overlapSteps off, finishStep builds the batch with its masks and calls fg_step once.
 *
 * Its parts live beside it: loading (engineLoad.ts), admission (requestAdmission.ts), the live
 * requests (requestTable.ts), logprobs (logprobs.ts), deltas (requestDeltas.ts), metrics
 * (engineStats.ts). It runs inside the engine Worker (engineWorker.ts) for serving, or in-process
 * for `fastgen generate` and tests (runToCompletion.ts).
 */
import { AllowedTokenMasks } from "./allowedTokens";
import { StepBatchBuilder } from "./batch";
import { loadModel, type LoadedModel } from "./engineLoad";
import { EngineStats } from "./engineStats";
import { KvCacheManager } from "./kvCache/kvCacheManager";
import { KvEventRecorder } from "./kvCache/kvEvents";
import { recordPromptLogprobs, tokenLogprob } from "./logprobs";
import { DEFAULT_ENGINE_OPTIONS, type EngineOptions } from "./options";
import { SequenceQueues } from "./queues";
import { PenaltySlots } from "./penaltySlots";
import { RequestAdmission } from "./requestAdmission";
import { takeDeltas } from "./requestDeltas";
import { RequestTable, type RequestState, type StepItem } from "./requestTable";
import { RowMaskBuilder, type RowMaskSource } from "./rowMasks";
import type { SamplingOptions } from "./samplingOptions";
import { commitPlan, getPolicy, schedule, validateSchedulerConfig } from "./scheduler";
import type { Plan, SchedulerConfig, SchedulerPolicy } from "./scheduler";
import type { Speculator } from "./speculative/speculator";
import type { StepBatch } from "./stepBatch";
import { abort as abortSequence, applyStep, finishSequence, type StepperContext } from "./stepper";
import { EngineStepError, RequestRejectedError, type EngineMetrics, type GenerationDelta } from "./types";
import type { WorkerReadyInfo } from "./workerProtocol";
import { EngineGrammars } from "../grammar/engineGrammars";
import type { SequenceGrammar } from "../grammar/sequenceGrammar";
import { FastgenError, type LateMasks, type NativeEngine, type StepResult } from "../native";
import type { Tokenizer } from "../tokenizer/tokenizer";

export type { StepItem } from "./requestTable";

/** The pass between launchStep() and finishStep(). */
interface PassInFlight {
  readonly plan: Plan;
  /** Requests whose news this pass carries besides its rows' (rejections). */
  readonly touched: Set<RequestState>;
  /** The launched batch (overlapSteps; null: finishStep builds it, or the plan is empty). */
  batch: StepBatch | null;
  /** A build or launch that failed: finishStep fails the plan with it. */
  error: Error | null;
}

export class EngineCore {
  private readonly blocks: KvCacheManager;
  private readonly queues = new SequenceQueues();
  private readonly builder: StepBatchBuilder;
  private readonly policy: SchedulerPolicy;
  private readonly schedulerConfig: SchedulerConfig;
  private readonly ctx: StepperContext;
  private readonly native: NativeEngine;
  /** Speculative decoding, when on: proposes drafts before each pass and learns from verification. */
  private readonly speculator: Speculator | null;
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
  private pass: PassInFlight | null = null;
  /** options.overlapSteps, else on for the CPU backend only (see EngineOptions.overlapSteps). */
  private readonly overlap: boolean;
  /** Which engine slot keeps each sequence's penalty list (penaltySlots.ts). */
  private readonly penaltySlots = new PenaltySlots();

  private constructor(loaded: LoadedModel, readonly options: EngineOptions) {
    const { native, tokenizer, speculator } = loaded;
    this.native = native;
    this.tokenizer = tokenizer;
    this.modelName = loaded.modelName;
    this.maxModelLen = loaded.maxModelLen;
    this.speculator = speculator;
    const info = native.info();
    this.overlap = options.overlapSteps ?? info.backend === "cpu";
    this.grammars = new EngineGrammars({
      modelDir: loaded.modelDir, vocabSize: info.vocabSize, eosTokenIds: tokenizer.eosTokenIds, idToToken: (id) => tokenizer.idToToken(id),
    });
    this.admission = new RequestAdmission(tokenizer, info.vocabSize, this.maxModelLen, this.grammars);
    this.kvEvents = options.enablePrefixCaching ? new KvEventRecorder(info.blockSize) : null;
    this.blocks = new KvCacheManager(info.numBlocks, info.blockSize, options.enablePrefixCaching, this.kvEvents);
    this.policy = getPolicy(options.policy);
    this.schedulerConfig = { tokenBudget: options.maxBatchTokens, maxSeqs: options.maxSeqs, specDisableBatchSize: speculator?.config.disableByBatchSize };
    validateSchedulerConfig(this.schedulerConfig);
    const eos = tokenizer.eosTokenIds;
    const samples = this.requests.samples;
    // Allowed-token masks of sampled rows: a static set (allowed_token_ids) and grammars (structured outputs).
    const grammarMasks: RowMaskSource = {
      maskFor: (seq, ahead) => (this.grammars.active ? this.grammars.maskFor(samples.get(seq.id)?.grammar, seq.outputIds, ahead) : null),
    };
    this.builder = new StepBatchBuilder(eos, new RowMaskBuilder(info.vocabSize, [new AllowedTokenMasks(info.vocabSize), grammarMasks]), this.penaltySlots);
    this.ctx = {
      queues: this.queues,
      blocks: this.blocks,
      stop: { eosTokenIds: eos, maxModelLen: this.maxModelLen },
      stopStringHook: (seq) => {
        const s = samples.get(seq.id);
        return s ? s.out.catchUp(seq.outputIds) : null;
      },
      onDraftVerified: speculator ? (seq, proposed, accepted) => speculator.onVerified(seq, proposed, accepted) : undefined,
    };
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
   * Computes the grammar masks of the pass in flight (between launchStep and finishStep, while its
   * forward runs), or of the next one; null when none is missing (no await).
   */
  prepareMasks(): Promise<void> | null {
    return this.grammars.prepareMasks();
  }

  hasWork(): boolean {
    return this.queues.size > 0;
  }

  /** Whether a launched pass awaits finishStep(). */
  get passInFlight(): boolean {
    return this.pass !== null;
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
    if (this.pass !== null) throw new Error("launchStep: a pass is in flight (finishStep first)");
    const t0 = performance.now();
    try {
      this.pass = this.launchInner();
    } finally {
      this.timing.stepMs += performance.now() - t0;
    }
  }

  /**
   * Ends a pass in flight without applying it (after an internal error; the caller aborts its
   * requests). Its blocks are not trusted as cache hits.
   */
  dropStep(): void {
    if (this.pass === null) return;
    this.pass = null;
    this.native.dropPass();
    this.blocks.failPass();
  }

  /** Completes the launched pass and returns the new output of every request it touched. */
  finishStep(): StepItem[] {
    const pass = this.pass;
    if (pass === null) throw new Error("finishStep: no pass in flight (launchStep first)");
    this.pass = null;
    const t0 = performance.now();
    try {
      return this.finishInner(pass);
    } finally {
      this.timing.steps++;
      this.timing.stepMs += performance.now() - t0;
    }
  }

  private launchInner(): PassInFlight {
    const requests = this.requests;
    const counters = this.stats.counters;
    // A grammar-constrained sequence does not speculate: its masks are built for one row a pass
    // (a matcher advanced through the draft, rolled back on rejection, is the way to add it).
    const proposals = this.speculator?.propose(
      this.grammars.active ? this.queues.running.filter((seq) => !requests.samples.get(seq.id)?.grammar) : this.queues.running,
    );
    const plan = schedule(this.policy, { running: this.queues.running, waiting: this.queues.waiting, blocks: this.blocks, proposals }, this.schedulerConfig);
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
    const pass: PassInFlight = { plan, touched, batch: null, error: null };
    if (plan.entries.length === 0 || !this.overlap) return pass;
    try {
      const batch = this.builder.build(plan, this.blocks, /*withMasks=*/ false);
      this.timeNative(() => this.native.launch(batch));
      pass.batch = batch;
    } catch (e) {
      pass.error = e as Error;
    }
    return pass;
  }

  private finishInner(pass: PassInFlight): StepItem[] {
    const { plan, touched } = pass;
    const requests = this.requests;
    const counters = this.stats.counters;
    if (plan.entries.length > 0) {
      let result: StepResult;
      let batch: StepBatch;
      try {
        if (pass.error) throw pass.error;
        if (pass.batch) {
          batch = pass.batch;
          const late = this.lateMasks(plan, batch);
          result = this.timeNative(() => this.native.finish(late));
        } else {
          const built = this.builder.build(plan, this.blocks);
          batch = built;
          result = this.timeNative(() => this.native.step(built));
        }
      } catch (e) {
        if (e instanceof FastgenError && e.code === "device") this.fatalError = e;
        return this.failPlan(plan, e as Error, touched);
      }
      const stride = batch.numLogprobs ?? 0;
      recordPromptLogprobs(plan, batch, result, stride, requests.samples);
      counters.steps++;
      for (const ev of applyStep(plan, { rowIndptr: batch.rowIndptr, ids: result.ids }, this.ctx)) {
        const sample = requests.sampleOf(ev.seq.id);
        counters.generationTokens++;
        if (sample.grammar && !sample.grammar.accept(ev.tokenId) && !ev.seq.isFinished) {
          // Only a token the mask did not hold (an all-masked row draws id 0): stop rather than
          // generate text the constraint can no longer match.
          finishSequence(ev.seq, "stop", this.ctx);
        }
        sample.out.pendingIds.push(ev.tokenId);
        const k = sample.seq.params.logprobs;
        if (k > 0) sample.out.pendingLogprobs.push(tokenLogprob(result, ev.row, ev.tokenId, k, stride));
        touched.add(sample.request);
      }
    }
    return [...touched].map((r) => this.collect(r));
  }

  /** The launched pass's masks (host work its forward hides); a failure drops the pass. */
  private lateMasks(plan: Plan, batch: StepBatch): LateMasks | undefined {
    try {
      return this.builder.lateMasks(plan, batch) ?? undefined;
    } catch (e) {
      this.native.dropPass();
      throw e;
    }
  }

  /** Runs a native call, adding its host time to timing.nativeMs. */
  private timeNative<T>(call: () => T): T {
    const t0 = performance.now();
    try {
      return call();
    } finally {
      this.timing.nativeMs += performance.now() - t0;
    }
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
    return this.stats.metrics(this.queues, this.blocks, this.speculator);
  }

  /** Test hook: the next `n` forward passes fail inside libfastgen. */
  debugFailNextSteps(n: number, device = false): void {
    this.native.debugFailNextSteps(n, device);
  }

  destroy(): void {
    this.pass = null; // a pass in flight is ended (and dropped) by native.destroy()
    this.abortAll();
    this.speculator?.destroy();
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
