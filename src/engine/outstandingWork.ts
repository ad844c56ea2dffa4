/**
 * Outstanding work of the requests in flight at one place (a replica as the load balancer sees
 * it, or a gRPC server): per request, its prompt tokens until the first output token shows the
 * prompt was processed, plus the tokens it may still generate (max new tokens x samples, less
 * those generated). The sum is the "queued + running tokens" the balancer routes on.
 */

/** One request's share of an {@link OutstandingWork}; `finish()` is idempotent. */
export interface WorkTicket {
  /** Records `tokens` generated tokens (the first call also retires the prompt tokens). */
  consume(tokens: number): void;
  /** Removes what is left of the request. */
  finish(): void;
}

export class OutstandingWork {
  private total = 0;
  private count = 0;

  /** Tokens still to be processed or generated. */
  get tokens(): number {
    return this.total;
  }

  /** Requests in flight. */
  get requests(): number {
    return this.count;
  }

  /** Starts counting a request of `promptTokens` that may generate `maxNewTokens` per sample. */
  start(promptTokens: number, maxNewTokens: number, samples = 1): WorkTicket {
    let prompt = promptTokens;
    let generation = maxNewTokens * samples;
    let open = true;
    this.total += prompt + generation;
    this.count++;
    return {
      consume: (tokens) => {
        if (!open) return;
        const done = Math.min(tokens, generation);
        this.total -= prompt + done;
        generation -= done;
        prompt = 0;
      },
      finish: () => {
        if (!open) return;
        open = false;
        this.total -= prompt + generation;
        this.count--;
      },
    };
  }
}
