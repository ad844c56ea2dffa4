// The linear stop-string matcher against the simple rescanning one it replaced, on seeded random
// streams over small alphabets (where stop strings overlap, repeat and span pieces often).
import { describe, expect, test } from "bun:test";
import { OutputStream } from "./outputStream";
import { StopStringMatcher } from "./stopStrings";

/** mulberry32 */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    let t = (s = (s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.FASTGEN_SEED) || 25;

function randomString(r: () => number, alphabet: string, min: number, max: number): string {
  const n = min + Math.floor(r() * (max - min + 1));
  let s = "";
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}

/** The old OutputStream's rules: indexOf over the new tail, then the longest suffix that is a proper prefix. */
class ReferenceMatcher {
  text = "";
  constructor(private readonly stops: string[]) {}
  feed(chunk: string): { stop: string; start: number } | null {
    const before = this.text.length;
    this.text += chunk;
    const maxLen = Math.max(0, ...this.stops.map((s) => s.length));
    const from = Math.max(0, before - maxLen + 1);
    let best: { stop: string; start: number } | null = null;
    for (const s of this.stops) {
      const at = this.text.indexOf(s, from);
      if (at >= 0 && (best === null || at < best.start)) best = { stop: s, start: at };
    }
    return best;
  }
  heldBack(): number {
    let hold = 0;
    for (const s of this.stops)
      for (let k = Math.min(s.length - 1, this.text.length); k > hold; k--)
        if (this.text.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
    return hold;
  }
}

describe("StopStringMatcher", () => {
  test(`finds the same stop and holds back the same text as a rescan (seed ${SEED})`, () => {
    const r = rng(SEED);
    let matches = 0;
    for (let trial = 0; trial < 3000; trial++) {
      const alphabet = r() < 0.5 ? "ab" : "abc";
      const stops = Array.from({ length: 1 + Math.floor(r() * 4) }, () => randomString(r, alphabet, 1, 6));
      const fast = new StopStringMatcher(stops);
      const ref = new ReferenceMatcher(stops);
      for (let step = 0; step < 40; step++) {
        const chunk = randomString(r, alphabet, 0, 4);
        const got = fast.feed(chunk);
        const want = ref.feed(chunk);
        expect({ trial, step, stops, text: ref.text, got }).toEqual({ trial, step, stops, text: ref.text, got: want });
        if (want !== null) {
          matches++;
          break;
        }
        expect({ trial, step, hold: fast.heldBack() }).toEqual({ trial, step, hold: ref.heldBack() });
      }
    }
    expect(matches).toBeGreaterThan(1000); // the inputs exercised matching, not only holding back
  });

  test("a stop string spanning pieces is found where it starts; ties go to the one listed first", () => {
    const m = new StopStringMatcher(["World", "lo W"]);
    expect(m.feed("Hello")).toBeNull();
    expect(m.heldBack()).toBe(2); // "lo" could become "lo W"
    expect(m.feed(" Wor")).toEqual({ stop: "lo W", start: 3 });
    const tie = new StopStringMatcher(["ab", "abc", "a"]);
    expect(tie.feed("xabc")).toEqual({ stop: "ab", start: 1 });
  });

  test("the cost per piece does not grow with the text", () => {
    // 4 stops of 1024 characters and 200K characters of near misses: a rescan would compare ~1e9 characters.
    const stops = ["a".repeat(1023) + "b", "a".repeat(1022) + "c", "ab".repeat(512), "x".repeat(1024)];
    const m = new StopStringMatcher(stops);
    for (let i = 0; i < 50_000; i++) expect(m.feed("aaaa")).toBeNull();
    expect(m.heldBack()).toBe(1023);
    expect(m.feed("b")).toEqual({ stop: stops[0]!, start: 200_000 - 1023 });
  });
});

/** A decoder where id i is the i-th character of CHARS. */
const CHARS = "ab c\n";
const decoder = { decode: (ids: ArrayLike<number>) => Array.from(ids, (i) => CHARS[i] ?? "").join("") };

describe("OutputStream", () => {
  test(`emits exactly the text before the stop, never a piece of the stop it later retracts (seed ${SEED})`, () => {
    const r = rng(SEED + 1);
    for (let trial = 0; trial < 500; trial++) {
      const stops = Array.from({ length: 1 + Math.floor(r() * 4) }, () => randomString(r, "ab c", 1, 5));
      const ids = Array.from({ length: 60 }, () => Math.floor(r() * 4));
      const full = ids.map((i) => CHARS[i]).join("");
      // The reference: the same pieces (one character per token) through the old rules.
      const ref = new ReferenceMatcher(stops);
      let refMatch: { stop: string; start: number } | null = null;
      for (const ch of full) if ((refMatch = ref.feed(ch)) !== null) break;
      const expected = full.slice(0, refMatch?.start ?? full.length);
      const out = new OutputStream(decoder, [], stops);
      let sent = "";
      let stopped: string | null = null;
      for (let n = 1; n <= ids.length && stopped === null; n++) {
        stopped = out.catchUp(ids.slice(0, n));
        sent += out.takeText(stopped !== null);
        expect(expected.startsWith(sent)).toBe(true); // nothing sent is retracted later
      }
      if (stopped === null) sent += out.takeText(true);
      expect({ trial, sent, stopped }).toEqual({ trial, sent: expected, stopped: refMatch?.stop ?? null });
    }
  });
});
