/**
 * The poison-request quarantine: a request whose engine (or replica) died while running it must
 * not kill the next one. Requests are known by a fingerprint of what decides their computation
 * (prompt ids + sampling options, not the request id), and a crash names its suspects: every
 * request that engine had accepted and not finished.
 *
 * Blame when several were in flight: nothing says which one crashed it, and refusing every
 * suspect would turn one crash into a minute of 4xx for innocent clients. So
 *   - a crash with ONE suspect fingerprint quarantines it at once;
 *   - a crash with several gives each a strike; a fingerprint with two strikes within `ttlMs`
 *     (in flight at two crashes) is quarantined.
 * A poison request among many thus costs at most two crashes; an innocent one is refused only if
 * it was in flight at two crashes within the window. Both tables are bounded (oldest dropped).
 */
import { createHash } from "node:crypto";
import type { GenerateRequest } from "./types";
import { RequestQuarantinedError } from "./engineErrors";

/** Default time a fingerprint stays refused (and a strike counts). */
export const DEFAULT_QUARANTINE_MS = 60_000;
/** Default cap on fingerprints kept in each table. */
export const DEFAULT_QUARANTINE_ENTRIES = 1024;

/** JSON with object keys sorted, so equal options give equal text. */
function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(",")}]`;
  if (v && typeof v === "object")
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  return JSON.stringify(v) ?? "null";
}

/** The fingerprint of a request: sha256 of its prompt ids and sampling options (not its id). */
export function requestFingerprint(request: Pick<GenerateRequest, "promptIds" | "sampling">): string {
  return createHash("sha256").update(request.promptIds.join(",")).update("|").update(stableJson(request.sampling)).digest("base64url");
}

/** Options of {@link PoisonQuarantine}. */
export interface QuarantineOptions {
  /** How long a fingerprint is refused, and how long a strike counts (default 60 s). */
  ttlMs?: number;
  /** Fingerprints kept per table (default 1024). */
  maxEntries?: number;
  /** The clock (tests). */
  now?: () => number;
}

export class PoisonQuarantine {
  private readonly refused = new Map<string, number>(); // fingerprint -> refused until
  private readonly strikes = new Map<string, number>(); // fingerprint -> time of its first strike
  private readonly ttlMs: number;
  private readonly maxEntries: number;
  private readonly now: () => number;

  constructor(options: QuarantineOptions = {}) {
    this.ttlMs = options.ttlMs ?? DEFAULT_QUARANTINE_MS;
    this.maxEntries = options.maxEntries ?? DEFAULT_QUARANTINE_ENTRIES;
    this.now = options.now ?? Date.now;
  }

  /** Fingerprints refused now. */
  get size(): number {
    this.expire();
    return this.refused.size;
  }

  /** Throws RequestQuarantinedError while `fingerprint` is refused. */
  check(fingerprint: string): void {
    const until = this.refused.get(fingerprint);
    if (until === undefined) return;
    if (until > this.now()) throw new RequestQuarantinedError(until);
    this.refused.delete(fingerprint);
  }

  /**
   * One crash with these requests in flight (duplicates are one suspect); returns the fingerprints
   * it quarantined.
   */
  noteCrash(suspects: Iterable<string>): string[] {
    this.expire();
    const unique = [...new Set(suspects)];
    const now = this.now();
    const out: string[] = [];
    for (const fp of unique) {
      if (unique.length > 1 && !this.strikes.has(fp)) {
        remember(this.strikes, fp, now, this.maxEntries);
        continue;
      }
      this.strikes.delete(fp);
      remember(this.refused, fp, now + this.ttlMs, this.maxEntries);
      out.push(fp);
    }
    return out;
  }

  private expire(): void {
    const now = this.now();
    for (const [fp, until] of this.refused) if (until <= now) this.refused.delete(fp);
    for (const [fp, at] of this.strikes) if (at + this.ttlMs <= now) this.strikes.delete(fp);
  }
}

/** Sets `key` as the newest entry of `map`, dropping the oldest past `max`. */
function remember(map: Map<string, number>, key: string, value: number, max: number): void {
  map.delete(key);
  map.set(key, value);
  while (map.size > max) map.delete(map.keys().next().value!);
}
