/**
 * `fastgen serve` flags that bound what one HTTP client can hold: its body's time, idle
 * connections, open connections, and a stream it stopped reading. Each is checked into a sane
 * range here, so a typo cannot turn a bound off.
 */
import type { CreateServerOptions } from "../server/serverTypes";
import { DEFAULT_IDLE_TIMEOUT_S } from "../server/httpServer";
import { DEFAULT_MAX_CONNECTIONS } from "../server/connectionLimit";
import { DEFAULT_BODY_TIMEOUT_S } from "../server/requestBody";
import { DEFAULT_STREAM_BUFFER_BYTES, DEFAULT_STREAM_STALL_S } from "../server/streamBuffer";
import { UsageError, floatFlag, intFlag } from "../ops/engineFlags";

export const CLIENT_BOUND_FLAG_SPEC = {
  "body-timeout": { type: "string" },
  "idle-timeout": { type: "string" },
  "max-connections": { type: "string" },
  "stream-stall-timeout": { type: "string" },
} as const;

export const CLIENT_BOUND_FLAG_HELP = `Client bounds:
  --body-timeout S          seconds a client has to send its whole request body, else 408 and the
                            connection is closed (default ${DEFAULT_BODY_TIMEOUT_S}; at most 3600)
  --idle-timeout S          seconds a connection may send and receive nothing before it is closed;
                            a generation request is exempt while it runs (default
                            ${DEFAULT_IDLE_TIMEOUT_S}; 1 to 255)
  --max-connections N       open HTTP connections at most; a request on a new one past it gets 503
                            with Retry-After (idle keep-alive connections are closed first)
                            (default ${DEFAULT_MAX_CONNECTIONS})
  --stream-stall-timeout S  a streamed response whose client reads nothing for S seconds, or
                            leaves more than ${DEFAULT_STREAM_BUFFER_BYTES / 1024 / 1024} MiB unread, is aborted and its KV cache freed
                            (default ${DEFAULT_STREAM_STALL_S}; at most 3600)`;

type BoundOptions = Pick<CreateServerOptions, "bodyTimeoutMs" | "idleTimeoutS" | "maxConnections" | "streamLimits">;

/** Seconds in (0, max], or undefined when not given. */
function seconds(name: string, value: string | undefined, max: number): number | undefined {
  const s = floatFlag(name, value);
  if (s !== undefined && !(s > 0 && s <= max)) throw new UsageError(`--${name} must be > 0 and <= ${max} seconds, got "${value}"`);
  return s;
}

/** The createServer options the client-bound flags ask for (absent ones keep the defaults). */
export function clientBoundsFrom(values: Partial<Record<keyof typeof CLIENT_BOUND_FLAG_SPEC, string>>): BoundOptions {
  const body = seconds("body-timeout", values["body-timeout"], 3600);
  const idle = intFlag("idle-timeout", values["idle-timeout"]);
  if (idle !== undefined && idle > 255) throw new UsageError(`--idle-timeout must be at most 255 seconds (Bun's limit), got ${idle}`);
  const stall = seconds("stream-stall-timeout", values["stream-stall-timeout"], 3600);
  return {
    bodyTimeoutMs: body === undefined ? undefined : body * 1000,
    idleTimeoutS: idle,
    maxConnections: intFlag("max-connections", values["max-connections"]),
    streamLimits: stall === undefined ? undefined : { stallMs: stall * 1000 },
  };
}
