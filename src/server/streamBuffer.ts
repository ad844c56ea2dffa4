/**
 * The bounded buffer between a generation and the client that reads it. The engine's deltas are
 * taken as soon as they come (so nothing piles up unseen in the engine's own mailbox) and held here
 * until the response asks for them; Bun asks only while the socket accepts bytes. A client that
 * stops reading therefore shows up here, and is cut off by one of two rules:
 *
 *   - the buffer holds more than `maxBytes` (estimated) of unsent output, or
 *   - output has waited `stallMs` without the client taking any of it.
 *
 * Either one fails the buffer with {@link StreamStalledError} and calls `onStall`, which aborts the
 * engine requests (their KV blocks are freed at once, not at max_tokens).
 */
import type { GenerationDelta } from "../engine/types";
import { ApiError } from "./errors";

/** Default most unsent output one stream may hold: 4 MiB (past the socket's own buffers). */
export const DEFAULT_STREAM_BUFFER_BYTES = 4 * 1024 * 1024;
/** Default seconds output may wait for a client that reads nothing before the request is aborted. */
export const DEFAULT_STREAM_STALL_S = 30;

/** Limits of one stream's buffer. */
export interface StreamLimits {
  maxBytes: number;
  stallMs: number;
}

/** The client stopped reading: sent as an error event if it ever reads again. */
export class StreamStalledError extends ApiError {
  override name = "StreamStalledError";

  constructor(reason: string) {
    super(408, `The stream was aborted because the client stopped reading it (${reason}).`, "invalid_request_error", null, "stream_stalled");
  }
}

/** Rough bytes a delta becomes on the wire (JSON around it, its text, its logprobs). */
export function deltaBytes(d: GenerationDelta): number {
  let lp = 0;
  for (const l of d.logprobs ?? []) lp += 1 + l.top.length;
  return 160 + 2 * d.text.length + 64 * lp + 64 * (d.promptLogprobs?.length ?? 0);
}

/** A FIFO of `T` with the limits above; `take()` is the only way out. */
export class StreamBuffer<T> {
  private readonly items: { item: T; bytes: number }[] = [];
  private bytes = 0;
  private waiter: (() => void) | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private ended = false;
  private error: unknown = null;

  constructor(
    private readonly limits: StreamLimits,
    private readonly onStall: (e: StreamStalledError) => void,
  ) {}

  /** Queues `item`; fails the stream when the queue grows past maxBytes. */
  push(item: T, bytes: number): void {
    if (this.ended) return;
    this.items.push({ item, bytes });
    this.bytes += bytes;
    if (this.bytes > this.limits.maxBytes) return this.stall(`more than ${this.limits.maxBytes} bytes unread`);
    if (this.waiter) this.wake();
    else this.arm();
  }

  /** No more items: `take()` returns done once the queue is empty. */
  end(): void {
    this.ended = true;
    this.wake();
  }

  /** `take()` throws `e` once the queued items are out. */
  fail(e: unknown): void {
    if (this.ended) return;
    this.error = e;
    this.end();
  }

  /** The next item, done at the end; throws what the stream failed with. */
  async take(): Promise<IteratorResult<T, undefined>> {
    this.disarm();
    while (this.items.length === 0 && !this.ended) await new Promise<void>((r) => (this.waiter = r));
    const next = this.items.shift();
    if (next) {
      this.bytes -= next.bytes;
      if (this.items.length > 0) this.arm(); // the rest waits for the client from now
      return { done: false, value: next.item };
    }
    if (this.error !== null) throw this.error;
    return { done: true, value: undefined };
  }

  /** Stops the stall clock for good (the stream is over). */
  close(): void {
    this.disarm();
    this.ended = true;
    this.wake();
  }

  private stall(reason: string): void {
    const e = new StreamStalledError(reason);
    this.disarm();
    // What is queued would never reach a client that does not read: drop it, keep the error.
    this.items.length = 0;
    this.bytes = 0;
    this.fail(e);
    this.onStall(e);
  }

  private arm(): void {
    if (this.timer !== undefined || this.ended) return;
    this.timer = setTimeout(() => this.stall(`nothing read for ${this.limits.stallMs / 1000} s`), this.limits.stallMs);
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = null;
    w?.();
  }
}
