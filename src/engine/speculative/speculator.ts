/**
 * Speculator: the engine's side of speculative decoding. Before each pass it asks the proposer
 * for drafts for the running decodes (the scheduler then fits what it can into the pass); after
 * verification it adapts each sequence's k and counts what was proposed and accepted.
 *
 * k per sequence starts at num_speculative_tokens and follows its acceptance (the schedule of
 * HF transformers' assisted generation): every draft accepted whole raises it by 2, any
 * rejection lowers it by 1, between 1 and num_speculative_tokens. A sequence whose drafts keep
 * failing thus costs one extra token per pass, and a run of hits goes back to k quickly.
 * Whether a pass speculates at all is the governor's call (governor.ts: measured decode tokens/ms
 * with and without, per batch size), unless auto_disable is off.
 */
import type { Sequence } from "../sequence";
import type { StopConfig } from "../stop";
import type { Plan } from "../scheduler";
import { ownTokens } from "../scheduler";
import type { SpeculativeConfig } from "./config";
import { SpecGovernor } from "./governor";
import { maxDraftTokens } from "./eligibility";
import type { ProposalRequest, Proposer } from "./proposer";

/** vLLM's spec-decode counters. */
export interface SpecDecodeStats {
  /** Drafts verified (one per sequence per pass that carried one). */
  numDrafts: number;
  numDraftTokens: number;
  numAcceptedTokens: number;
  /** [j]: drafts whose token j was accepted (acceptance by position). */
  acceptedPerPos: number[];
  /** The governor's probes (a few passes of the other mode) and those that flipped a batch size's mode. */
  governorProbes: number;
  governorFlips: number;
  /** [i]: engines whose governor has speculation off at batches of 2^(i-1)+1 .. 2^i decodes now. */
  offByBatch: number[];
}

/** a + b, position by position; whichever exists when only one does (replicas sum their counters). */
export function addSpecDecodeStats(a: SpecDecodeStats | undefined, b: SpecDecodeStats | undefined): SpecDecodeStats | undefined {
  if (!a || !b) return a ?? b;
  const n = Math.max(a.acceptedPerPos.length, b.acceptedPerPos.length);
  return {
    numDrafts: a.numDrafts + b.numDrafts,
    numDraftTokens: a.numDraftTokens + b.numDraftTokens,
    numAcceptedTokens: a.numAcceptedTokens + b.numAcceptedTokens,
    acceptedPerPos: Array.from({ length: n }, (_, j) => (a.acceptedPerPos[j] ?? 0) + (b.acceptedPerPos[j] ?? 0)),
    governorProbes: a.governorProbes + b.governorProbes,
    governorFlips: a.governorFlips + b.governorFlips,
    offByBatch: Array.from({ length: Math.max(a.offByBatch.length, b.offByBatch.length) }, (_, i) => (a.offByBatch[i] ?? 0) + (b.offByBatch[i] ?? 0)),
  };
}

/** What propose() decided for the pass being planned, for the governor's timing. */
interface PassNote {
  decodes: number;
  speculated: boolean;
  acceptedBefore: number;
}

export class Speculator {
  readonly stats: SpecDecodeStats;
  /** Null when auto_disable is off: every eligible pass speculates. */
  readonly governor: SpecGovernor | null;
  private readonly k = new WeakMap<Sequence, number>();
  private pass: PassNote | null = null;

  constructor(
    readonly config: SpeculativeConfig,
    readonly proposer: Proposer,
    private readonly stop: StopConfig,
  ) {
    this.stats = {
      numDrafts: 0, numDraftTokens: 0, numAcceptedTokens: 0, acceptedPerPos: new Array<number>(config.numSpeculativeTokens).fill(0),
      governorProbes: 0, governorFlips: 0, offByBatch: [],
    };
    this.governor = config.autoDisable ? new SpecGovernor() : null;
  }

  /** A copy of the counters, the governor's included (what metrics report). */
  snapshot(): SpecDecodeStats {
    const g = this.governor;
    return {
      ...this.stats, acceptedPerPos: [...this.stats.acceptedPerPos],
      governorProbes: g?.probes ?? 0, governorFlips: g?.flips ?? 0, offByBatch: g?.offByBatch() ?? [],
    };
  }

  /**
   * Drafts for the running decodes, by sequence id; undefined when this pass gets none (too many
   * decodes: the scheduler would drop them anyway, so the proposer is not even asked; or the
   * governor found speculation slower at this batch size).
   */
  propose(running: readonly Sequence[]): Map<number, Int32Array> | undefined {
    this.pass = null;
    let decodes = 0;
    for (const seq of running) {
      if (seq.numUncomputedTokens !== 1) continue;
      if (++decodes >= this.config.disableByBatchSize) return undefined;
    }
    if (decodes === 0) return undefined;
    const speculated = this.governor?.wants(decodes) ?? true;
    this.pass = { decodes, speculated, acceptedBefore: this.stats.numAcceptedTokens };
    if (!speculated) return undefined;
    const requests: ProposalRequest[] = [];
    for (const seq of running) {
      if (seq.numUncomputedTokens !== 1) continue;
      const m = maxDraftTokens(seq, this.kOf(seq), this.stop);
      if (m > 0) requests.push({ seq, maxTokens: m });
    }
    if (requests.length === 0) return undefined;
    const drafts = this.proposer.propose(requests);
    const out = new Map<number, Int32Array>();
    requests.forEach((r, i) => {
      const d = drafts[i]!;
      if (d.length > 0) out.set(r.seq.id, d.length > r.maxTokens ? d.subarray(0, r.maxTokens) : d);
    });
    return out.size > 0 ? out : undefined;
  }

  /** Verification of `seq`'s draft of `proposed` tokens accepted `accepted` of them. */
  onVerified(seq: Sequence, proposed: number, accepted: number): void {
    const s = this.stats;
    s.numDrafts++;
    s.numDraftTokens += proposed;
    s.numAcceptedTokens += accepted;
    for (let j = 0; j < accepted; j++) s.acceptedPerPos[j]!++;
    const k = this.kOf(seq);
    this.k.set(seq, accepted === proposed ? Math.min(this.config.numSpeculativeTokens, k + 2) : Math.max(1, k - 1));
    this.proposer.onVerified?.(seq, accepted);
  }

  /**
   * The pass planned after the last propose() ended, `ms` after its planning began (drafting
   * included): a pure-decode pass is timed for the governor (decode tokens = its rows + the
   * drafted tokens they accepted).
   */
  onPassEnd(plan: Plan, ms: number): void {
    const note = this.pass;
    this.pass = null;
    if (!note || !this.governor || plan.admitted.length > 0 || plan.entries.length === 0) return;
    for (const e of plan.entries) if (ownTokens(e) !== 1) return;
    this.governor.record(note.decodes, note.speculated, plan.entries.length + this.stats.numAcceptedTokens - note.acceptedBefore, ms);
  }

  /** `seqId` finished: the proposer drops its state. */
  release(seqId: number): void {
    this.proposer.release?.(seqId);
  }

  destroy(): void {
    this.proposer.destroy?.();
  }

  private kOf(seq: Sequence): number {
    return this.k.get(seq) ?? this.config.numSpeculativeTokens;
  }
}
