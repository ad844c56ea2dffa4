/**
 * RemoteEngine (the load balancer's view of a replica) against a gRPC server over a FakeEngine:
 * deltas survive the round trip unchanged, aborting the signal aborts the remote request, the
 * server's refusals and failures come back as the engine's error types and a dead server as
 * ReplicaUnavailableError; probe() reports the model, outstanding tokens and metrics.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { GenerateRequest, GenerationDelta } from "../../src/engine/types";
import { EngineOverloadedError, EngineStepError, RequestRejectedError } from "../../src/engine/types";
import type { FastGenGrpcServer } from "../../src/grpc/grpcServer";
import { createGrpcServer } from "../../src/grpc/grpcServer";
import { RemoteEngine } from "../../src/grpc/remoteEngine";
import { ReplicaUnavailableError } from "../../src/engine/replicaErrors";
import { FakeEngine } from "../server/fakeEngine";
import { waitFor } from "../server/testServer";

let engine: FakeEngine;
let server: FastGenGrpcServer;
let remote: RemoteEngine;

beforeAll(async () => {
  engine = new FakeEngine();
  const histogram = { bounds: [1, 8], counts: [2, 5], sum: 17, count: 5 };
  const metrics = engine.metrics.bind(engine);
  const specDecode = { numDrafts: 4, numDraftTokens: 12, numAcceptedTokens: 7, acceptedPerPos: [4, 2, 1], governorProbes: 3, governorFlips: 1, offByBatch: [0, 1] };
  const grammar = { compiles: 3, compileSeconds: 0.75, cacheHits: 5, compileTimeouts: 1, masksComputed: 120, maskWaitSeconds: 0.125, workerRestarts: 2 };
  engine.metrics = () => ({ ...metrics(), iterationTokens: histogram, specDecode, grammar });
  server = createGrpcServer({ engine });
  const { address } = await server.listen("127.0.0.1", 0);
  remote = new RemoteEngine(address, engine.tokenizer);
});
afterAll(async () => {
  await remote.shutdown();
  await server.stop();
});

async function collect(e: { generate(r: GenerateRequest, s?: AbortSignal): AsyncIterable<GenerationDelta> }, r: GenerateRequest, signal?: AbortSignal) {
  const out: GenerationDelta[] = [];
  for await (const d of e.generate(r, signal)) out.push(d);
  return out;
}

describe("RemoteEngine", () => {
  test("probe reports the served model, its context and the engine's metrics", async () => {
    expect(remote.modelName).toBe("");
    const health = await remote.probe(2000);
    expect(health).toMatchObject({ serving: true, modelName: "fake-model", maxModelLen: 256, outstandingTokens: 0 });
    expect(remote.modelName).toBe("fake-model");
    expect(remote.maxModelLen).toBe(256);
    expect(remote.metrics().kvBlocksTotal).toBe(100);
    expect(remote.metrics().iterationTokens).toEqual({ bounds: [1, 8], counts: [2, 5], sum: 17, count: 5 });
    expect(remote.metrics().specDecode).toEqual({ numDrafts: 4, numDraftTokens: 12, numAcceptedTokens: 7, acceptedPerPos: [4, 2, 1], governorProbes: 3, governorFlips: 1, offByBatch: [0, 1] });
    expect(remote.metrics().grammar).toEqual({ compiles: 3, compileSeconds: 0.75, cacheHits: 5, compileTimeouts: 1, masksComputed: 120, maskWaitSeconds: 0.125, workerRestarts: 2 });
  });

  test("deltas equal the engine's own: samples, logprobs, stop reasons", async () => {
    const request = (id: string): GenerateRequest => ({
      requestId: id, promptIds: [40, 41], sampling: { maxTokens: 30, n: 2, logprobs: 2, stop: [" brown"], temperature: 0.5, seed: 3, logitBias: { 7: 2 } },
    });
    const direct = await collect(engine, request("direct"));
    const viaGrpc = await collect(remote, request("remote"));
    expect(viaGrpc).toEqual(direct);
    expect(viaGrpc.at(-1)!.stopReason).toBe(" brown");
    // The same options arrive (with the zero defaults spelled out).
    expect(engine.requests.at(-1)!.sampling).toEqual({ ...request("x").sampling, minTokens: 0, ignoreEos: false, presencePenalty: 0, frequencyPenalty: 0 });
  });

  test("vLLM's extras reach the replica: include_stop_str_in_output, skip_special_tokens, bad_words, allowed_token_ids", async () => {
    const sampling = { maxTokens: 3, includeStopStrInOutput: true, skipSpecialTokens: false, badWords: [[5, 6], [7]], allowedTokenIds: [40, 41, 42] };
    await collect(remote, { requestId: "extras", promptIds: [40], sampling });
    expect(engine.requests.at(-1)!.sampling).toMatchObject(sampling);
    await collect(remote, { requestId: "no-extras", promptIds: [40], sampling: { maxTokens: 3 } });
    const plain = engine.requests.at(-1)!.sampling;
    for (const k of ["includeStopStrInOutput", "skipSpecialTokens", "badWords", "allowedTokenIds"]) expect(plain).not.toHaveProperty(k);
  });

  test("aborting the signal aborts the remote request; open samples end as abort", async () => {
    engine.delayMs = 10;
    try {
      const controller = new AbortController();
      const pending = collect(remote, { requestId: "to-abort", promptIds: [40], sampling: { maxTokens: 200 } }, controller.signal);
      // The replica's engine id carries the caller's request id.
      await waitFor(() => engine.requests.at(-1)?.requestId.startsWith("to-abort-") === true && engine.metrics().requestsRunning > 0);
      const id = engine.requests.at(-1)!.requestId;
      controller.abort();
      const deltas = await pending;
      expect(deltas.at(-1)).toEqual({ index: 0, tokenIds: [], text: "", finishReason: "abort" });
      await waitFor(() => engine.aborted.includes(id));
    } finally {
      engine.delayMs = 0;
    }
  });

  test("refusals come back as the engine's error types", async () => {
    engine.overloaded = true;
    expect(await collect(remote, { requestId: "o", promptIds: [40], sampling: { maxTokens: 3 } }).catch((e) => e)).toBeInstanceOf(EngineOverloadedError);
    engine.overloaded = false;
    const tooLong = await collect(remote, { requestId: "l", promptIds: [40], sampling: { maxTokens: 1000 } }).catch((e) => e);
    expect(tooLong).toBeInstanceOf(RequestRejectedError);
    expect(tooLong.message).toContain("params.max_new_tokens");
  });

  test("a request the replica failed (INTERNAL) is the engine's failure, not the connection's", async () => {
    engine.crashAfter = 1;
    const quiet = console.error;
    console.error = () => {};
    try {
      const err = await collect(remote, { requestId: "c", promptIds: [40], sampling: { maxTokens: 5 } }).catch((e) => e);
      expect(err).toBeInstanceOf(EngineStepError);
      expect(err.message).not.toContain(remote.address); // it reaches clients: no internal address
    } finally {
      console.error = quiet;
      engine.crashAfter = null;
    }
  });

  test("a replica that refuses this side's API key does not pass its probe", async () => {
    const keyed = createGrpcServer({ engine, apiKey: "k1" });
    const { address } = await keyed.listen("127.0.0.1", 0);
    const wrong = new RemoteEngine(address, engine.tokenizer, "k2");
    const right = new RemoteEngine(address, engine.tokenizer, "k1");
    try {
      const err = await wrong.probe(2000).catch((e) => e);
      expect(err).toBeInstanceOf(ReplicaUnavailableError);
      expect(err.message).toContain("UNAUTHENTICATED");
      expect((await right.probe(2000)).serving).toBe(true);
      expect((await collect(right, { requestId: "k", promptIds: [40], sampling: { maxTokens: 2 } })).length).toBe(2);
    } finally {
      await Promise.all([wrong.shutdown(), right.shutdown()]);
      await keyed.stop();
    }
  });

  test("a server that is not there is ReplicaUnavailableError naming it", async () => {
    const nowhere = new RemoteEngine("127.0.0.1:1", engine.tokenizer);
    try {
      const err = await collect(nowhere, { requestId: "n", promptIds: [40], sampling: { maxTokens: 3 } }).catch((e) => e);
      expect(err).toBeInstanceOf(ReplicaUnavailableError);
      expect(err.message).toStartWith("replica 127.0.0.1:1 is unavailable: UNAVAILABLE");
      expect(await nowhere.probe(500).catch((e) => e)).toBeInstanceOf(ReplicaUnavailableError);
    } finally {
      await nowhere.shutdown();
    }
  });
});
