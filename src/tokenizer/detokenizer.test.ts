import { describe, expect, test } from "bun:test";
import { byteFallbackTokenizer, byteLevelTokenizer } from "../../test/helpers/tokenizer-fixtures";
import { IncrementalDetokenizer } from "./detokenizer";
import { Tokenizer } from "./tokenizer";

const families = {
  "byte-level BPE": byteLevelTokenizer(),
  "byte-fallback SentencePiece": byteFallbackTokenizer(),
};

const texts = [
  "Hello world 你好 😀!",
  "😀😀 Hello",
  "你你好😀你",
  " Hello  world ab!",
  "a😀b 好\n你 world",
];

/** Feeds ids one by one; returns the deltas (flush last). */
function stream(tok: Tokenizer, ids: number[], opts = {}): string[] {
  const d = new IncrementalDetokenizer(tok, opts);
  const out = ids.map((id) => d.push(id));
  out.push(d.flush());
  return out;
}

for (const [family, files] of Object.entries(families)) {
  const tok = Tokenizer.fromJSON(files);

  describe(`IncrementalDetokenizer, ${family}`, () => {
    test("deltas join to decode(ids) and never hold a broken character", () => {
      for (const text of texts) {
        const ids = tok.encode(text, { addSpecialTokens: false });
        const deltas = stream(tok, ids);
        for (const d of deltas) expect(d).not.toContain("\uFFFD");
        expect(deltas.join("")).toBe(tok.decode(ids, { skipSpecialTokens: true }));
        expect(deltas.at(-1)).toBe(""); // nothing was left for flush
      }
    });

    test("the streamed text is the original text", () => {
      // (SentencePiece's decoder strips exactly the ▁ its normalizer prepended)
      for (const text of texts) {
        const ids = tok.encode(text, { addSpecialTokens: false });
        expect(stream(tok, ids).join("")).toBe(text);
      }
    });

    test("a partial character is held until its last byte arrives", () => {
      const ids = tok.encode("😀", { addSpecialTokens: false });
      expect(ids.length).toBeGreaterThan(1);
      const deltas = stream(tok, ids);
      expect(deltas.slice(0, ids.length - 1).every((d) => d === "")).toBe(true);
      expect(deltas[ids.length - 1]).toBe("😀");
    });

    test("special tokens: skipped by default, kept on request", () => {
      const ids = tok.encode("Hello", { addSpecialTokens: true });
      const eos = tok.eosTokenIds[0]!;
      expect(stream(tok, [...ids, eos]).join("")).toBe("Hello");
      const kept = stream(tok, [...ids, eos], { skipSpecialTokens: false }).join("");
      expect(kept).toBe(tok.decode([...ids, eos]));
      expect(kept).toContain(tok.eosToken!);
    });

    test("random id sequences: deltas + flush equal decode(all)", () => {
      for (let trial = 0; trial < 200; trial++) {
        const n = 1 + Math.floor(Math.random() * 12);
        const ids = Array.from({ length: n }, () => Math.floor(Math.random() * tok.vocabSize));
        const skip = trial % 2 === 0;
        const deltas = stream(tok, ids, { skipSpecialTokens: skip });
        expect(deltas.join("")).toBe(tok.decode(ids, { skipSpecialTokens: skip }));
        // Only flush may end on U+FFFD (the stream really ended inside a character).
        for (const d of deltas.slice(0, -1)) expect(d.endsWith("\uFFFD")).toBe(false);
      }
    });
  });
}

describe("IncrementalDetokenizer with prompt context", () => {
  test("SentencePiece: the first output token keeps its space after the prompt", () => {
    const tok = Tokenizer.fromJSON(byteFallbackTokenizer());
    const prompt = tok.encode("Hello", { addSpecialTokens: true });
    const world = tok.encode(" world", { addSpecialTokens: false }).filter((id) => tok.idToToken(id) !== "▁");
    const d = new IncrementalDetokenizer(tok, { contextIds: prompt });
    expect(d.push(world[0]!)).toBe(" world");
    expect(d.numTokens).toBe(1);
    // without context the first token's space is dropped, as decode() does
    expect(new IncrementalDetokenizer(tok).push(world[0]!)).toBe("world");
  });

  test("byte-level: a long stream keeps working after old ids are dropped", () => {
    const tok = Tokenizer.fromJSON(byteLevelTokenizer());
    const text = "Hello world 你好 😀! ".repeat(200);
    const ids = tok.encode(text, { addSpecialTokens: false });
    const d = new IncrementalDetokenizer(tok, { contextIds: tok.encode("Hello") });
    expect(d.pushMany(ids) + d.flush()).toBe(text);
    expect(d.numTokens).toBe(ids.length);
  });
});
