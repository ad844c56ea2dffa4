/**
 * Sequence: one generation stream. Progress has a single model, as in vLLM v1: there is no
 * "prefill phase" or "decode phase", only `numComputedTokens` (tokens whose KV is in the cache)
 * catching up to `numTokens` (prompt + output). A prompt chunk, a decode token and the
 * recomputation after a preemption are all "compute the next tokens that are not cached yet".
 *
 *   allTokens:  | p0 p1 ... p(P-1) | o0 o1 ... o(k-1) |
 *               |<-- numComputedTokens -->|            numTokens = P + k
 *   next pass computes tokens [numComputedTokens, numComputedTokens + n); it samples a new
 *   output only when that range reaches numTokens (the last uncomputed token is in the pass).
 */
import type { SamplingParams } from "./samplingParams";

/**
 * Preemptions after which a later sample ranks as a first sample (scheduledSampleIndex): each
 * costs a recomputation of its prompt and outputs, so a sample pays at most this many.
 */
export const MAX_SAMPLE_PREEMPTIONS = 3;
/** New sequences queued ahead of a waiting later sample after which it ranks as a first one. */
export const MAX_SAMPLE_OVERTAKES = 32;

/** waiting: holds no KV; running: holds blocks; finished: gone from the queues. */
export type SequenceStatus = "waiting" | "running" | "finished";

/** Why a sequence finished; "rejected" = it can never fit in the KV pool. */
export type SequenceFinishReason = "stop" | "length" | "abort" | "rejected";

/** One generation stream: its tokens, its progress and its sampling parameters. */
export class Sequence {
  readonly promptIds: Int32Array;
  /** promptIds.length, kept here: batches read it per row, and the array is an object of its own. */
  readonly numPromptTokens: number;
  private readonly outputs: number[] = [];
  /** Prompt + output in one buffer (capacity doubles): batches copy ranges of it with memcpy. */
  private tokens: Int32Array;
  private total: number;
  status: SequenceStatus = "waiting";
  /** Tokens whose KV is in the cache; 0 again after a preemption. */
  numComputedTokens = 0;
  finishReason: SequenceFinishReason | null = null;
  /** The stop token id (or, via the hook, stop string) that ended the sequence. */
  stopReason: number | string | null = null;
  numPreemptions = 0;
  /** New sequences queued ahead of it while it waited (SequenceQueues.add counts them). */
  numOvertaken = 0;
  /**
   * Prefix-cache hashes of its full blocks, filled lazily by kvCache/blockHash.ts (tokens never
   * change once written, so each block is hashed once in the sequence's life).
   */
  readonly blockHashes: string[] = [];
  /** Tokens its first admission found in the prefix cache (-1 until admitted). */
  numCachedTokens = -1;

  /**
   * @param id unique among live sequences (block tables are keyed by it)
   * @param arrival monotonic arrival order: ties between equal sample indexes go to the earlier
   * @param sampleIndex which of its request's n samples this is (see {@link runsBefore})
   */
  constructor(
    readonly id: number,
    readonly arrival: number,
    promptIds: ArrayLike<number>,
    readonly params: SamplingParams,
    readonly sampleIndex = 0,
  ) {
    if (promptIds.length === 0) throw new Error(`sequence ${id}: empty prompt`);
    this.tokens = tokenBuffer(promptIds.length + 16);
    this.tokens.set(promptIds);
    this.promptIds = this.tokens.slice(0, promptIds.length);
    this.numPromptTokens = promptIds.length;
    this.total = promptIds.length;
  }

  /**
   * The sample index it is scheduled by (runsBefore, fair share): its own until it has been
   * preempted MAX_SAMPLE_PREEMPTIONS times or overtaken MAX_SAMPLE_OVERTAKES times, then 0, so
   * it ranks by arrival among first samples and no newer request's first sample may evict or
   * overtake it again. Without the bound, a steady stream of new requests preempts (and
   * recomputes) a request's later samples over and over, or keeps them waiting for ever.
   * It changes only while the sequence is off the queue lists (resetForRecompute) or being
   * moved by SequenceQueues.add.
   */
  get scheduledSampleIndex(): number {
    return this.numPreemptions >= MAX_SAMPLE_PREEMPTIONS || this.numOvertaken >= MAX_SAMPLE_OVERTAKES ? 0 : this.sampleIndex;
  }

  /** Generated ids; never truncated, so a preempted sequence's stream just continues. */
  get outputIds(): readonly number[] {
    return this.outputs;
  }

  /** Appends a generated token. */
  appendOutput(tokenId: number): void {
    const n = this.numTokens;
    if (n === this.tokens.length) {
      const grown = tokenBuffer(n * 2);
      grown.set(this.tokens);
      this.tokens = grown;
    }
    this.tokens[n] = tokenId;
    this.total = n + 1;
    this.outputs.push(tokenId);
  }

  /** Prompt + output ids as a view (valid until the next appendOutput). */
  get tokenIds(): Int32Array {
    return this.tokens.subarray(0, this.numTokens);
  }

  /**
   * The buffer behind tokenIds, without making a view: ids [0, numTokens) are the sequence's
   * (valid until the next appendOutput). For hot paths that read a range of it.
   */
  get tokenBuffer(): Int32Array {
    return this.tokens;
  }

  get numOutputTokens(): number {
    return this.outputs.length;
  }

  /** Prompt + output. */
  get numTokens(): number {
    return this.total;
  }

  /** Tokens not yet in the KV cache: 1 for a decode, more for a (re)prefill. */
  get numUncomputedTokens(): number {
    return this.numTokens - this.numComputedTokens;
  }

  get isFinished(): boolean {
    return this.status === "finished";
  }

  /** Token at index `i` of prompt + output. */
  tokenAt(i: number): number {
    return this.tokens[i]!;
  }

  /** Copies tokens [start, end) of prompt + output into `dst` at `offset`. */
  copyTokens(start: number, end: number, dst: Int32Array, offset: number): void {
    if (end - start <= 8) for (let i = start; i < end; i++) dst[offset++] = this.tokens[i]!;
    else dst.set(this.tokens.subarray(start, end), offset);
  }

  /** Preemption by recomputation: the KV is dropped, every token is kept and recomputed later. */
  resetForRecompute(): void {
    this.numComputedTokens = 0;
    this.status = "waiting";
    this.numPreemptions++;
  }

  /** Marks the sequence finished; the caller frees its blocks and takes it off the queues. */
  finish(reason: SequenceFinishReason): void {
    this.status = "finished";
    this.finishReason = reason;
  }
}

/**
 * A token buffer of `n` ids with its ArrayBuffer made up front: batches copy ranges of it through
 * views, and JSC gives a typed array made without one an ArrayBuffer (a copy) at its first view.
 */
function tokenBuffer(n: number): Int32Array {
  return new Int32Array(new ArrayBuffer(4 * n));
}

/**
 * The scheduling order: sample index first (scheduledSampleIndex), then arrival. Every request's
 * first sample comes before any request's second one, so requests take turns sample by sample
 * (round-robin) and one request's n cannot hold every slot while another waits; a sample
 * preempted or overtaken a bounded number of times ranks as a first one, so every request finishes.
 * With n = 1 everywhere it is FCFS.
 * Admission takes waiting sequences in this order and preemption takes running ones from its end.
 */
export function runsBefore(a: Sequence, b: Sequence): boolean {
  const ia = a.scheduledSampleIndex;
  const ib = b.scheduledSampleIndex;
  return ia < ib || (ia === ib && a.arrival < b.arrival);
}
