/**
 * The cap on open HTTP connections (--max-connections). Bun.serve tells us of requests, not of
 * connections, so a connection is known by its peer address (`server.requestIP`: one address and
 * port per TCP connection) from its first request on, and counted until it is known closed:
 *
 *   - it ended with `Connection: close` (either side) or its client went away mid-request, or
 *   - it sat idle past the server's idle timeout (Bun has closed it), or
 *   - it was idle when the cap was reached: then every idle keep-alive connection is closed
 *     (`server.closeIdleConnections()`), as nginx and uvicorn do, before anyone is refused.
 *
 * A request on a new connection past the cap gets 503 (Retry-After, Connection: close). Sockets that
 * never send a whole request head are not seen here; Bun's idle timeout closes them.
 */
import { ApiError } from "./errors";

/** Default --max-connections. */
export const DEFAULT_MAX_CONNECTIONS = 4096;

interface Connection {
  /** Requests in flight on it (more than one only for a pipelining client). */
  active: number;
  /** performance.now() when it last went idle. */
  idleSince: number;
}

/** 503 for a request on a new connection past --max-connections; its connection is closed. */
export function tooManyConnections(max: number): ApiError {
  return new ApiError(503, `The server has too many open connections (limit ${max}). Retry later.`, "overloaded_error", null, "too_many_connections", {
    "retry-after": "1",
    connection: "close",
  });
}

/** Open connections by peer address ("ip:port"). */
export class ConnectionTable {
  private readonly open = new Map<string, Connection>();
  /** Entries with no request in flight (keep-alive, or closed by Bun without our knowing). */
  private idle = 0;
  private sweptAt = performance.now();

  constructor(
    /** Most connections open at once. */
    readonly max: number,
    /** After this long idle Bun has closed a connection (its idleTimeout, plus its timer's slack). */
    private readonly idleMs: number,
    /** Closes every idle keep-alive connection; returns how many it closed. */
    private readonly closeIdle: () => number,
  ) {}

  /** Connections counted as open now. */
  get size(): number {
    return this.open.size;
  }

  /** A request arrived on connection `key`; false when that is a new connection past the cap. */
  admit(key: string): boolean {
    const known = this.open.get(key);
    if (known) {
      if (known.active++ === 0) this.idle--;
      return true;
    }
    if (this.open.size >= this.max) this.reclaim();
    if (this.open.size >= this.max) return false;
    this.open.set(key, { active: 1, idleSince: 0 });
    return true;
  }

  /** A request on `key` is over; `closing` when its connection closes with it. */
  finished(key: string, closing: boolean): void {
    const c = this.open.get(key);
    if (!c) return;
    if (--c.active > 0) return;
    if (closing) this.open.delete(key);
    else {
      c.idleSince = performance.now();
      this.idle++;
    }
  }

  /** Forgets connections Bun has closed for idleness; under the cap's pressure, closes the idle ones. */
  private reclaim(): void {
    // Every connection busy: refusing is O(1), however hard new connections flood in.
    if (this.idle === 0) return;
    const now = performance.now();
    if (now - this.sweptAt > 1000) {
      this.sweptAt = now;
      this.dropIdle((c) => now - c.idleSince > this.idleMs);
      if (this.open.size < this.max) return;
    }
    this.closeIdle();
    this.dropIdle(() => true); // closeIdleConnections closed every one of them
  }

  private dropIdle(which: (c: Connection) => boolean): void {
    for (const [key, c] of this.open) {
      if (c.active > 0 || !which(c)) continue;
      this.open.delete(key);
      this.idle--;
    }
  }
}
