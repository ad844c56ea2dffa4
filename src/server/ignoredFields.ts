/**
 * Unknown request fields are ignored, as vLLM does, so a field an SDK adds tomorrow does not break
 * every call today. Each is logged once per field name and endpoint, up to MAX_LOGGED_FIELDS names
 * (a client sending random keys cannot flood the log or grow this set without bound).
 * Known fields with values FastGen does not support still get a 400 naming them.
 */
import type { Logger } from "../ops/logger";

/** Most distinct unknown field names logged over the server's life. */
export const MAX_LOGGED_FIELDS = 256;
/** Longest field name written to the log, in characters. */
const MAX_NAME_CHARS = 64;

/** Logs the unknown fields requests carry, once per (endpoint, name). */
export class IgnoredFields {
  private readonly seen = new Set<string>();
  private full = false;

  constructor(private readonly logger: Logger) {}

  /** Notes fields of one request to `endpoint` that no handler reads. */
  note(endpoint: string, names: readonly string[]): void {
    for (const raw of names) {
      const name = raw.length > MAX_NAME_CHARS ? `${raw.slice(0, MAX_NAME_CHARS)}...` : raw;
      const key = `${endpoint} ${name}`;
      if (this.seen.has(key)) continue;
      if (this.seen.size >= MAX_LOGGED_FIELDS) {
        if (!this.full) this.logger.warn(`more than ${MAX_LOGGED_FIELDS} unknown request fields seen; further ones are ignored without a log line`);
        this.full = true;
        return;
      }
      this.seen.add(key);
      this.logger.warn(`ignoring unknown field '${name}' in ${endpoint} requests (logged once per field)`, { endpoint, field: name });
    }
  }

  /** How many distinct (endpoint, field) pairs were logged. */
  get size(): number {
    return this.seen.size;
  }
}
