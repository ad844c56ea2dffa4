/**
 * vLLM's behaviours and parameters over the REAL engine (fastgen-demo-tiny, CPU): the text of a
 * stop token or EOS is dropped unless include_stop_str_in_output; skip_special_tokens, bad_words,
 * truncate_prompt_tokens, prompt_logprobs, max_tokens 0 with echo, continue_final_message.
 */
import { describe, expect, test } from "bun:test";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { useDemoServer } from "../server/demoEngine";
import type { TestServer } from "../server/testServer";

const QUESTION = [{ role: "user", content: "What does os.path.join do?" }];
let engine: AsyncEngine;
let t: TestServer<AsyncEngine>;
useDemoServer((e, server) => ((engine = e), (t = server)));

type Json = Record<string, any>;
const post = async (path: string, body: Json): Promise<{ status: number; body: Json }> => {
  const res = await t.post(path, body);
  return { status: res.status, body: (await res.json()) as Json };
};
const complete = async (body: Json) => (await post("/v1/completions", { prompt: "The", max_tokens: 16, temperature: 0, ...body })).body;
const chat = async (body: Json) => (await post("/v1/chat/completions", { messages: QUESTION, max_tokens: 64, temperature: 0, ...body })).body;

/** Greedy output ids of "The", straight from the engine. */
async function greedyIds(n: number): Promise<number[]> {
  const ids: number[] = [];
  const promptIds = engine.tokenizer.encode("The", { addSpecialTokens: true });
  for await (const d of engine.generate({ requestId: `ids-${n}`, promptIds, sampling: { maxTokens: n, temperature: 0 } })) ids.push(...d.tokenIds);
  return ids;
}

describe("stop tokens and EOS", () => {
  test("a stop_token_ids token's text is dropped unless include_stop_str_in_output (its id still counts)", async () => {
    const ids = await greedyIds(16);
    const at = ids.findIndex((id, i) => i >= 2 && !ids.slice(0, i).includes(id) && engine.tokenizer.decode([id]).trim() !== "");
    const stop = ids[at]!;
    const full = (await complete({}) as Json).choices[0].text as string;
    const cut = await complete({ stop_token_ids: [stop] });
    const kept = await complete({ stop_token_ids: [stop], include_stop_str_in_output: true });
    expect(cut.choices[0]).toMatchObject({ finish_reason: "stop", stop_reason: stop });
    expect(cut.usage.completion_tokens).toBe(at + 1);
    expect(kept.usage.completion_tokens).toBe(at + 1);
    const piece = kept.choices[0].text.slice(cut.choices[0].text.length);
    expect(piece.trim()).toBe(engine.tokenizer.decode([stop]).trim());
    expect(full.startsWith(kept.choices[0].text)).toBe(true);
    expect(kept.choices[0].text.startsWith(cut.choices[0].text)).toBe(true);
  });

  test("EOS (generation_config's eos_token_id list) is never in the text, even with skip_special_tokens false, unless included", async () => {
    const plain = await chat({});
    expect(plain.choices[0].finish_reason).toBe("stop");
    const raw = await chat({ skip_special_tokens: false });
    expect(raw.choices[0].message.content).toBe(plain.choices[0].message.content);
    const included = await chat({ skip_special_tokens: false, include_stop_str_in_output: true });
    expect(included.choices[0].message.content).toMatch(/^[\s\S]+(<\|im_end\|>|<\|endoftext\|>)$/);
    expect(included.choices[0].message.content.startsWith(plain.choices[0].message.content)).toBe(true);
  });

  test("stop strings stay cut unless include_stop_str_in_output", async () => {
    const full = (await complete({})).choices[0].text as string;
    const word = full.trim().split(/\s+/)[2]!;
    const cut = await complete({ stop: [word] });
    const kept = await complete({ stop: [word], include_stop_str_in_output: true });
    expect(kept.choices[0].text).toBe(`${cut.choices[0].text}${word}`);
  });
});

