/**
 * The scheduler's contract: a pure function of (running, waiting, a read-only view of the KV
 * pool, config) to a Plan. Nothing is mutated while planning; commitPlan() applies the plan's
 * preemptions, admissions and block growth, then batch.ts turns it into a StepBatch.
 */
import type { KvCacheView } from "../kvCache/kvCacheManager";
import type { Sequence, SequenceFinishReason } from "../sequence";

/** Every policy name, default first. */
export const POLICY_NAMES = ["splitfuse", "prefill-first", "orca"] as const;
/** Scheduling policies; the same names as EngineOptions.policy. */
export type PolicyName = (typeof POLICY_NAMES)[number];

/** The limits of one pass. */
export interface SchedulerConfig {
  /** Token budget B of one forward pass. */
  readonly tokenBudget: number;
  /** Sequence cap S: sequences in one pass, and running sequences at any time. */
  readonly maxSeqs: number;
  /**
   * Speculative decoding: no draft tokens join a pass once it holds this many decodes (vLLM's
   * disable_by_batch_size); absent = no limit.
   */
  readonly specDisableBatchSize?: number;
}

/** What a policy reads: the queues and a read-only view of the pool. */
export interface SchedulerInput {
  /** Sequences holding KV blocks, in scheduling order (runsBefore: sample index, then arrival). */
  readonly running: readonly Sequence[];
  /** Sequences without KV, in scheduling order. */
  readonly waiting: readonly Sequence[];
  readonly blocks: KvCacheView;
  /**
   * Speculative decoding: proposed next tokens per running sequence id (speculative/). A running
   * decode may verify a prefix of its proposal in the pass, budget and free blocks allowing.
   */
  readonly proposals?: ReadonlyMap<number, Int32Array>;
}

/** One sequence's share of the pass: tokens [contextLen, contextLen + numTokens). */
export interface PlanEntry {
  readonly seq: Sequence;
  /** The sequence's numComputedTokens when planned; for an admitted one, its cached run's tokens. */
  readonly contextLen: number;
  readonly numTokens: number;
  /** True when the pass reaches the sequence's last token, so it samples the next one. */
  readonly wantsToken: boolean;
  /** Fresh blocks the commit adds to its table (an admitted sequence: all but its cached run). */
  readonly newBlocks: number;
  /**
   * Speculative decoding: proposed tokens verified after the decode token, at positions
   * contextLen + 1.. (numTokens counts them: 1 + draft.length). Only on running decodes.
   */
  readonly draft?: Int32Array;
}

/** Tokens of the entry that are the sequence's own (numTokens less any draft). */
export function ownTokens(e: PlanEntry): number {
  return e.draft === undefined ? e.numTokens : e.numTokens - e.draft.length;
}

/** A sequence that can never fit in the KV pool, even alone. */
export interface Rejection {
  readonly seq: Sequence;
  /** "rejected" before any output, "length" when it ran out of room while generating. */
  readonly finishReason: SequenceFinishReason;
  readonly message: string;
}

/** One forward pass, planned: its rows and the queue moves around it. */
export interface Plan {
  readonly policy: PolicyName;
  /** Rows of the pass, in batch order. */
  readonly entries: readonly PlanEntry[];
  /** Sum of entries' numTokens. */
  readonly numTokens: number;
  /** Running sequences whose KV is dropped (recomputed later), last in scheduling order first. */
  readonly preempted: readonly Sequence[];
  /** Waiting sequences that start running, in scheduling order (runsBefore); each also has an entry. */
  readonly admitted: readonly Sequence[];
  readonly rejected: readonly Rejection[];
  /** Free blocks once the plan is committed; commitPlan checks the pool agrees. */
  readonly numFreeBlocksAfter: number;
}

/** A scheduling policy: one file each under scheduler/, one shared conformance suite. */
export interface SchedulerPolicy {
  readonly name: PolicyName;
  /** Every running decode is in every pass unless preempted (SplitFuse). */
  readonly neverSkipsDecodes: boolean;
  /** Splits prompts into chunks; without it a prompt longer than B runs alone, over budget. */
  readonly splitsPrompts: boolean;
  /** Plans one pass. Call through schedule(), which asserts the plan's invariants. */
  plan(input: SchedulerInput, config: SchedulerConfig): Plan;
}
