import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { byteFallbackTokenizer, byteLevelTokenizer } from "../../test/helpers/tokenizer-fixtures";
import { Tokenizer, TokenizerError } from "./tokenizer";

const root = mkdtempSync(join(tmpdir(), "fastgen-tok-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

function writeDir(files: Record<string, unknown>): string {
  const dir = join(root, `t${n++}`);
  mkdirSync(dir);
  for (const [name, content] of Object.entries(files)) {
    writeFileSync(join(dir, name), typeof content === "string" ? content : JSON.stringify(content));
  }
  return dir;
}

describe("Tokenizer (byte-level, Llama-3 layout)", () => {
  const f = byteLevelTokenizer();
  const dir = writeDir({
    "tokenizer.json": f.tokenizer,
    "tokenizer_config.json": f.tokenizerConfig,
    "generation_config.json": { bos_token_id: f.specialIds.bos, eos_token_id: [f.specialIds.endOfText, f.specialIds.eot] },
  });
  const tok = Tokenizer.fromDir(dir);

  test("encode with and without the post-processor's BOS", () => {
    const plain = tok.encode("Hello world", { addSpecialTokens: false });
    expect(plain.map((id) => tok.idToToken(id))).toEqual(["Hello", "Ġworld"]);
    expect(tok.encode("Hello world")).toEqual([f.specialIds.bos, ...plain]);
    expect(tok.bosTokenId).toBe(f.specialIds.bos);
  });

  test("special tokens in text encode as one id", () => {
    const ids = tok.encode("Hello<|eot_id|>", { addSpecialTokens: false });
    expect(ids.at(-1)).toBe(f.specialIds.eot);
  });

  test("decode: specials kept or skipped; unknown ids vanish; no clean-up by default", () => {
    const ids = tok.encode("Hello world");
    expect(tok.decode(ids)).toBe("<|begin_of_text|>Hello world");
    expect(tok.decode(ids, { skipSpecialTokens: true })).toBe("Hello world");
    expect(tok.decode([...ids, 99999, -1], { skipSpecialTokens: true })).toBe("Hello world");
    expect(tok.decode([])).toBe("");
    const spaced = tok.encode("a .", { addSpecialTokens: false });
    expect(tok.decode(spaced)).toBe("a .");
    expect(tok.decode(spaced, { cleanUpTokenizationSpaces: true })).toBe("a.");
  });

  test("eos ids from generation_config (list) and tokenizer_config, vocab facts", () => {
    expect(tok.eosTokenIds).toEqual([f.specialIds.endOfText, f.specialIds.eot]);
    expect(tok.eosToken).toBe("<|eot_id|>");
    expect(tok.vocabSize).toBe(f.specialIds.eot + 1);
    expect(tok.idToToken(f.specialIds.eot)).toBe("<|eot_id|>");
    expect(tok.tokenToId("Hello")).toBe(tok.encode("Hello", { addSpecialTokens: false })[0]!);
    expect(tok.isSpecial(f.specialIds.eot)).toBe(true);
    expect(tok.isSpecial(tok.tokenToId("Hello")!)).toBe(false);
    expect(Object.keys(tok.chatTemplates)).toEqual(["default"]);
  });
});

describe("Tokenizer (byte fallback, Llama-2 layout)", () => {
  const f = byteFallbackTokenizer();

  test("add_bos_token from tokenizer_config decides BOS", () => {
    const on = Tokenizer.fromJSON(f);
    expect(on.addBosToken).toBe(true);
    expect(on.encode("Hello")[0]).toBe(1);
    const off = Tokenizer.fromJSON({ ...f, tokenizerConfig: { ...f.tokenizerConfig, add_bos_token: false } });
    expect(off.encode("Hello")[0]).not.toBe(1);
    const withEos = Tokenizer.fromJSON({ ...f, tokenizerConfig: { ...f.tokenizerConfig, add_eos_token: true } });
    const ids = withEos.encode("Hello");
    expect([ids[0], ids.at(-1)]).toEqual([1, 2]);
  });

  test("AddedToken-object bos/eos, a single eos_token_id, byte fallback round trip", () => {
    const tok = Tokenizer.fromJSON({ ...f, generationConfig: { eos_token_id: 2 } });
    expect(tok.bosToken).toBe("<s>");
    expect(tok.eosTokenIds).toEqual([2]);
    const ids = tok.encode("Hello 你😀", { addSpecialTokens: false });
    expect(ids.map((id) => tok.idToToken(id))).toContain("<0xE4>");
    expect(tok.decode(ids)).toBe("Hello 你😀");
  });
});

describe("Tokenizer.fromDir", () => {
  test("chat_template.jinja and named templates", () => {
    const f = byteLevelTokenizer();
    const named = [
      { name: "default", template: "D" },
      { name: "tool_use", template: "T" },
    ];
    const a = Tokenizer.fromDir(writeDir({ "tokenizer.json": f.tokenizer, "tokenizer_config.json": { ...f.tokenizerConfig, chat_template: named } }));
    expect(a.chatTemplates).toEqual({ default: "D", tool_use: "T" });
    const b = Tokenizer.fromDir(writeDir({ "tokenizer.json": f.tokenizer, "tokenizer_config.json": f.tokenizerConfig, "chat_template.jinja": "J" }));
    expect(b.chatTemplates.default).toBe("J");
    const c = Tokenizer.fromDir(writeDir({ "tokenizer.json": f.tokenizer }));
    expect(c.chatTemplates).toEqual({});
    expect(c.eosTokenIds).toEqual([]);
  });

  test("clear errors", () => {
    const err = (fn: () => unknown) => {
      try {
        fn();
      } catch (e) {
        expect(e).toBeInstanceOf(TokenizerError);
        return (e as Error).message;
      }
      throw new Error("expected a throw");
    };
    expect(err(() => Tokenizer.fromDir(writeDir({})))).toMatch(/has no tokenizer\.json/);
    expect(err(() => Tokenizer.fromDir(writeDir({ "tokenizer.json": "{oops" })))).toMatch(/tokenizer\.json is not valid JSON/);
    expect(err(() => Tokenizer.fromDir(writeDir({ "tokenizer.json": { model: {} } })))).toMatch(/cannot build tokenizer/);
  });
});
