/**
 * Typed, range-checked access to a request body's fields. Every read marks the key as known;
 * `ignoreUnknown()` then logs any other key (once per name) and the request goes on, as in vLLM.
 * A field set to null counts as not given (some clients send every field).
 */
import { invalidParam } from "./errors";
import type { IgnoredFields } from "./ignoredFields";

/** Range of a numeric field; bounds are inclusive unless marked exclusive. */
export interface NumberRange {
  min?: number;
  max?: number;
  minExclusive?: boolean;
  integer?: boolean;
}

/** A client value for an error message: its JSON, cut at 40 characters (never throws). */
export function describe(v: unknown): string {
  let s: string | undefined;
  try {
    s = JSON.stringify(v);
  } catch {
    s = Array.isArray(v) ? "[...]" : "{...}"; // too deep or too big to write out
  }
  return s === undefined ? String(v) : s.length > 40 ? `${s.slice(0, 40)}...` : s;
}

function rangeText(r: NumberRange): string {
  const kind = r.integer ? "an integer" : "a number";
  const lo = r.min === undefined ? "" : `${r.minExclusive ? ">" : ">="} ${r.min}`;
  const hi = r.max === undefined ? "" : `<= ${r.max}`;
  return [kind, [lo, hi].filter(Boolean).join(" and ")].filter(Boolean).join(" ");
}

/** Checks one number against a range; `param` names it in the error. */
export function checkNumber(param: string, v: unknown, r: NumberRange): number {
  const ok =
    typeof v === "number" &&
    Number.isFinite(v) &&
    (!r.integer || Number.isSafeInteger(v)) &&
    (r.min === undefined || (r.minExclusive ? v > r.min : v >= r.min)) &&
    (r.max === undefined || v <= r.max);
  if (!ok) throw invalidParam(param, `'${param}' must be ${rangeText(r)}, got ${describe(v)}.`);
  return v as number;
}

/** A request body whose fields are read through typed getters. */
export class RequestParams {
  private readonly read = new Set<string>();

  constructor(readonly body: Record<string, unknown>) {}

  /** The raw value of a field (undefined when absent or null), marking it as known. */
  raw(key: string): unknown {
    this.read.add(key);
    const v = this.body[key];
    return v === null ? undefined : v;
  }

  /** Whether a field is given (and not null). */
  has(key: string): boolean {
    return this.raw(key) !== undefined;
  }

  number(key: string, range: NumberRange = {}): number | undefined {
    const v = this.raw(key);
    return v === undefined ? undefined : checkNumber(key, v, range);
  }

  integer(key: string, range: Omit<NumberRange, "integer"> = {}): number | undefined {
    return this.number(key, { ...range, integer: true });
  }

  boolean(key: string): boolean | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== "boolean") throw invalidParam(key, `'${key}' must be a boolean, got ${describe(v)}.`);
    return v;
  }

  string(key: string): string | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== "string") throw invalidParam(key, `'${key}' must be a string, got ${describe(v)}.`);
    return v;
  }

  /** A string or a list of strings, as a list (stop sequences). */
  stringList(key: string): string[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    const list = typeof v === "string" ? [v] : v;
    if (!Array.isArray(list) || list.some((s) => typeof s !== "string"))
      throw invalidParam(key, `'${key}' must be a string or a list of strings, got ${describe(v)}.`);
    return list as string[];
  }

  /** A list of integers within a range (token ids). */
  integerList(key: string, range: Omit<NumberRange, "integer"> = {}): number[] | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (!Array.isArray(v)) throw invalidParam(key, `'${key}' must be a list of integers, got ${describe(v)}.`);
    return v.map((x, i) => checkNumber(`${key}[${i}]`, x, { ...range, integer: true }));
  }

  /** A plain JSON object. */
  object(key: string): Record<string, unknown> | undefined {
    const v = this.raw(key);
    if (v === undefined) return undefined;
    if (typeof v !== "object" || Array.isArray(v)) throw invalidParam(key, `'${key}' must be an object, got ${describe(v)}.`);
    return v as Record<string, unknown>;
  }

  /** The fields no getter read (null ones aside). */
  unknownKeys(): string[] {
    return Object.entries(this.body)
      .filter(([key, v]) => !this.read.has(key) && v !== null)
      .map(([key]) => key);
  }

  /** Logs the fields no getter read (once per name, see ignoredFields.ts); they are ignored. */
  ignoreUnknown(log: IgnoredFields, endpoint: string): void {
    const unknown = this.unknownKeys();
    if (unknown.length > 0) log.note(endpoint, unknown);
  }
}
