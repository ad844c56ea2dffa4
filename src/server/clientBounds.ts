/**
 * What the HTTP server does per request so that no client holds it unbounded: the connection cap
 * (connectionLimit.ts) at arrival, Bun's idle timer turned off for a generation once its body is
 * read (a queued request may be silent for long) and back on once the generation is over (so a
 * client that stopped reading is cut by it), and the connection forgotten when it closes.
 */
import type { Server } from "bun";
import type { ApiError } from "./errors";
import { ConnectionTable, tooManyConnections } from "./connectionLimit";
import type { RequestTrace } from "./requestTrace";

/** Answered at once and polled by orchestrators: never refused for the connection cap. */
const PROBE_PATHS = new Set(["/health", "/metrics"]);

/** Where a request came from and what was relaxed for it, to undo once it is over. */
interface Arrival {
  received: Request;
  /** Its connection's key in the ConnectionTable; null when it is not counted. */
  connection: string | null;
  /** Bun's idle timer is off for its generation. */
  unbounded: boolean;
}

/** The per-request bounds of one server. */
export class ClientBounds {
  private readonly arrivals = new WeakMap<RequestTrace, Arrival>();
  private readonly connections: ConnectionTable;
  private server: Server<unknown> | null = null;

  constructor(
    maxConnections: number,
    /** Bun's idleTimeout, in seconds. */
    private readonly idleTimeoutS: number,
  ) {
    // Bun's idle timer closes a connection within about two of its 4 s ticks past idleTimeout.
    this.connections = new ConnectionTable(maxConnections, (idleTimeoutS + 8) * 1000, () => this.server?.closeIdleConnections() ?? 0);
  }

  /** The listening server (null once stopped). */
  attach(server: Server<unknown> | null): void {
    this.server = server;
  }

  /** A request arrived: counts its connection; the 503 to answer when it is one too many. */
  arrive(trace: RequestTrace, received: Request, server: Server<unknown>): ApiError | null {
    const arrival: Arrival = { received, connection: null, unbounded: false };
    this.arrivals.set(trace, arrival);
    const peer = server.requestIP(received);
    if (!peer || PROBE_PATHS.has(trace.path)) return null;
    const key = `${peer.address}:${peer.port}`;
    if (!this.connections.admit(key)) return tooManyConnections(this.connections.max);
    arrival.connection = key;
    return null;
  }

  /** The body of a generation request was read: no idle timer until the generation is over. */
  generating(trace: RequestTrace): void {
    const arrival = this.arrivals.get(trace);
    if (!arrival) return;
    arrival.unbounded = true;
    this.timeout(arrival.received, 0);
  }

  /** The request is over (for a stream: its generation too). */
  ended(trace: RequestTrace): void {
    const arrival = this.arrivals.get(trace);
    if (!arrival) return;
    if (arrival.unbounded) this.timeout(arrival.received, this.idleTimeoutS);
    if (arrival.connection !== null)
      this.connections.finished(arrival.connection, trace.clientGone || trace.signal.aborted || trace.closesConnection);
  }

  /** server.timeout, which may throw for a request whose connection is gone. */
  private timeout(received: Request, seconds: number): void {
    try {
      this.server?.timeout(received, seconds);
    } catch {}
  }
}
