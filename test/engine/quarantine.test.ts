// The poison-request quarantine without a server: fingerprints, the one-suspect and two-strike
// rules, expiry and the size bound (a fake clock: no waiting).
import { describe, expect, test } from "bun:test";
import { RequestQuarantinedError } from "../../src/engine/engineErrors";
import { PoisonQuarantine, requestFingerprint } from "../../src/engine/quarantine";

const fp = (ids: number[], sampling: Record<string, unknown> = { maxTokens: 8 }) =>
  requestFingerprint({ promptIds: ids, sampling: sampling as never });

function clocked(ttlMs = 1000, maxEntries = 100) {
  const clock = { now: 0 };
  return { clock, q: new PoisonQuarantine({ ttlMs, maxEntries, now: () => clock.now }) };
}

describe("requestFingerprint", () => {
  test("is the prompt and the sampling options, whatever their key order; not the request id", () => {
    expect(fp([1, 2], { maxTokens: 8, temperature: 1 })).toBe(fp([1, 2], { temperature: 1, maxTokens: 8 }));
    expect(requestFingerprint({ promptIds: [1], sampling: { maxTokens: 8 } })).toBe(fp([1]));
    expect(fp([1, 2])).not.toBe(fp([1, 2, 3]));
    expect(fp([12])).not.toBe(fp([1, 2]));
    expect(fp([1], { maxTokens: 8, repetitionPenalty: 1e-38 })).not.toBe(fp([1]));
  });
});

describe("PoisonQuarantine", () => {
  test("the sole suspect of a crash is refused until the window ends", () => {
    const { clock, q } = clocked();
    expect(q.noteCrash([fp([1]), fp([1])])).toHaveLength(1); // identical requests are one suspect
    expect(() => q.check(fp([1]))).toThrow(RequestQuarantinedError);
    q.check(fp([2]));
    clock.now = 999;
    expect(() => q.check(fp([1]))).toThrow(/refused for another 1 s/);
    clock.now = 1000;
    q.check(fp([1]));
    expect(q.size).toBe(0);
  });

  test("several suspects get a strike each; a second strike within the window refuses", () => {
    const { clock, q } = clocked();
    expect(q.noteCrash([fp([1]), fp([2])])).toEqual([]);
    q.check(fp([1]));
    clock.now = 500;
    expect(q.noteCrash([fp([1]), fp([3])])).toEqual([fp([1])]);
    expect(() => q.check(fp([1]))).toThrow(RequestQuarantinedError);
    q.check(fp([3]));
    clock.now = 1600; // fp([3])'s strike (at 500) has expired, fp([2])'s (at 0) long ago
    expect(q.noteCrash([fp([2]), fp([3])])).toEqual([]);
  });

  test("holds at most maxEntries fingerprints, dropping the oldest", () => {
    const { q } = clocked(1000, 3);
    for (let i = 0; i < 5; i++) q.noteCrash([fp([i])]);
    expect(q.size).toBe(3);
    q.check(fp([0]));
    expect(() => q.check(fp([4]))).toThrow(RequestQuarantinedError);
  });
});
