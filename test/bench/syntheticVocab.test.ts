import { describe, expect, test } from "bun:test";
import { decodeByteLevel, encodeByteLevel, greedyTokenize, STOP_TOKEN, syntheticByteLevelVocab } from "../../bench/syntheticVocab";

describe("syntheticByteLevelVocab", () => {
  const big = syntheticByteLevelVocab(32000);

  test("has exactly N unique tokens: the 256 bytes first, the stop token last", () => {
    expect(big.encoded.length).toBe(32000);
    expect(new Set(big.encoded).size).toBe(32000);
    expect(big.encoded.slice(0, 256).map((t) => [...decodeByteLevel(t)])).toEqual(Array.from({ length: 256 }, (_, b) => [b]));
    expect(big.encoded[31999]).toBe(STOP_TOKEN);
    expect(big.stopTokenIds).toEqual([31999]);
    expect(big.vocabType).toBe("byte_level");
  });

  test("every token round-trips through its bytes, and the vocab has spaced, non-ASCII and digit tokens", () => {
    const utf8 = new TextDecoder("utf-8", { fatal: true });
    for (const t of big.encoded.slice(256)) expect(encodeByteLevel(utf8.decode(decodeByteLevel(t)))).toBe(t);
    expect(big.encoded).toContain(encodeByteLevel(" the"));
    expect(big.encoded).toContain("999");
    expect(big.encoded.slice(256).some((t) => /[^\x00-\x7f]/.test(utf8.decode(decodeByteLevel(t))))).toBe(true);
  });

  test("is deterministic, and a smaller vocab is a prefix of a larger one", () => {
    const small = syntheticByteLevelVocab(2048);
    expect(big.encoded.slice(0, 2047)).toEqual(small.encoded.slice(0, 2047));
    expect(syntheticByteLevelVocab(2048).encoded).toEqual(small.encoded);
  });

  test("greedyTokenize gives ids whose bytes are the text", () => {
    const text = '{"name": "Zoë", "count": 42}\n';
    const ids = greedyTokenize(big.encoded, text);
    const bytes = ids.flatMap((id) => [...decodeByteLevel(big.encoded[id]!)]);
    expect(new TextDecoder().decode(Uint8Array.from(bytes))).toBe(text);
    expect(ids.length).toBeLessThan(text.length);
  });
});
