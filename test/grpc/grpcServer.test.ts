/**
 * The gRPC service over a FakeEngine, driven by a client generated from proto/fastgen.proto with
 * @grpc/proto-loader (no code shared with the server): every RPC, streaming, abort (by id and by
 * cancelling), typed sampling params reaching the engine, and the status code of every bad request.
 */
import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import type { FastGenGrpcServer } from "../../src/grpc/grpcServer";
import { createGrpcServer } from "../../src/grpc/grpcServer";
import { EOS_ID, FakeEngine, replyText } from "../server/fakeEngine";
import { waitFor } from "../server/testServer";
import type { ProtoClient } from "./protoClient";
import { protoClient, readStream } from "./protoClient";

let engine: FakeEngine;
let server: FastGenGrpcServer;
let c: ProtoClient;

beforeAll(async () => {
  engine = new FakeEngine();
  server = createGrpcServer({ engine });
  const { address } = await server.listen("127.0.0.1", 0);
  c = protoClient(address);
});
afterAll(async () => {
  c.close();
  await server.stop();
});
afterEach(() => {
  engine.delayMs = 0;
  engine.overloaded = false;
  engine.rejectWith = null;
  engine.crashAfter = null;
});

const text = (s: string) => ({ text: s });
const ids = (...xs: number[]) => ({ token_ids: { ids: xs } });

describe("ListModels and Health", () => {
  test("ListModels names the served model and its context", async () => {
    expect(await c.ListModels()).toEqual({ models: [{ id: "fake-model", max_model_len: 256 }] });
  });

  test("Health says serving, with the model and the engine's counters", async () => {
    const h = await c.Health();
    expect(h.serving).toBe(true);
    expect(h.replicas_healthy).toBe(1);
    expect(h.model).toEqual({ id: "fake-model", max_model_len: 256 });
    expect(h.metrics.kv_blocks_total).toBe(100);
    expect(h.replicas).toEqual([]);
  });
});

describe("Generate", () => {
  test("one MII-shaped response per prompt, text and token-id prompts alike", async () => {
    const res = await c.Generate({ prompts: [text("Hi"), ids(40, 41, 42)], params: { max_new_tokens: 9 } });
    expect(res.responses).toHaveLength(2);
    const [a, b] = res.responses;
    expect(a).toMatchObject({ generated_text: replyText(0).slice(0, 9), prompt_length: 3, generated_length: 9, finish_reason: "FINISH_REASON_LENGTH" });
    expect(a.token_ids).toHaveLength(9);
    expect(b).toMatchObject({ generated_text: replyText(0).slice(0, 9), prompt_length: 3, generated_length: 9 });
    // Each prompt is its own engine request.
    expect(engine.requests.slice(-2).map((r) => r.promptIds)).toEqual([engine.tokenizer.encode("Hi"), [40, 41, 42]]);
  });

  test("typed sampling params reach the engine", async () => {
    await c.Generate({
      prompts: [text("x")],
      params: {
        max_new_tokens: 4, min_new_tokens: 2, temperature: 0.5, top_p: 0.75, top_k: 7, min_p: 0.125, seed: 42, stop: ["zz"],
        stop_token_ids: [5], ignore_eos: true, presence_penalty: 0.5, frequency_penalty: -0.5, repetition_penalty: 1.25, logprobs: 2,
        logit_bias: { 9: 1.5 }, cache_salt: "tenant-a",
      },
    });
    expect(engine.requests.at(-1)!.sampling).toEqual({
      maxTokens: 4, minTokens: 2, temperature: 0.5, topP: 0.75, topK: 7, minP: 0.125, seed: 42, stop: ["zz"], stopTokenIds: [5],
      ignoreEos: true, presencePenalty: 0.5, frequencyPenalty: -0.5, repetitionPenalty: 1.25, logprobs: 2, logitBias: { 9: 1.5 }, n: 1,
      cacheSalt: "tenant-a",
    });
  });

  test("unset max_new_tokens defaults to 128 within the context; unset optionals stay unset", async () => {
    await c.Generate({ prompts: [text("x")] });
    expect(engine.requests.at(-1)!.sampling).toEqual({ maxTokens: 128, n: 1 });
    await c.Generate({ prompts: [text("x")], params: { stop: [] } });
    expect(engine.requests.at(-1)!.sampling).toEqual({ maxTokens: 128, minTokens: 0, ignoreEos: false, presencePenalty: 0, frequencyPenalty: 0, logprobs: 0, n: 1 });
    await c.Generate({ prompts: [ids(...Array.from({ length: 200 }, () => 40))] });
    expect(engine.requests.at(-1)!.sampling.maxTokens).toBe(56);
  });

  test("n samples per prompt come back prompt-major; stops, stop reasons and logprobs", async () => {
    const res = await c.Generate({ prompts: [text("a"), text("b")], params: { n: 2, stop: [" quick"], logprobs: 2 } });
    expect(res.responses.map((r: { generated_text: string }) => r.generated_text)).toEqual(["Reply 0: the", "Reply 1: the", "Reply 0: the", "Reply 1: the"]);
    for (const r of res.responses) {
      expect(r).toMatchObject({ finish_reason: "FINISH_REASON_STOP", stop_string: " quick", stop_reason: "stop_string" });
      expect(r.logprobs).toHaveLength(r.generated_length);
      expect(r.logprobs[0].top_ids).toHaveLength(2);
    }
    const eos = await c.Generate({ prompts: [text("a")], params: { max_new_tokens: 100, stop_token_ids: [EOS_ID] } });
    expect(eos.responses[0]).toMatchObject({ generated_text: replyText(0), finish_reason: "FINISH_REASON_STOP", stop_token_id: EOS_ID });
  });
});

