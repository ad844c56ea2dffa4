/**
 * PenaltySlots: which engine slot keeps each sequence's penalty list between passes (fg_batch
 * penalty_slots), and how much of the list it holds, so a pass sends a sequence only the ids
 * since its last sampled pass (one token while it decodes) instead of its whole prompt + output
 * list (issue #24 item 4: 163 us a step at 256 sequences with a repetition penalty).
 *
 *   list of a sequence:  tokens[from .. numTokens)   from = 0 with a repetition penalty (prompt
 *                                                     ids count), else numPromptTokens
 *   held by its slot:    tokens[from .. from + held)
 *   a pass sends:        keep = held, then tokens[from + held .. numTokens)
 *
 * A slot is released when its sequence finishes, is aborted or preempted; its next holder starts
 * with keep 0, which empties it in the library. Released slots are reused lowest first.
 */
interface Held {
  readonly slot: number;
  readonly from: number;
  held: number;
}

/** Where this pass's penalty ids of a sequence start, and what its slot keeps. */
export interface PenaltySync {
  slot: number;
  keep: number;
  /** Token index of the first id to send. */
  start: number;
}

export class PenaltySlots {
  private readonly bySeq = new Map<number, Held>();
  private readonly free: number[] = [];
  private next = 0;
  /** sync()'s answer, reused: a pass asks once per sampled sequence, ~256 times a step. */
  private readonly answer: PenaltySync = { slot: 0, keep: 0, start: 0 };

  /** Slots in use. */
  get size(): number {
    return this.bySeq.size;
  }

  /**
   * The slot of sequence `seqId` (taken now if it has none), whose list starts at token `from`
   * and now ends at `numTokens`: the slot will hold all of it once this pass is launched.
   * The answer is valid until the next call.
   */
  sync(seqId: number, from: number, numTokens: number): PenaltySync {
    let h = this.bySeq.get(seqId);
    if (h === undefined || h.from !== from) {
      h = { slot: h?.slot ?? this.take(), from, held: 0 }; // a new list: keep 0 empties the slot
      this.bySeq.set(seqId, h);
    }
    const answer = this.answer;
    answer.slot = h.slot;
    answer.keep = h.held;
    answer.start = from + h.held;
    h.held = numTokens - from;
    return answer;
  }

  /** The sequence is gone (finished, aborted, failed) or preempted: its slot is free. */
  release(seqId: number): void {
    const h = this.bySeq.get(seqId);
    if (h === undefined) return;
    this.bySeq.delete(seqId);
    this.free.push(h.slot);
  }

  private take(): number {
    if (this.free.length === 0) return this.next++;
    this.free.sort((a, b) => b - a);
    return this.free.pop()!;
  }
}
