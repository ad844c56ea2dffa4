/**
 * Proposer: where draft tokens come from. One interface for prompt lookup (ngram.ts), a draft
 * model (draftModel.ts) and, later, an EAGLE-style head:
 *
 *   propose(requests)   once per pass, before scheduling, for the running decodes the
 *                       speculator found eligible: up to maxTokens next tokens each (a batch, so
 *                       a model-based proposer runs one pass per drafted position for all)
 *   onVerified(seq, a)  after verification appended the accepted tokens (+ the corrected one): a
 *                       stateful proposer rolls its own state back to seq.numComputedTokens
 *   release(seqId)      the sequence is gone: drop whatever is kept for it
 *
 * An EAGLE head needs the target's last hidden states at the accepted positions; they would
 * arrive with the pass's results (a StepResult field the v2 contract does not carry yet) and
 * reach the head through onVerified, before the next propose().
 */
import type { Sequence } from "../sequence";

/** One sequence to draft for, and how many tokens at most. */
export interface ProposalRequest {
  readonly seq: Sequence;
  readonly maxTokens: number;
}

export interface Proposer {
  readonly method: string;
  /** Proposed next tokens per request, in request order (empty: no proposal). */
  propose(requests: readonly ProposalRequest[]): Int32Array[];
  onVerified?(seq: Sequence, numAccepted: number): void;
  release?(seqId: number): void;
  destroy?(): void;
}

export const NO_PROPOSAL = new Int32Array(0);
