/**
 * Admitting a request to the engine: checking it against the model (prompt ids, context length,
 * allowed_token_ids, n), normalizing its sampling parameters per sample, compiling its output
 * constraint into one grammar matcher per sample, and building its samples. Whatever it rejects
 * throws RequestRejectedError (HTTP 400) before the engine holds any state for the request.
 */
import { allowedTokenIdsProblem } from "./allowedTokens";
import { OutputStream } from "./outputStream";
import type { RequestState, Sample } from "./requestTable";
import type { SamplingOptions } from "./samplingOptions";
import { samplingParams } from "./samplingParams";
import type { SamplingParams } from "./samplingParams";
import { Sequence } from "./sequence";
import type { TokenLogprob } from "./types";
import { EngineStepError, RequestRejectedError } from "./types";
import { GrammarError, GrammarWorkerError } from "../grammar/engineGrammars";
import type { EngineGrammars } from "../grammar/engineGrammars";
import type { SequenceGrammar } from "../grammar/sequenceGrammar";
import type { Tokenizer } from "../tokenizer/tokenizer";

export class RequestAdmission {
  /** Requests whose grammar is compiling, and whether they were aborted meanwhile. */
  private readonly compiling = new Map<string, { aborted: boolean }>();
  private nextSeqId = 0;

  constructor(
    private readonly tokenizer: Tokenizer,
    private readonly vocabSize: number,
    private readonly maxModelLen: number,
    private readonly grammars: EngineGrammars,
  ) {}

  /**
   * The request's state, one sample per `sampling.n`, each with its Sequence (ids from here on).
   * @throws RequestRejectedError when it can never run (too long, bad parameters)
   */
  build(id: string, promptIds: number[], sampling: SamplingOptions, firstSample: number, grammars?: SequenceGrammar[]): RequestState {
    const params = this.check(promptIds, sampling, grammars);
    const request: RequestState = { id, samples: [], arrivedAt: performance.now(), rejection: null };
    for (let i = 0; i < params.length; i++) {
      const p = params[i]!;
      const seqId = this.nextSeqId++;
      const sample: Sample = {
        request, index: i, seq: new Sequence(seqId, seqId, promptIds, p, firstSample + i), closed: false,
        out: new OutputStream(this.tokenizer, promptIds, p.stop, { includeStop: p.includeStopStrInOutput, skipSpecialTokens: p.skipSpecialTokens }),
        promptLogprobs: p.promptLogprobs >= 0 ? new Array<TokenLogprob | null>(promptIds.length).fill(null) : null,
        started: false,
        grammar: grammars?.[i],
      };
      request.samples.push(sample);
    }
    return request;
  }

  /** The sampling parameters of each sample; throws RequestRejectedError on the first problem. */
  private check(promptIds: number[], sampling: SamplingOptions, grammars?: SequenceGrammar[]): SamplingParams[] {
    if (promptIds.length === 0) throw new RequestRejectedError("the prompt is empty");
    const vocab = this.vocabSize;
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
    try {
      return Array.from({ length: n }, (_, i) =>
        samplingParams({ ...sampling, seed: sampling.seed === undefined ? undefined : sampling.seed + i }),
      );
    } catch (e) {
      throw new RequestRejectedError((e as Error).message);
    }
  }

  isCompiling(id: string): boolean {
    return this.compiling.has(id);
  }

  /**
   * Compiles the request's output constraint (cached by key) into one matcher per sample; null
   * when the request was aborted meanwhile (its matchers are released).
   * @throws RequestRejectedError for a constraint XGrammar cannot compile, EngineStepError when
   *   the grammar Worker fails
   */
  async compile(id: string, sampling: SamplingOptions): Promise<SequenceGrammar[] | null> {
    const state = { aborted: false };
    this.compiling.set(id, state);
    let grammars: SequenceGrammar[];
    try {
      grammars = await this.grammars.forRequest(sampling.structured!, sampling.n ?? 1);
    } catch (e) {
      if (e instanceof GrammarError) throw new RequestRejectedError(e.message);
      if (e instanceof GrammarWorkerError) throw new EngineStepError(e.message);
      throw e;
    } finally {
      this.compiling.delete(id);
    }
    if (!state.aborted) return grammars;
    for (const g of grammars) this.grammars.release(g);
    return null;
  }

  /** Marks a request whose grammar is compiling as aborted; false when none is. */
  abortCompiling(id: string): boolean {
    const state = this.compiling.get(id);
    if (state) state.aborted = true;
    return state !== undefined;
  }
}
