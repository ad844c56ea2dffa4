/** A strict parser of the Prometheus text format (0.0.4) for the /metrics tests. */
import { expect } from "bun:test";

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface Exposition {
  types: Map<string, string>;
  samples: Sample[];
  /** The value of the first sample of `name` whose labels include `labels` (0 when none). */
  get(name: string, labels?: Record<string, string>): number;
}

/** Parses an exposition strictly enough to catch malformed output. */
export function parsePrometheus(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ")) continue;
    const type = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/);
    if (type) {
      expect(types.has(type[1]!)).toBe(false);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    if (!m) throw new Error(`malformed metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g)) labels[l[1]!] = l[2]!;
    const value = m[3] === "+Inf" ? Infinity : Number(m[3]);
    expect(Number.isNaN(value)).toBe(false);
    const family = m[1]!.replace(/_(bucket|sum|count)$/, "");
    expect(types.has(m[1]!) || types.get(family) === "histogram").toBe(true);
    samples.push({ name: m[1]!, labels, value });
  }
  const get = (name: string, labels: Record<string, string> = {}) =>
    samples.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
  return { types, samples, get };
}

/** Checks a histogram family: cumulative buckets ending in +Inf, which equals _count. */
export function expectHistogram(e: Exposition, name: string): void {
  expect(e.types.get(name)).toBe("histogram");
  const buckets = e.samples.filter((s) => s.name === `${name}_bucket`);
  expect(buckets.length).toBeGreaterThan(1);
  expect(buckets.at(-1)!.labels.le).toBe("+Inf");
  for (let i = 1; i < buckets.length; i++) {
    expect(Number(buckets[i]!.labels.le === "+Inf" ? Infinity : buckets[i]!.labels.le)).toBeGreaterThan(Number(buckets[i - 1]!.labels.le));
    expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
  }
  expect(buckets.at(-1)!.value).toBe(e.get(`${name}_count`));
}

/** GET /metrics, parsed. */
export async function scrape(url: string, headers: Record<string, string> = {}): Promise<Exposition> {
  const res = await fetch(`${url}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toStartWith("text/plain");
  return parsePrometheus(await res.text());
}
