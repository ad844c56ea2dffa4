/**
 * GrammarPasses: where EngineCore's passes meet the grammar Workers (src/grammar/). Each Worker
 * of the pool computes masks and compiles one message at a time, so a mask asked for after a
 * compile in that Worker waits for it; the engine never does:
 *
 *   schedulable   constrained sequences whose next mask would come only after a compile in flight
 *                 in their own Worker sit the pass out (keeping their blocks and their places in
 *                 the sequence cap); every other sequence, constrained ones of the other Workers
 *                 included, decodes on while the schema compiles
 *   prepareMasks  what a launched pass waits for before its finish: the masks of its sampled
 *                 constrained rows (bounded: EngineGrammars.maskTimeoutMs); when the pass is empty
 *                 because every sequence sits out, any Worker's next answer or a new request
 *   failed        requests with a sample whose grammar failed (its Worker died or timed out)
 */
import type { RequestState, RequestTable } from "./requestTable";
import type { Plan, SchedulerConfig } from "./scheduler";
import type { Sequence } from "./sequence";
import type { EngineGrammars } from "../grammar/engineGrammars";
import type { SequenceGrammar } from "../grammar/sequenceGrammar";

export class GrammarPasses {
  /** Sequences the last plan left out for a compile. */
  private held = 0;
  /** Resolved by the next request (wakes a loop that only waits for a compile). */
  private arrival: { promise: Promise<void>; resolve(): void } | null = null;

  constructor(
    private readonly grammars: EngineGrammars,
    private readonly requests: RequestTable,
  ) {}

  /** The queues and config the next plan may use: all of them unless a compile is in flight. */
  schedulable(
    queues: { running: readonly Sequence[]; waiting: readonly Sequence[] },
    config: SchedulerConfig,
  ): { running: readonly Sequence[]; waiting: readonly Sequence[]; config: SchedulerConfig } {
    const { running, waiting } = queues;
    this.held = 0;
    if (!this.grammars.active || !this.grammars.compiling) return { running, waiting, config };
    const samples = this.requests.samples;
    const free = (seq: Sequence) => !this.grammars.waitsForWorker(samples.get(seq.id)?.grammar);
    const runnable = running.filter(free);
    const admissible = waiting.filter(free);
    const heldRunning = running.length - runnable.length;
    this.held = heldRunning + waiting.length - admissible.length;
    return { running: runnable, waiting: admissible, config: { ...config, maxSeqs: config.maxSeqs - heldRunning } };
  }

  /** What the pass of `plan` waits for before its finish; null: nothing (no await). */
  prepareMasks(plan: Plan | null): Promise<void> | null {
    if (!this.grammars.active) return null;
    const samples = this.requests.samples;
    const needed: SequenceGrammar[] = [];
    for (const e of plan?.entries ?? []) {
      const g = e.wantsToken ? samples.get(e.seq.id)?.grammar : undefined;
      if (g) needed.push(g);
    }
    const masks = this.grammars.masksFor(needed);
    if (masks !== null || this.held === 0 || (plan !== null && plan.entries.length > 0)) return masks;
    if (this.arrival === null) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.arrival = { promise, resolve };
    }
    return Promise.race([this.grammars.progress(), this.arrival.promise]);
  }

  /** A request arrived. */
  arrived(): void {
    this.arrival?.resolve();
    this.arrival = null;
  }

  /** Requests with a sample whose grammar failed, and why (each once: the caller fails them). */
  failed(): [RequestState, Error][] {
    if (!this.grammars.takeFailures()) return [];
    const out: [RequestState, Error][] = [];
    for (const id of this.requests.ids()) {
      const request = this.requests.get(id)!;
      const failure = request.samples.find((s) => s.grammar?.failure)?.grammar!.failure;
      if (failure) out.push([request, failure]);
    }
    return out;
  }
}
