/**
 * EngineCore: one replica's engine, synchronous. Each step() is one forward pass:
 *
 *   schedule (policy, pure) → commitPlan → StepBatchBuilder → NativeEngine.step (fg_step)
 *   → applyStep (tokens, stop conditions, frees) → per-sample deltas (detokenized text)
 *
 * It runs inside the engine Worker (engineWorker.ts) for serving, or in-process for
 * `fastgen generate` and tests (runToCompletion.ts).
 */
import { AllowedTokenMasks, allowedTokenIdsProblem } from "./allowedTokens";
import { StepBatchBuilder } from "./batch";
import type { RowMaskSource } from "./rowMasks";
import { RowMaskBuilder } from "./rowMasks";
import type { StepBatch } from "./stepBatch";
import { KvCacheManager } from "./kvCache/kvCacheManager";
import { KvEventRecorder } from "./kvCache/kvEvents";
import type { EngineOptions } from "./options";
import { DEFAULT_ENGINE_OPTIONS } from "./options";
import { recordPromptLogprobs, tokenLogprob } from "./logprobs";
import { OutputStream } from "./outputStream";
import { SequenceQueues } from "./queues";
import { commitPlan, getPolicy, schedule, validateSchedulerConfig } from "./scheduler";
import type { Plan, SchedulerConfig, SchedulerPolicy } from "./scheduler";
import type { SamplingOptions } from "./samplingOptions";
import { samplingParams } from "./samplingParams";
import { Sequence } from "./sequence";
import { abort as abortSequence, applyStep, finishSequence } from "./stepper";
import type { Speculator } from "./speculative/speculator";
import type { StepperContext } from "./stepper";
import type { EngineMetrics, FinishReason, GenerationDelta, TokenLogprob } from "./types";
import { EngineStepError, RequestRejectedError } from "./types";
import type { WorkerReadyInfo } from "./workerProtocol";
import { EngineHistogram, ITERATION_TOKENS_BUCKETS, QUEUE_TIME_BUCKETS } from "./histogram";
import { loadModel } from "./engineLoad";
import type { LoadedModel } from "./engineLoad";
import { FastgenError } from "../native";
import type { NativeEngine, StepResult } from "../native";
import type { Tokenizer } from "../tokenizer/tokenizer";
import { EngineGrammars, GrammarError } from "../grammar/engineGrammars";
import type { SequenceGrammar } from "../grammar/sequenceGrammar";

/** One sample of a request: its sequence and what its client has been sent. */
interface Sample {
  readonly request: RequestState;
  readonly index: number;
  readonly seq: Sequence;
  readonly out: OutputStream;
  /** Its finishing delta was sent: nothing more goes out for it. */
  closed: boolean;
  /** Prompt logprobs when asked for: [i] is prompt token i's given those before it ([0] null). */
  promptLogprobs: (TokenLogprob | null)[] | null;
  /** Its first delta went out (it carries the prompt tokens found in the prefix cache). */
  started: boolean;
  /** Its output constraint's matcher (structured outputs, tool calls). */
  readonly grammar?: SequenceGrammar;
}

interface RequestState {
  readonly id: string;
  readonly samples: Sample[];
  /** performance.now() at arrival; -1 once its queue time was recorded. */
  arrivedAt: number;
}

/** Result of one step for one request; `error` fails the whole request. */
export interface StepItem {
  id: string;
  deltas: GenerationDelta[];
  error?: Error;
}

export class EngineCore {
  private readonly blocks: KvCacheManager;
  private readonly queues = new SequenceQueues();
  private readonly builder: StepBatchBuilder;
  private readonly policy: SchedulerPolicy;
  private readonly schedulerConfig: SchedulerConfig;
  private readonly ctx: StepperContext;
  /** Speculative decoding, when on: proposes drafts before each pass and learns from verification. */
  private readonly speculator: Speculator | null;
  private readonly requests = new Map<string, RequestState>();
  /**
   * Set when a forward pass failed with FG_ERR_DEVICE (a GPU fault, or a tensor-parallel rank that
   * failed or timed out): the native engine cannot run another pass, so the engine refuses new
   * work and the worker reports it dead (/health 503) instead of failing request after request.
   */
  fatalError: Error | null = null;
  private readonly samplesBySeq = new Map<number, Sample>();
  private nextSeqId = 0;
  readonly maxModelLen: number;
  private readonly counters = { promptTokens: 0, generationTokens: 0, finished: 0, preemptions: 0, steps: 0 };
  private readonly queueTime = new EngineHistogram(QUEUE_TIME_BUCKETS);
  private readonly iterationTokens = new EngineHistogram(ITERATION_TOKENS_BUCKETS);
  /** Host milliseconds summed over passes: the whole step() and the native forward pass in it. */
  readonly timing = { steps: 0, stepMs: 0, nativeMs: 0 };
  /** The prefix cache's changes since the last drain, for cache-aware routing (null: caching off). */
  readonly kvEvents: KvEventRecorder | null;
  /** Grammar-constrained decoding (src/grammar/): matchers, masks, the compiled-grammar cache. */
  readonly grammars: EngineGrammars;
  /** Requests whose grammar is compiling (addRequestAsync), and whether they were aborted meanwhile. */
  private readonly preparing = new Map<string, { aborted: boolean }>();

