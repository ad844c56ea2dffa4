/**
 * DeltaQueue: the per-request mailbox between the worker's messages and the caller's async
 * iterator. It ends once each of the request's n samples has delivered its finishing delta.
 */
import type { GenerationDelta } from "./types";

export class DeltaQueue implements AsyncIterable<GenerationDelta> {
  private readonly items: GenerationDelta[] = [];
  private waiter: (() => void) | null = null;
  private error: Error | null = null;
  private unfinished: number;
  /** Samples whose finishing delta arrived (a repeat must not count twice). */
  private readonly finished = new Set<number>();

  constructor(samples: number) {
    this.unfinished = samples;
  }

  /** True once every sample finished (or the queue failed). */
  get done(): boolean {
    return this.unfinished === 0 || this.error !== null;
  }

  push(deltas: GenerationDelta[]): void {
    for (const d of deltas) {
      this.items.push(d);
      if (d.finishReason && !this.finished.has(d.index)) {
        this.finished.add(d.index);
        this.unfinished--;
      }
    }
    this.wake();
  }

  fail(err: Error): void {
    this.error = err;
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<GenerationDelta> {
    for (;;) {
      while (this.items.length > 0) yield this.items.shift()!;
      if (this.error) throw this.error;
      if (this.unfinished === 0) return;
      await new Promise<void>((r) => (this.waiter = r));
    }
  }
}
