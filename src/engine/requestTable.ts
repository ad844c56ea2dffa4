/**
 * The engine's live requests: each request's samples (one Sequence and output stream each) by
 * request id, and every sample by its sequence id, which is how a pass's rows find their request.
 */
import type { OutputStream } from "./outputStream";
import type { PromptLogprobsHolder } from "./logprobs";
import type { Sequence } from "./sequence";
import type { GenerationDelta, TokenLogprob } from "./types";
import type { SequenceGrammar } from "../grammar/sequenceGrammar";

/** One sample of a request: its sequence and what its client has been sent. */
export interface Sample extends PromptLogprobsHolder {
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

export interface RequestState {
  readonly id: string;
  readonly samples: Sample[];
  /** performance.now() at arrival; -1 once its queue time was recorded. */
  arrivedAt: number;
  /** Why the scheduler rejected a sample (it can never fit in the KV pool): the request fails. */
  rejection: string | null;
}

/** Result of one step for one request; `error` fails the whole request. */
export interface StepItem {
  id: string;
  deltas: GenerationDelta[];
  error?: Error;
}

export class RequestTable {
  private readonly byId = new Map<string, RequestState>();
  private readonly bySeq = new Map<number, Sample>();

  /** Every live sample by sequence id. */
  get samples(): ReadonlyMap<number, Sample> {
    return this.bySeq;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  get(id: string): RequestState | undefined {
    return this.byId.get(id);
  }

  /** The ids of every live request, copied (safe to remove while iterating). */
  ids(): string[] {
    return [...this.byId.keys()];
  }

  /** The sample of a sequence in a plan: it must be live. */
  sampleOf(seqId: number): Sample {
    const s = this.bySeq.get(seqId);
    if (!s) throw new Error(`engine: no sample for sequence ${seqId}`);
    return s;
  }

  add(request: RequestState): void {
    this.byId.set(request.id, request);
    for (const s of request.samples) this.bySeq.set(s.seq.id, s);
  }

  /** Drops `request` and its samples; false when it was already gone. */
  remove(request: RequestState): boolean {
    if (!this.byId.delete(request.id)) return false;
    for (const s of request.samples) this.bySeq.delete(s.seq.id);
    return true;
  }
}