describe("GenerateStream", () => {
  test("deltas add up to the reply; the last carries finish reason and lengths", async () => {
    const { messages, error } = await readStream(c.GenerateStream({ prompt: text("Hello"), params: { max_new_tokens: 12 } }));
    expect(error).toBeUndefined();
    expect(messages.map((m) => m.text).join("")).toBe(replyText(0).slice(0, 12));
    expect(messages.slice(0, -1).every((m) => m.finish_reason === "FINISH_REASON_UNSPECIFIED")).toBe(true);
    expect(messages.at(-1)).toMatchObject({ finish_reason: "FINISH_REASON_LENGTH", prompt_length: 6, generated_length: 12 });
  });

  test("n > 1 streams every sample, each with its index", async () => {
    const { messages } = await readStream(c.GenerateStream({ prompt: text("x"), params: { max_new_tokens: 3, n: 3 } }));
    const finals = messages.filter((m) => m.finish_reason !== "FINISH_REASON_UNSPECIFIED");
    expect(finals.map((m) => m.index).sort()).toEqual([0, 1, 2]);
  });

  test("cancelling the call aborts the engine request", async () => {
    engine.delayMs = 10;
    const call = c.GenerateStream({ prompt: text("x"), params: { max_new_tokens: 200 } });
    const read = readStream(call);
    await new Promise((r) => call.once("data", r));
    const id = engine.requests.at(-1)!.requestId;
    call.cancel();
    expect((await read).error?.code).toBe(status.CANCELLED);
    await waitFor(() => engine.aborted.includes(id));
  });
});

describe("Abort", () => {
  test("aborts a stream by request_id: it ends OK with FINISH_REASON_ABORT", async () => {
    engine.delayMs = 10;
    const call = c.GenerateStream({ prompt: text("x"), params: { max_new_tokens: 200 }, request_id: "stream-1" });
    const read = readStream(call);
    await new Promise((r) => call.once("data", r));
    expect(await c.Abort({ request_id: "stream-1" })).toEqual({ found: true });
    const { messages, error } = await read;
    expect(error).toBeUndefined();
    expect(messages.at(-1).finish_reason).toBe("FINISH_REASON_ABORT");
    expect(messages.length).toBeLessThan(200);
    expect(await c.Abort({ request_id: "stream-1" })).toEqual({ found: false });
  });

  test("aborts every prompt of a unary Generate", async () => {
    engine.delayMs = 10;
    const pending = c.Generate({ prompts: [text("a"), text("b")], params: { max_new_tokens: 200 }, request_id: "unary-1" });
    await waitFor(() => engine.requests.length > 0 && engine.metrics().generationTokensTotal > 0);
    await Bun.sleep(30);
    expect((await c.Abort({ request_id: "unary-1" })).found).toBe(true);
    const res = await pending;
    expect(res.responses.map((r: { finish_reason: string }) => r.finish_reason)).toEqual(["FINISH_REASON_ABORT", "FINISH_REASON_ABORT"]);
  });

  test("a request_id in flight cannot be reused (ALREADY_EXISTS); an empty one cannot be aborted", async () => {
    engine.delayMs = 10;
    const call = c.GenerateStream({ prompt: text("x"), params: { max_new_tokens: 50 }, request_id: "dup" });
    const read = readStream(call);
    await new Promise((r) => call.once("data", r));
    const err = await c.Generate({ prompts: [text("y")], request_id: "dup" }).catch((e) => e);
    expect(err.code).toBe(status.ALREADY_EXISTS);
    expect(err.details).toContain("dup");
    await c.Abort({ request_id: "dup" });
    await read;
    expect((await c.Abort({ request_id: "" }).catch((e) => e)).code).toBe(status.INVALID_ARGUMENT);
  });
});

