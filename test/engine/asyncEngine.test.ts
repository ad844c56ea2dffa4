// The engine Worker seen from the serving thread: streamed deltas, abort through an AbortSignal,
// and the pipeline() library API.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { AsyncEngine, startEngine } from "../../src/engine/asyncEngine";
import { EngineCore } from "../../src/engine/engineCore";
import { runToCompletion } from "../../src/engine/runToCompletion";
import { pipeline } from "../../src/index";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
let engine: AsyncEngine;
beforeAll(async () => (engine = await startEngine(FIXTURE, { kvBlocks: 64, blockSize: 16 })));
afterAll(() => engine.shutdown());

async function collect(promptIds: number[], sampling: Parameters<AsyncEngine["generate"]>[0]["sampling"], id: string) {
  const deltas = [];
  for await (const d of engine.generate({ requestId: id, promptIds, sampling })) deltas.push(d);
  return deltas;
}

describe("AsyncEngine (engine in a Worker)", () => {
  test("streamed deltas join to the final text, also with multi-byte UTF-8", async () => {
    const prompt = engine.tokenizer.encode("你好 😀 café — naïve", { addSpecialTokens: true });
    const core = await EngineCore.load(FIXTURE, { kvBlocks: 64 });
    let sawNonAscii = false;
    for (let seed = 0; seed < 12; seed++) {
      const sampling = { maxTokens: 24, temperature: 1.3, seed, ignoreEos: true };
      const deltas = await collect(prompt, sampling, `s${seed}`);
      const streamed = deltas.map((d) => d.text).join("");
      const [whole] = runToCompletion(core, [{ promptIds: prompt }], sampling);
      expect(deltas.flatMap((d) => d.tokenIds)).toEqual(whole!.tokenIds);
      expect(streamed).toBe(whole!.text);
      // No delta ends inside a character: each is valid UTF-16 on its own.
      for (const d of deltas) expect(d.text).toBe(Buffer.from(d.text, "utf8").toString("utf8"));
      if (/[^\x00-\x7f]/.test(streamed)) sawNonAscii = true;
      expect(deltas.at(-1)!.finishReason).toBe("length");
    }
    core.destroy();
    expect(sawNonAscii).toBe(true);
  });

  test("aborting the signal ends the request and frees its KV blocks", async () => {
    const ac = new AbortController();
    const prompt = engine.tokenizer.encode("The value is", { addSpecialTokens: true });
    let n = 0;
    const it = engine.generate({ requestId: "long", promptIds: prompt, sampling: { maxTokens: 200, temperature: 0, ignoreEos: true } }, ac.signal);
    for await (const d of it) {
      if (++n === 2) ac.abort();
      if (d.finishReason) {
        expect(d.finishReason).toBe("abort");
        break;
      }
    }
    await Bun.sleep(50);
    // A short request afterwards refreshes the metrics the worker last sent.
    await collect(prompt, { maxTokens: 2, temperature: 0, ignoreEos: true }, "after");
    const m = engine.metrics();
    expect(m.kvBlocksFree).toBe(m.kvBlocksTotal);
    expect(m.requestsRunning + m.requestsWaiting).toBe(0);
  });

  test("breaking out of the loop aborts too", async () => {
    const prompt = engine.tokenizer.encode("The value is", { addSpecialTokens: true });
    for await (const _ of engine.generate({ requestId: "brk", promptIds: prompt, sampling: { maxTokens: 200, temperature: 0, ignoreEos: true } })) break;
    await collect(prompt, { maxTokens: 2, temperature: 0, ignoreEos: true }, "after2");
    expect(engine.metrics().kvBlocksFree).toBe(engine.metrics().kvBlocksTotal);
  });

  test("a bad request is refused with a clear error", async () => {
    await expect(collect([1, 2, 3], { maxTokens: 1000, temperature: 0 }, "toolong")).rejects.toThrow(/exceeds the model's context/);
  });
});

describe("pipeline()", () => {
  test("MII's call and response shape, and streaming", async () => {
    const pipe = await pipeline(FIXTURE, { kvBlocks: 64 });
    try {
      const out = await pipe(["Hello", "DeepSpeed is"], { max_new_tokens: 8, ignore_eos: true });
      expect(out).toHaveLength(2);
      for (const r of out) {
        expect(Object.keys(r).sort()).toEqual(["finish_reason", "generated_length", "generated_text", "prompt_length", "token_ids"]);
        expect(r.generated_length).toBe(8);
        expect(r.finish_reason).toBe("length");
        expect(r.prompt_length).toBeGreaterThan(0);
      }
      let text = "";
      for await (const d of pipe.stream("Hello", { max_new_tokens: 8, ignore_eos: true })) text += d.text;
      expect(text).toBe(out[0]!.generated_text);
    } finally {
      await pipe.destroy();
    }
  });
});
