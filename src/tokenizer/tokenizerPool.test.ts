// Long texts and chats are tokenized in worker threads: the same ids as on this thread, typed
// errors back across the thread, this thread free meanwhile, and a bounded queue.
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { byteLevelTokenizer } from "../../test/helpers/tokenizer-fixtures";
import { ChatTemplateError, renderChat } from "./chatTemplate";
import { INLINE_ENCODE_CHARS, Tokenizer } from "./tokenizer";
import { MAX_QUEUED_CHARS, TokenizerBusyError, TokenizerWorkerError } from "./tokenizerPool";

const DEMO = join(import.meta.dir, "..", "..", "models", "fastgen-demo-tiny");
const SEED = Number(process.env.FASTGEN_SEED) || 2025;

/** Seeded text with words, spaces, newlines and a few multi-byte characters. */
function text(seed: number, chars: number): string {
  let s = seed >>> 0;
  const words = ["the", "quick", "brown", "fox", "é", "日本", "🦊", "\n", "  ", "jumps", "over", "lazy", "dog", "."];
  let out = "";
  while (out.length < chars) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out += words[s % words.length] + " ";
  }
  return out.slice(0, chars);
}

describe("Tokenizer.encodeMany / encodeChat off the calling thread", () => {
  const demo = Tokenizer.fromDir(DEMO);
  const fixture = Tokenizer.fromJSON(byteLevelTokenizer()); // sent to the workers as parsed files
  afterAll(() => {
    demo.close();
    fixture.close();
  });

  test(`the workers give the ids encode() gives, for a directory and for parsed files (seed ${SEED})`, async () => {
    const texts = [0, 1, 2, 3].map((i) => text(SEED + i, INLINE_ENCODE_CHARS + 1000 * i));
    for (const tok of [demo, fixture]) {
      const ids = await tok.encodeMany(texts, { addSpecialTokens: true });
      expect(ids).toEqual(texts.map((t) => tok.encode(t, { addSpecialTokens: true })));
      expect(await tok.encodeAsync(texts[0]!, { addSpecialTokens: false })).toEqual(tok.encode(texts[0]!, { addSpecialTokens: false }));
    }
  });

  test("a long chat is rendered and encoded in a worker, as renderChat + encode would", async () => {
    const messages = [
      { role: "system", content: "Be brief." },
      { role: "user", content: [{ type: "text", text: text(SEED, 2 * INLINE_ENCODE_CHARS) }] },
    ];
    const got = await demo.encodeChat(messages, { addGenerationPrompt: true });
    const want = renderChat(demo, messages, { addGenerationPrompt: true });
    expect(got.text).toBe(want);
    expect(got.ids).toEqual(demo.encode(want, { addSpecialTokens: false }));
  });

  test("a template's raise_exception comes back as a ChatTemplateError from the client", async () => {
    const template = "{% if messages[0].role != 'user' %}{{ raise_exception('first message must be from the user') }}{% endif %}x";
    const messages = [{ role: "assistant", content: text(SEED, 2 * INLINE_ENCODE_CHARS) }];
    const err = await demo.encodeChat(messages, { template }).catch((e) => e);
    expect(err).toBeInstanceOf(ChatTemplateError);
    expect((err as ChatTemplateError).fromTemplate).toBe(true);
    expect((err as Error).message).toContain("first message must be from the user");
  });

  test("this thread keeps running while a long text is encoded", async () => {
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const ticksAtStart = ticks;
    let ticksWhenDone = -1;
    // ~200K tokens: tens of milliseconds or more of work that, inline, would let no timer fire.
    await demo.encodeAsync(text(SEED, 800_000)).then(() => (ticksWhenDone = ticks));
    clearInterval(timer);
    expect(ticksWhenDone).toBeGreaterThan(ticksAtStart);
  });

  test("past MAX_QUEUED_CHARS new work is refused with TokenizerBusyError; close() fails what is queued", async () => {
    const tok = Tokenizer.fromDir(DEMO);
    const half = "x".repeat(MAX_QUEUED_CHARS / 2 + 1);
    const first = tok.encodeAsync(half).catch((e) => e); // an empty queue takes any one request
    expect(await tok.encodeAsync(half).catch((e) => e)).toBeInstanceOf(TokenizerBusyError);
    tok.close();
    expect(await first).toBeInstanceOf(TokenizerWorkerError);
  });
});