describe("errors", () => {
  const vocab = () => engine.tokenizer.vocabSize;
  test.each([
    ["no prompts", { prompts: [] }, "prompts"],
    ["a prompt with neither text nor ids", { prompts: [{}] }, "prompts[0]"],
    ["an empty token-id list", { prompts: [ids()] }, "prompts[0].token_ids"],
    ["a token id outside the vocabulary", { prompts: [ids(1, 100000)] }, "prompts[0].token_ids.ids[1]"],
    ["a prompt longer than the context", { prompts: [ids(...new Array(300).fill(40))] }, "prompts[0]"],
    ["max_new_tokens past the context", { prompts: [text("x")], params: { max_new_tokens: 1000 } }, "params.max_new_tokens"],
    ["min_new_tokens over max_new_tokens", { prompts: [text("x")], params: { max_new_tokens: 2, min_new_tokens: 5 } }, "params.min_new_tokens"],
    ["a negative temperature", { prompts: [text("x")], params: { temperature: -1 } }, "params.temperature"],
    ["a NaN temperature", { prompts: [text("x")], params: { temperature: NaN } }, "params.temperature"],
    ["top_p 0", { prompts: [text("x")], params: { top_p: 0 } }, "params.top_p"],
    ["top_p above 1", { prompts: [text("x")], params: { top_p: 1.5 } }, "params.top_p"],
    ["top_k below -1", { prompts: [text("x")], params: { top_k: -5 } }, "params.top_k"],
    ["min_p above 1", { prompts: [text("x")], params: { min_p: 2 } }, "params.min_p"],
    ["presence_penalty out of range", { prompts: [text("x")], params: { presence_penalty: 3 } }, "params.presence_penalty"],
    ["repetition_penalty 0", { prompts: [text("x")], params: { repetition_penalty: 0 } }, "params.repetition_penalty"],
    ["logprobs above 20", { prompts: [text("x")], params: { logprobs: 21 } }, "params.logprobs"],
    ["n above 128", { prompts: [text("x")], params: { n: 500 } }, "params.n"],
    ["an empty stop string", { prompts: [text("x")], params: { stop: [""] } }, "params.stop"],
    ["five stop strings", { prompts: [text("x")], params: { stop: ["a", "b", "c", "d", "e"] } }, "params.stop"],
    ["a stop string over 1024 characters", { prompts: [text("x")], params: { stop: ["a", "s".repeat(1025)] } }, "params.stop[1]"],
    ["over 1024 stop token ids", { prompts: [text("x")], params: { stop_token_ids: new Array(1025).fill(1) } }, "params.stop_token_ids"],
    ["a negative stop token id", { prompts: [text("x")], params: { stop_token_ids: [-1] } }, "params.stop_token_ids[0]"],
    ["a stop token id outside the vocabulary", { prompts: [text("x")], params: { stop_token_ids: [100000] } }, "params.stop_token_ids[0]"],
    ["a logit bias out of range", { prompts: [text("x")], params: { logit_bias: { 5: 500 } } }, "params.logit_bias[5]"],
    ["an empty cache_salt", { prompts: [text("x")], params: { cache_salt: "" } }, "params.cache_salt"],
    ["a request_id over 256 characters", { prompts: [text("x")], request_id: "r".repeat(300) }, "request_id"],
  ])("Generate with %s is INVALID_ARGUMENT naming the field", async (_, req, field) => {
    const err = await c.Generate(req).catch((e) => e);
    expect(err.code).toBe(status.INVALID_ARGUMENT);
    expect(err.details).toStartWith(`${field}`);
    expect(vocab()).toBeGreaterThan(0);
  });

  test("GenerateStream without a prompt is INVALID_ARGUMENT", async () => {
    const { error } = await readStream(c.GenerateStream({ params: { max_new_tokens: 3 } }));
    expect(error?.code).toBe(status.INVALID_ARGUMENT);
    expect(error?.details).toContain("prompt");
  });

  test("an unknown model is NOT_FOUND on both generate RPCs", async () => {
    const err = await c.Generate({ model: "gpt-7", prompts: [text("x")] }).catch((e) => e);
    expect(err.code).toBe(status.NOT_FOUND);
    expect(err.details).toContain('"gpt-7"');
    const { error } = await readStream(c.GenerateStream({ model: "gpt-7", prompt: text("x") }));
    expect(error?.code).toBe(status.NOT_FOUND);
    // The served name works.
    expect((await c.Generate({ model: "fake-model", prompts: [text("x")], params: { max_new_tokens: 1 } })).responses).toHaveLength(1);
  });

  test("engine refusals map to RESOURCE_EXHAUSTED and INVALID_ARGUMENT; a crash to INTERNAL without details", async () => {
    engine.overloaded = true;
    expect((await c.Generate({ prompts: [text("x")] }).catch((e) => e)).code).toBe(status.RESOURCE_EXHAUSTED);
    engine.overloaded = false;
    engine.rejectWith = "too long";
    const rejected = await c.Generate({ prompts: [text("x")] }).catch((e) => e);
    expect(rejected.code).toBe(status.INVALID_ARGUMENT);
    expect(rejected.details).toContain("too long");
    engine.rejectWith = null;
    engine.crashAfter = 2;
    const error = console.error;
    console.error = () => {};
    try {
      const { messages, error: streamErr } = await readStream(c.GenerateStream({ prompt: text("x"), params: { max_new_tokens: 10 } }));
      expect(messages.length).toBe(2);
      expect(streamErr?.code).toBe(status.INTERNAL);
      expect(streamErr?.details).not.toContain("fake engine crashed");
    } finally {
      console.error = error;
    }
  });
});