  private readonly native: NativeEngine;
  readonly tokenizer: Tokenizer;
  readonly modelName: string;

  private constructor(loaded: LoadedModel, readonly options: EngineOptions) {
    const { native, tokenizer, speculator } = loaded;
    this.native = native;
    this.tokenizer = tokenizer;
    this.modelName = loaded.modelName;
    const info = native.info();
    this.grammars = new EngineGrammars({
      modelDir: loaded.modelDir, vocabSize: info.vocabSize, eosTokenIds: tokenizer.eosTokenIds, idToToken: (id) => tokenizer.idToToken(id),
    });
    this.kvEvents = options.enablePrefixCaching ? new KvEventRecorder(info.blockSize) : null;
    this.blocks = new KvCacheManager(info.numBlocks, info.blockSize, options.enablePrefixCaching, this.kvEvents);
    this.maxModelLen = loaded.maxModelLen;
    this.policy = getPolicy(options.policy);
    const eos = tokenizer.eosTokenIds;
    const stop = { eosTokenIds: eos, maxModelLen: this.maxModelLen };
    this.speculator = speculator;
    this.schedulerConfig = { tokenBudget: options.maxBatchTokens, maxSeqs: options.maxSeqs, specDisableBatchSize: speculator?.config.disableByBatchSize };
    validateSchedulerConfig(this.schedulerConfig);
    // Allowed-token masks of sampled rows: a static set (allowed_token_ids) and grammars (structured outputs).
    const grammarMasks: RowMaskSource = {
      maskFor: (seq, ahead) => (this.grammars.active ? this.grammars.maskFor(this.samplesBySeq.get(seq.id)?.grammar, seq.outputIds, ahead) : null),
    };
    this.builder = new StepBatchBuilder(eos, new RowMaskBuilder(info.vocabSize, [new AllowedTokenMasks(info.vocabSize), grammarMasks]));
    this.ctx = {
      queues: this.queues,
      blocks: this.blocks,
      stop,
      stopStringHook: (seq) => {
        const s = this.samplesBySeq.get(seq.id);
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
    if (promptIds.length === 0) throw new RequestRejectedError("the prompt is empty");
    const vocab = this.native.info().vocabSize;
    const bad = promptIds.find((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
    if (bad !== undefined) throw new RequestRejectedError(`prompt token id ${bad} is outside the vocabulary (0..${vocab - 1})`);
    const allowed = sampling.allowedTokenIds && allowedTokenIdsProblem(sampling.allowedTokenIds, vocab);
    if (allowed) throw new RequestRejectedError(allowed);
    if (promptIds.length + sampling.maxTokens > this.maxModelLen)
      throw new RequestRejectedError(
        `the prompt (${promptIds.length} tokens) plus max_tokens (${sampling.maxTokens}) exceeds the model's context of ${this.maxModelLen} tokens`,
      );
    const n = sampling.n ?? 1;
    if (!Number.isInteger(n) || n < 1) throw new RequestRejectedError("n must be an integer >= 1");
    if (sampling.structured && grammars?.length !== n) throw new RequestRejectedError("a structured output needs its grammars (addRequestAsync)");
    let params;
    try {
      params = Array.from({ length: n }, (_, i) =>
        samplingParams({ ...sampling, seed: sampling.seed === undefined ? undefined : sampling.seed + i }),
      );
    } catch (e) {
      throw new RequestRejectedError((e as Error).message);
    }
    const request: RequestState = { id, samples: [], arrivedAt: performance.now() };
    for (let i = 0; i < n; i++) {
      const seqId = this.nextSeqId++;
      const seq = new Sequence(seqId, seqId, promptIds, params[i]!, firstSample + i);
      const sample: Sample = {
        request, index: i, seq, closed: false,
        out: new OutputStream(this.tokenizer, promptIds, params[i]!.stop, { includeStop: params[i]!.includeStopStrInOutput, skipSpecialTokens: params[i]!.skipSpecialTokens }),
        promptLogprobs: params[i]!.promptLogprobs >= 0 ? new Array<TokenLogprob | null>(promptIds.length).fill(null) : null,
        started: false,
        grammar: grammars?.[i],
      };
      request.samples.push(sample);
      this.samplesBySeq.set(seqId, sample);
      this.queues.add(seq);
    }
    this.requests.set(id, request);
    this.counters.promptTokens += promptIds.length;
  }

  /**
   * addRequest, after compiling the request's output constraint (cached by key) and making one
   * matcher per sample. A request aborted while its grammar compiles is dropped.
   * @throws RequestRejectedError also for a constraint XGrammar cannot compile
   */
  async addRequestAsync(id: string, promptIds: number[], sampling: SamplingOptions, firstSample = 0): Promise<void> {
    if (!sampling.structured) return this.addRequest(id, promptIds, sampling, firstSample);
    if (this.requests.has(id) || this.preparing.has(id)) throw new RequestRejectedError(`duplicate request id ${id}`);
    const state = { aborted: false };
    this.preparing.set(id, state);
    let grammars: SequenceGrammar[];
    try {
      grammars = await this.grammars.forRequest(sampling.structured, sampling.n ?? 1);
    } catch (e) {
      if (e instanceof GrammarError) throw new RequestRejectedError(e.message);
      throw e;
    } finally {
      this.preparing.delete(id);
    }
    try {
      if (state.aborted) throw new RequestRejectedError("aborted");
      this.addRequest(id, promptIds, sampling, firstSample, grammars);
    } catch (e) {
      for (const g of grammars) this.grammars.release(g);
      if (!state.aborted) throw e;
    }
  }

  /** Computes the grammar masks the next step will need; null when none is missing (no await). */
  prepareMasks(): Promise<void> | null {
    return this.grammars.prepareMasks();
  }

  hasWork(): boolean {
    return this.queues.size > 0;
  }

  /** Runs one forward pass and returns the new output of every request it touched. */
  step(): StepItem[] {
    const t0 = performance.now();
    try {
      return this.stepInner();
    } finally {
      this.timing.steps++;
      this.timing.stepMs += performance.now() - t0;
    }
  }

  private stepInner(): StepItem[] {
    // A grammar-constrained sequence does not speculate: its masks are built for one row a pass
    // (a matcher advanced through the draft, rolled back on rejection, is the way to add it).
    const proposals = this.speculator?.propose(
      this.grammars.active ? this.queues.running.filter((seq) => !this.samplesBySeq.get(seq.id)?.grammar) : this.queues.running,
    );
    const plan = schedule(this.policy, { running: this.queues.running, waiting: this.queues.waiting, blocks: this.blocks, proposals }, this.schedulerConfig);
    commitPlan(plan, this.queues, this.blocks);
    this.counters.preemptions += plan.preempted.length;
    for (const seq of plan.admitted) {
      const r = this.sampleOf(seq.id).request;
      if (r.arrivedAt >= 0) this.queueTime.observe((performance.now() - r.arrivedAt) / 1000);
      r.arrivedAt = -1;
    }
    if (plan.numTokens > 0) this.iterationTokens.observe(plan.numTokens);
    const touched = new Set<RequestState>();
    for (const r of plan.rejected) touched.add(this.sampleOf(r.seq.id).request);
    if (plan.entries.length > 0) {
      let result: StepResult;
      let stride = 0;
      let batch: StepBatch;
      try {
        batch = this.builder.build(plan, this.blocks);
        stride = batch.numLogprobs ?? 0;
        const n0 = performance.now();
        try {
          result = this.native.step(batch);
        } finally {
          this.timing.nativeMs += performance.now() - n0;
        }
      } catch (e) {
        if (e instanceof FastgenError && e.code === "device") this.fatalError = e;
        return this.failPlan(plan, e as Error, touched);
      }
      recordPromptLogprobs(plan, batch, result, stride, this.samplesBySeq);
      this.counters.steps++;
      for (const ev of applyStep(plan, { rowIndptr: batch.rowIndptr, ids: result.ids }, this.ctx)) {
        const sample = this.sampleOf(ev.seq.id);
        this.counters.generationTokens++;
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

  /** Aborts a request wherever it is; returns its closing deltas (empty if unknown). */
  abort(id: string): GenerationDelta[] {
    const compiling = this.preparing.get(id);
    if (compiling) compiling.aborted = true;
    const request = this.requests.get(id);
    if (!request) return [];
    for (const s of request.samples) if (!s.seq.isFinished) abortSequence(s.seq.id, this.ctx);
    return this.collect(request).deltas;
  }

  /** Aborts every request (after an internal error); returns their ids. */
  failAll(): string[] {
    const ids = [...this.requests.keys()];
    for (const id of ids) this.abort(id);
    return ids;
  }

  abortAll(): void {
    for (const id of [...this.requests.keys()]) this.abort(id);
  }

  metrics(): EngineMetrics {
    return {
      requestsWaiting: this.queues.waiting.length,
      requestsRunning: this.queues.running.length,
      kvBlocksTotal: this.blocks.numBlocks,
      kvBlocksFree: this.blocks.numFreeBlocks,
      promptTokensTotal: this.counters.promptTokens,
      generationTokensTotal: this.counters.generationTokens,
      requestsFinishedTotal: this.counters.finished,
      preemptionsTotal: this.counters.preemptions,
      stepsTotal: this.counters.steps,
      queueTimeSeconds: this.queueTime.snapshot(),
      iterationTokens: this.iterationTokens.snapshot(),
      prefixCacheQueriesTotal: this.blocks.stats.queries,
      prefixCacheHitsTotal: this.blocks.stats.hits,
      ...(this.speculator ? { specDecode: { ...this.speculator.stats, acceptedPerPos: [...this.speculator.stats.acceptedPerPos] } } : {}),
    };
  }

  /** Test hook: the next `n` forward passes fail inside libfastgen. */
  debugFailNextSteps(n: number, device = false): void {
    this.native.debugFailNextSteps(n, device);
  }

  destroy(): void {
    this.abortAll();
    this.speculator?.destroy();
    this.native.destroy();
  }

  private sampleOf(seqId: number): Sample {
    const s = this.samplesBySeq.get(seqId);
    if (!s) throw new Error(`engine: no sample for sequence ${seqId}`);
    return s;
  }

  /** A failed forward pass fails the requests in it (their blocks are freed); the rest go on. */
  private failPlan(plan: Plan, error: Error, touched: Set<RequestState>): StepItem[] {
    this.blocks.failPass(); // the blocks this pass was to fill hold no KV: never a cache hit
    const failed = new Set<RequestState>();
    for (const e of plan.entries) failed.add(this.sampleOf(e.seq.id).request);
    for (const r of failed) {
      for (const s of r.samples) if (!s.seq.isFinished) finishSequence(s.seq, "abort", this.ctx);
      this.forget(r);
    }
    const items: StepItem[] = [...failed].map((r) => ({ id: r.id, deltas: [], error: new EngineStepError(`forward pass failed: ${error.message}`) }));
    for (const r of touched) if (!failed.has(r)) items.push(this.collect(r));
    return items;
  }

  /** Deltas for every sample of `request` with news; forgets the request once all finished. */
  private collect(request: RequestState): StepItem {
    const deltas: GenerationDelta[] = [];
    let allDone = true;
    for (const s of request.samples) {
      if (s.closed) continue; // finished earlier, while its siblings run on
      const seq = s.seq;
      const finished = seq.isFinished;
      if (!finished) allDone = false;
      if (s.out.pendingIds.length === 0 && !finished) continue;
      if (!finished) s.out.catchUp(seq.outputIds);
      else if (seq.finishReason !== "abort") s.out.catchUp(textIds(seq));
      const text = s.out.takeText(finished);
      if (s.out.pendingIds.length === 0 && text === "" && !finished) continue;
      const delta: GenerationDelta = { index: s.index, tokenIds: s.out.pendingIds, text };
      if (s.seq.params.logprobs > 0) delta.logprobs = s.out.pendingLogprobs;
      if (s.promptLogprobs) {
        delta.promptLogprobs = s.promptLogprobs;
        s.promptLogprobs = null; // sent once, on the sample's first delta
      }
      if (!s.started) {
        s.started = true;
        delta.cachedTokens = Math.max(0, seq.numCachedTokens);
      }
      if (finished) {
        s.closed = true;
        delta.finishReason = finishReasonOf(seq);
        if (seq.stopReason !== null) delta.stopReason = seq.stopReason;
      }
      s.out.pendingIds = [];
      s.out.pendingLogprobs = [];
      deltas.push(delta);
    }
    if (allDone) this.forget(request);
    return { id: request.id, deltas };
  }

  private forget(request: RequestState): void {
    if (!this.requests.delete(request.id)) return;
    this.counters.finished++;
    for (const s of request.samples) {
      this.samplesBySeq.delete(s.seq.id);
      if (s.grammar) this.grammars.release(s.grammar);
      this.speculator?.release(s.seq.id);
    }
  }
}

/**
 * The output ids whose text the client sees: a stop token or EOS that ended the sequence is left
 * out unless include_stop_str_in_output (vLLM drops it; its id still counts and is returned).
 */
function textIds(seq: Sequence): readonly number[] {
  const byToken = seq.finishReason === "stop" && typeof seq.stopReason !== "string";
  return byToken && !seq.params.includeStopStrInOutput ? seq.outputIds.slice(0, -1) : seq.outputIds;
}

function finishReasonOf(seq: Sequence): FinishReason {
  const r = seq.finishReason;
  return r === "stop" || r === "length" || r === "abort" ? r : "length";
}
