/**
 * The requests a server is answering now (a stream counts until its generation is over), and a
 * wait for there to be none: what a graceful drain waits on.
 */
import type { RequestTrace } from "./requestTrace";

/** The set of open requests, with `idle(ms)`. */
export class OpenRequests {
  private readonly open = new Set<RequestTrace>();
  private waiters: (() => void)[] = [];

  get size(): number {
    return this.open.size;
  }

  add(trace: RequestTrace): void {
    this.open.add(trace);
  }

  delete(trace: RequestTrace): void {
    this.open.delete(trace);
    if (this.open.size > 0) return;
    for (const wake of this.waiters) wake();
    this.waiters = [];
  }

  [Symbol.iterator](): IterableIterator<RequestTrace> {
    return this.open.values();
  }

  /** Resolves true once no request is open, false after `ms`. */
  idle(ms: number): Promise<boolean> {
    if (this.open.size === 0) return Promise.resolve(true);
    let timer: ReturnType<typeof setTimeout> | undefined;
    return new Promise<boolean>((resolve) => {
      this.waiters.push(() => resolve(true));
      timer = setTimeout(() => resolve(false), ms);
    }).finally(() => clearTimeout(timer));
  }
}