describe("API key", () => {
  test("every RPC but Health wants 'authorization: Bearer <key>'; clients that send it get through", async () => {
    const { Metadata } = await import("@grpc/grpc-js");
    const keyed = createGrpcServer({ engine: new FakeEngine(), apiKey: "sekret" });
    const { address } = await keyed.listen("127.0.0.1", 0);
    const anon = protoClient(address);
    try {
      expect((await anon.Health()).serving).toBe(true);
      for (const call of [anon.ListModels(), anon.Generate({ prompts: [text("x")] }), anon.Abort({ request_id: "x" })]) {
        const err = await call.catch((e) => e);
        expect(err.code).toBe(status.UNAUTHENTICATED);
        expect(err.details).toContain("API key");
      }
      expect((await readStream(anon.GenerateStream({ prompt: text("x") }))).error?.code).toBe(status.UNAUTHENTICATED);
      const md = new Metadata();
      md.set("authorization", "Bearer sekret");
      const models = await new Promise((resolve, reject) => anon.raw.ListModels!({}, md, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
      expect(models).toEqual({ models: [{ id: "fake-model", max_model_len: 256 }] });
      const { client } = await import("../../src/grpc/client");
      const withKey = client(address, { apiKey: "sekret" });
      expect((await withKey.generate("x", { max_new_tokens: 3 }))[0]!.generated_length).toBe(3);
      withKey.close();
      const wrongKey = client(address, { apiKey: "nope" });
      expect((await wrongKey.models().catch((e) => e)).codeName).toBe("UNAUTHENTICATED");
      wrongKey.close();
    } finally {
      anon.close();
      await keyed.stop();
    }
  });
});

describe("stop", () => {
  test("lets calls in flight finish within the grace period, then ends the rest as ABORT", async () => {
    // 5 tokens take ~0.1 s, 250 take ~5 s: a 2 s grace separates them even on a loaded machine.
    const slow = new FakeEngine({ delayMs: 20 });
    const s = createGrpcServer({ engine: slow });
    const { address } = await s.listen("127.0.0.1", 0);
    const cl = protoClient(address);
    try {
      const short = readStream(cl.GenerateStream({ prompt: text("x"), params: { max_new_tokens: 5 } }));
      const long = readStream(cl.GenerateStream({ prompt: text("x"), params: { max_new_tokens: 250, ignore_eos: true } }));
      await waitFor(() => slow.requests.length === 2);
      await s.stop(2000);
      const [a, b] = await Promise.all([short, long]);
      expect(a.messages.at(-1)).toMatchObject({ finish_reason: "FINISH_REASON_LENGTH", generated_length: 5 });
      expect(b.messages.at(-1).finish_reason).toBe("FINISH_REASON_ABORT");
    } finally {
      cl.close();
    }
  });
});
