/**
 * vLLM's allowed_token_ids over the REAL engine (fastgen-demo-tiny, CPU), through the engine
 * contract's per-row allowed-token mask: every sampled token is in the allowed set, greedy and
 * seeded (n = 2), in-process, over HTTP (completions, chat, responses) and through a replica (gRPC).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import type { SamplingOptions } from "../../src/engine/samplingOptions";
import type { FastGenGrpcServer } from "../../src/grpc/grpcServer";
import { createGrpcServer } from "../../src/grpc/grpcServer";
import { RemoteEngine } from "../../src/grpc/remoteEngine";
import { startDemoEngine } from "../server/demoEngine";
import type { TestServer } from "../server/testServer";
import { serveEngine } from "../server/testServer";

let engine: AsyncEngine;
let t: TestServer<AsyncEngine>;
let grpc: FastGenGrpcServer;
let remote: RemoteEngine;
let allowed: number[];
let promptIds: number[];
beforeAll(async () => {
  engine = await startDemoEngine();
  t = await serveEngine(engine);
  grpc = createGrpcServer({ engine });
  remote = new RemoteEngine((await grpc.listen("127.0.0.1", 0)).address, engine.tokenizer);
  promptIds = engine.tokenizer.encode("The", { addSpecialTokens: true });
  // Words the model would not pick on its own after "The": the mask, not the model, chooses.
  allowed = [...new Set(engine.tokenizer.encode(" cat dog fish 7 blue", { addSpecialTokens: false }))];
});
afterAll(async () => {
  await remote?.shutdown();
  await grpc?.stop();
  await t?.close();
  await engine?.shutdown();
});

type Json = Record<string, any>;
const GREEDY = { temperature: 0 };
const SEEDED = { temperature: 1.5, seed: 7, n: 2 };

async function sampledIds(e: Pick<AsyncEngine, "generate">, id: string, sampling: Omit<SamplingOptions, "maxTokens">): Promise<number[][]> {
  const out: number[][] = [];
  for await (const d of e.generate({ requestId: id, promptIds, sampling: { maxTokens: 12, ignoreEos: true, ...sampling } })) {
    (out[d.index] ??= []).push(...d.tokenIds);
  }
  return out;
}

const post = async (path: string, body: Json): Promise<{ status: number; body: Json }> => {
  const res = await t.post(path, body);
  return { status: res.status, body: (await res.json()) as Json };
};

describe("the engine", () => {
  test.each([["greedy", GREEDY], ["seeded", SEEDED]] as const)("%s: every token is allowed, and the mask changed the output", async (_, sampling) => {
    const free = await sampledIds(engine, `free-${_}`, sampling);
    const masked = await sampledIds(engine, `masked-${_}`, { ...sampling, allowedTokenIds: allowed });
    expect(masked).toHaveLength(sampling === GREEDY ? 1 : 2);
    for (const ids of masked) {
      expect(ids).toHaveLength(12);
      for (const id of ids) expect(allowed).toContain(id);
    }
    expect(free.flat().some((id) => !allowed.includes(id))).toBe(true);
  });

  test("seeded and masked is reproducible", async () => {
    const a = await sampledIds(engine, "rep-a", { ...SEEDED, allowedTokenIds: allowed });
    const b = await sampledIds(engine, "rep-b", { ...SEEDED, allowedTokenIds: allowed });
    expect(a).toEqual(b);
  });

  test("through a replica (gRPC): the same tokens as in-process", async () => {
    for (const sampling of [GREEDY, SEEDED]) {
      const local = await sampledIds(engine, "grpc-local", { ...sampling, allowedTokenIds: allowed });
      const viaGrpc = await sampledIds(remote, "grpc-remote", { ...sampling, allowedTokenIds: allowed });
      expect(viaGrpc).toEqual(local);
    }
  });

  test("ids outside the vocabulary are refused", async () => {
    const err = await sampledIds(engine, "bad", { allowedTokenIds: [1, engine.tokenizer.vocabSize + 5] }).catch((e) => e);
    expect(err.message).toContain("allowed_token_ids");
  });
});

describe("over HTTP (logprobs name each sampled token)", () => {
  const allowedStrings = () => new Set(allowed.map((id) => engine.tokenizer.decode([id])));

  test.each([["greedy", GREEDY], ["seeded", SEEDED]] as const)("completions, %s", async (_, sampling) => {
    const { status, body } = await post("/v1/completions", { prompt: "The", max_tokens: 10, ignore_eos: true, logprobs: 0, allowed_token_ids: allowed, ...sampling });
    expect(status).toBe(200);
    for (const choice of body.choices) {
      expect(choice.logprobs.tokens).toHaveLength(10);
      for (const tok of choice.logprobs.tokens) expect(allowedStrings()).toContain(tok);
    }
  });

  test.each([["greedy", GREEDY], ["seeded", SEEDED]] as const)("chat, %s", async (_, sampling) => {
    const { status, body } = await post("/v1/chat/completions", {
      messages: [{ role: "user", content: "Name an animal." }], max_tokens: 10, ignore_eos: true, logprobs: true, allowed_token_ids: allowed, ...sampling,
    });
    expect(status).toBe(200);
    for (const choice of body.choices) {
      expect(choice.logprobs.content).toHaveLength(10);
      for (const lp of choice.logprobs.content) expect(allowedStrings()).toContain(lp.token);
    }
  });

  test("responses, seeded", async () => {
    const { status, body } = await post("/v1/responses", {
      input: "Name an animal.", max_output_tokens: 10, temperature: 1.5, seed: 3, include: ["message.output_text.logprobs"], allowed_token_ids: allowed,
    });
    expect(status).toBe(200);
    const lps = body.output[0].content[0].logprobs as { token: string }[];
    expect(lps.length).toBeGreaterThan(0);
    for (const lp of lps) expect(allowedStrings()).toContain(lp.token);
  });

  test.each([
    [[], "allowed_token_ids"],
    [[1, 1e9], "allowed_token_ids[1]"],
    ["cat", "allowed_token_ids"],
  ])("%j is a 400 naming %s", async (ids, param) => {
    const { status, body } = await post("/v1/completions", { prompt: "The", allowed_token_ids: ids });
    expect(status).toBe(400);
    expect(body.error).toMatchObject({ type: "invalid_request_error", param });
  });
});