describe("vLLM request parameters", () => {
  test("bad_words: the word is never generated", async () => {
    const plain = (await chat({})).choices[0].message.content as string;
    expect(plain).toMatch(/\bfile\b/);
    // The word's tokens are banned; a longer word spelled with other tokens ("filename") may remain, as in vLLM.
    const banned = (await chat({ bad_words: ["file"] })).choices[0].message.content as string;
    expect(banned).not.toMatch(/\bfile\b/);
    expect(banned).not.toBe(plain);
  });

  test("truncate_prompt_tokens keeps the prompt's last k tokens", async () => {
    const prompt = "The quick brown fox jumps over the lazy dog";
    const ids = engine.tokenizer.encode(prompt, { addSpecialTokens: true });
    const r = await complete({ prompt, truncate_prompt_tokens: 3, echo: true, max_tokens: 1 });
    expect(r.usage.prompt_tokens).toBe(3);
    expect(r.choices[0].text.startsWith(engine.tokenizer.decode(ids.slice(-3)))).toBe(true);
    const c = await chat({ truncate_prompt_tokens: 5, max_tokens: 1 });
    expect(c.usage.prompt_tokens).toBe(5);
  });

  test("prompt_logprobs: null for the first prompt token, then the token and its top k", async () => {
    const ids = engine.tokenizer.encode("The quick brown", { addSpecialTokens: true });
    const r = await complete({ prompt: "The quick brown", prompt_logprobs: 2, max_tokens: 1 });
    const lps = r.choices[0].prompt_logprobs as (Record<string, { logprob: number; rank: number | null; decoded_token: string }> | null)[];
    expect(lps).toHaveLength(ids.length);
    expect(lps[0]).toBeNull();
    for (let i = 1; i < ids.length; i++) {
      const entry = lps[i]!;
      expect(entry[String(ids[i])]!.decoded_token).toBe(engine.tokenizer.decode([ids[i]!]));
      expect(Object.keys(entry).length).toBeGreaterThanOrEqual(2);
      expect(Object.values(entry).every((e) => e.logprob <= 0)).toBe(true);
    }
    const c = await chat({ prompt_logprobs: 0, max_tokens: 1 });
    expect(c.prompt_logprobs.length).toBe(c.usage.prompt_tokens);
    expect((await post("/v1/completions", { prompt: "x", prompt_logprobs: 1, stream: true })).status).toBe(400);
  });

  test("max_tokens 0 with echo scores the prompt; without echo it is a 400", async () => {
    const ids = engine.tokenizer.encode("The quick brown", { addSpecialTokens: true });
    const r = await complete({ prompt: "The quick brown", max_tokens: 0, echo: true, logprobs: 1 });
    expect(r.choices[0].text).toBe("The quick brown");
    expect(r.choices[0].finish_reason).toBe("length");
    expect(r.usage).toMatchObject({ prompt_tokens: ids.length, completion_tokens: 0, total_tokens: ids.length });
    expect(r.choices[0].logprobs.tokens).toHaveLength(ids.length);
    expect(r.choices[0].logprobs.token_logprobs[0]).toBeNull();
    const streamed = await t.post("/v1/completions", { prompt: "The quick brown", max_tokens: 0, echo: true, stream: true });
    const text = (await streamed.text()).split("\n\n").filter((e) => e.startsWith("data: {")).map((e) => JSON.parse(e.slice(6)).choices[0].text).join("");
    expect(text).toBe("The quick brown");
    const refused = await post("/v1/completions", { prompt: "x", max_tokens: 0 });
    expect(refused.status).toBe(400);
    expect(refused.body.error.param).toBe("max_tokens");
  });

  test("continue_final_message continues the assistant's text; with add_generation_prompt it is a 400", async () => {
    const whole = (await chat({})).choices[0].message.content as string;
    const head = whole.split(" ").slice(0, 2).join(" ");
    const rest = await chat({ messages: [...QUESTION, { role: "assistant", content: head }], continue_final_message: true, add_generation_prompt: false, max_tokens: 4 });
    expect(whole.startsWith(head + rest.choices[0].message.content)).toBe(true);
    const both = await post("/v1/chat/completions", { messages: [...QUESTION, { role: "assistant", content: head }], continue_final_message: true, add_generation_prompt: true });
    expect(both.status).toBe(400);
    expect(both.body.error.param).toBe("continue_final_message");
  });

  test("chat_template_kwargs and spaces_between_special_tokens are accepted", async () => {
    const r = await post("/v1/chat/completions", { messages: QUESTION, max_tokens: 2, chat_template_kwargs: { enable_thinking: false }, spaces_between_special_tokens: false });
    expect(r.status).toBe(200);
  });
});
