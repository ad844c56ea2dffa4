import { Metadata } from "@grpc/grpc-js";
/**
 * The load balancer over fake replicas: least-outstanding and round-robin routing per prompt, load
 * reported by replicas, failover of requests that had no output yet, a clear error for those that
 * had, eviction of a hung replica, rejoining after a restart, and the HTTP and gRPC servers serving
 * it unchanged.
 */
import { afterEach, describe, expect, test } from "bun:test";
import OpenAI from "openai";
import type { GenerateRequest, GenerationDelta } from "../../src/engine/types";
import { EngineOverloadedError } from "../../src/engine/types";
import { createGrpcServer } from "../../src/grpc/grpcServer";
import { RequestQuarantinedError } from "../../src/engine/engineErrors";
import { NoHealthyReplicaError, ReplicaFailedError } from "../../src/engine/replicaErrors";
import type { LoadBalancerOptions } from "../../src/lb/loadBalancer";
import { LoadBalancer } from "../../src/lb/loadBalancer";
import { createServer } from "../../src/server/httpServer";
import { charTokenizer } from "../server/fakeEngine";
import { waitFor } from "../server/testServer";
import { protoClient } from "../grpc/protoClient";
import { FakeReplica } from "./fakeReplica";

let balancers: LoadBalancer[] = [];
afterEach(async () => {
  await Promise.all(balancers.map((b) => b.shutdown()));
  balancers = [];
});

async function setup(count: number, options: Partial<LoadBalancerOptions> = {}, delayMs = 2) {
  const replicas = Array.from({ length: count }, (_, i) => new FakeReplica(`fake-${i}:1`, { delayMs }));
  const lb = new LoadBalancer(replicas, { modelName: "fake-model", maxModelLen: 256, tokenizer: charTokenizer(), log: () => {}, ...options });
  balancers.push(lb);
  await lb.start();
  return { replicas, lb };
}

let nextId = 0;
const request = (maxTokens = 8, promptLen = 4): GenerateRequest => ({
  requestId: `r${nextId++}`,
  promptIds: Array.from({ length: promptLen }, () => 40),
  sampling: { maxTokens },
});

async function run(lb: LoadBalancer, req = request(), signal?: AbortSignal): Promise<GenerationDelta[]> {
  const out: GenerationDelta[] = [];
  for await (const d of lb.generate(req, signal)) out.push(d);
  return out;
}

const counts = (replicas: FakeReplica[]) => replicas.map((r) => r.requests.length);

describe("routing", () => {
  test("30 concurrent prompts are spread evenly by least outstanding tokens", async () => {
    const { replicas, lb } = await setup(3);
    const results = await Promise.all(Array.from({ length: 30 }, () => run(lb, request(16))));
    expect(results.every((r) => r.at(-1)?.finishReason === "length")).toBe(true);
    expect(counts(replicas)).toEqual([10, 10, 10]);
    expect(lb.replicaStatus().map((s) => s.requestsRouted)).toEqual([10, 10, 10]);
    expect(lb.replicaStatus().every((s) => s.outstandingTokens === 0 && s.requestsInFlight === 0)).toBe(true);
  });

  test("a busy replica gets no more work while the others have less outstanding", async () => {
    const { replicas, lb } = await setup(3);
    const long = run(lb, request(200, 50));
    await waitFor(() => replicas.some((r) => r.requests.length === 1));
    const busy = replicas.findIndex((r) => r.requests.length === 1);
    for (let i = 0; i < 6; i++) await run(lb, request(4));
    expect(replicas[busy]!.requests).toHaveLength(1);
    expect(counts(replicas).reduce((a, b) => a + b)).toBe(7);
    await long;
  });

  test("load a replica reports (from other front ends) counts too", async () => {
    const { replicas, lb } = await setup(2);
    replicas[0]!.reportedTokens = 10_000;
    await lb.health.checkAll();
    for (let i = 0; i < 4; i++) await run(lb, request(4));
    expect(counts(replicas)).toEqual([0, 4]);
  });

  test("round-robin takes turns whatever the load", async () => {
    const { replicas, lb } = await setup(3, { policy: "round-robin" });
    replicas[0]!.reportedTokens = 10_000;
    await lb.health.checkAll();
    for (let i = 0; i < 6; i++) await run(lb, request(2));
    expect(counts(replicas)).toEqual([2, 2, 2]);
  });

  test("aborting the caller's signal aborts the request on its replica", async () => {
    const { replicas, lb } = await setup(1, {}, 10);
    const controller = new AbortController();
    const req = request(200);
    const done = run(lb, req, controller.signal);
    await waitFor(() => replicas[0]!.metrics().generationTokensTotal > 0);
    controller.abort();
    await done;
    await waitFor(() => replicas[0]!.aborted.includes(req.requestId));
    expect(lb.replicaStatus()[0]!.requestsInFlight).toBe(0);
  });
});

describe("failures", () => {
  test("requests queued on a replica that dies move to the others and complete", async () => {
    const { replicas, lb } = await setup(3);
    replicas[1]!.hold = true;
    const pending = Array.from({ length: 6 }, () => run(lb, request(8)));
    await waitFor(() => lb.replicaStatus()[1]!.requestsInFlight === 2);
    replicas[1]!.crash();
    const results = await Promise.all(pending);
    expect(results.every((r) => r.at(-1)?.finishReason === "length" && r.length === 8)).toBe(true);
    expect(lb.replicaStatus()[1]!.healthy).toBe(false);
    expect(lb.replicaStatus()[1]!.lastError).toContain("Connection dropped");
    expect(counts(replicas)).toEqual([3, 0, 3]);
  });

  test("a request with output on a replica that dies fails with a clear error; the service keeps answering", async () => {
    const { replicas, lb } = await setup(2, {}, 10);
    const started = run(lb, request(200)).catch((e) => e);
    await waitFor(() => replicas.some((r) => r.metrics().generationTokensTotal > 0));
    const victim = replicas.find((r) => r.requests.length === 1)!;
    victim.crash();
    const err = await started;
    expect(err).toBeInstanceOf(ReplicaFailedError);
    expect(err.message).toContain(`replica ${replicas.indexOf(victim)} failed while running this request`);
    expect(err.message).not.toContain(victim.address); // internal addresses stay in the log
    expect(err.address).toBe(victim.address);
    const other = replicas.find((r) => r !== victim)!;
    expect((await run(lb, request(3))).at(-1)?.finishReason).toBe("length");
    expect(other.requests.length).toBeGreaterThan(0);
  });

  test("a request whose replica died holding it is not moved; an identical one is refused for a while", async () => {
    const { replicas, lb } = await setup(3, {}, 10);
    const poison = request(200);
    const failed = run(lb, poison).catch((e) => e);
    await waitFor(() => replicas.some((r) => r.requests.length === 1));
    const victim = replicas.find((r) => r.requests.length === 1)!;
    victim.crash();
    const err = await failed;
    expect(err).toBeInstanceOf(ReplicaFailedError);
    expect(err.message).toContain("not sent to another replica");
    expect(replicas.reduce((n, r) => n + r.requests.length, 0)).toBe(1); // not re-sent
    // The same prompt and sampling options again: refused before any replica sees it.
    const again = await run(lb, { ...poison, requestId: "retry" }).catch((e) => e);
    expect(again).toBeInstanceOf(RequestQuarantinedError);
    expect(replicas.reduce((n, r) => n + r.requests.length, 0)).toBe(1);
    expect(lb.quarantine.size).toBe(1);
    // Any other request is served by the replicas still up.
    expect((await run(lb, request(3))).at(-1)?.finishReason).toBe("length");
  });

  test("a replica that dies holding several requests gives each a strike; two strikes quarantine", async () => {
    const { replicas, lb } = await setup(1, {}, 10);
    const a = request(200, 3);
    const b = request(200, 5);
    const first = [run(lb, a).catch((e) => e), run(lb, b).catch((e) => e)];
    await waitFor(() => replicas[0]!.requests.length === 2);
    replicas[0]!.crash();
    for (const err of await Promise.all(first)) expect(err).toBeInstanceOf(ReplicaFailedError);
    expect(lb.quarantine.size).toBe(0); // nothing says which one did it
    replicas[0]!.restart();
    await lb.health.checkAll();
    const second = [run(lb, { ...a, requestId: "a2" }).catch((e) => e), run(lb, request(200, 7)).catch((e) => e)];
    await waitFor(() => replicas[0]!.requests.length === 4);
    replicas[0]!.crash();
    await Promise.all(second);
    replicas[0]!.restart();
    await lb.health.checkAll();
    expect(lb.quarantine.size).toBe(1); // a was in flight at both crashes
    expect(await run(lb, { ...a, requestId: "a3" }).catch((e) => e)).toBeInstanceOf(RequestQuarantinedError);
    expect((await run(lb, { ...b, requestId: "b3" })).at(-1)?.finishReason).toBeString(); // one strike only: served
  });

  test("a request that brings replicas down is not moved past maxReplicaFailures", async () => {
    const { replicas, lb } = await setup(3, { maxReplicaFailures: 2 });
    for (const r of replicas) r.hold = true;
    const pending = run(lb, request(4)).catch((e) => e);
    for (let k = 0; k < 2; k++) {
      await waitFor(() => lb.replicaStatus().some((s) => s.requestsInFlight === 1));
      const holder = lb.replicaStatus().findIndex((s) => s.requestsInFlight === 1);
      replicas[holder]!.crash();
      await waitFor(() => lb.replicaStatus()[holder]!.requestsInFlight === 0);
    }
    const err = await pending;
    expect(err).toBeInstanceOf(ReplicaFailedError);
    expect(lb.replicaStatus().filter((s) => s.healthy)).toHaveLength(1);
  });

  test("a restarted replica rejoins at the next health check and receives work again", async () => {
    const { replicas, lb } = await setup(2);
    replicas[0]!.crash();
    await lb.health.checkAll();
    for (let i = 0; i < 3; i++) await run(lb, request(2));
    expect(counts(replicas)).toEqual([0, 3]);
    replicas[0]!.restart();
    await lb.health.checkAll();
    expect(lb.replicaStatus()[0]!.healthy).toBe(true);
    await Promise.all(Array.from({ length: 4 }, () => run(lb, request(4))));
    expect(replicas[0]!.requests.length).toBeGreaterThanOrEqual(2);
  });

  test("with every replica down the caller gets NoHealthyReplicaError (503 on HTTP)", async () => {
    const { replicas, lb } = await setup(2);
    for (const r of replicas) r.crash();
    await lb.health.checkAll();
    const err = await run(lb).catch((e) => e);
    expect(err).toBeInstanceOf(NoHealthyReplicaError);
    expect(err).toBeInstanceOf(EngineOverloadedError);
    expect(err.message).toContain("2 of 2 down");
    expect(err.message).not.toContain("fake-0:1");
    expect(err.message).not.toContain("ECONNREFUSED");
  });

  test("an overloaded replica passes the request on; all overloaded is an overload", async () => {
    const { replicas, lb } = await setup(2);
    replicas[0]!.overloaded = true;
    for (let i = 0; i < 3; i++) await run(lb, request(2));
    expect(counts(replicas)).toEqual([0, 3]);
    expect(lb.replicaStatus()[0]!.healthy).toBe(true);
    replicas[1]!.overloaded = true;
    const err = await run(lb).catch((e) => e);
    expect(err).toBeInstanceOf(EngineOverloadedError);
    expect(err).not.toBeInstanceOf(NoHealthyReplicaError);
  });

  test("a replica that stops answering health checks is evicted: its running requests fail", async () => {
    const { replicas, lb } = await setup(1, { timeoutMs: 5, evictAfter: 2 }, 10);
    const running = run(lb, request(200)).catch((e) => e);
    await waitFor(() => replicas[0]!.metrics().generationTokensTotal > 0);
    replicas[0]!.hang = true;
    await lb.health.checkAll();
    expect(lb.replicaStatus()[0]!.healthy).toBe(false);
    await lb.health.checkAll();
    const err = await running;
    expect(err).toBeInstanceOf(ReplicaFailedError);
    expect(err.cause.message).toContain("health checks"); // for the log; the client is told less
  });

  test("a replica serving another model is kept out", async () => {
    const { replicas, lb } = await setup(2);
    replicas[1]!.servedModel = "other-model";
    await lb.health.checkAll();
    expect(lb.replicaStatus()[1]).toMatchObject({ healthy: false, lastError: expect.stringContaining('"other-model"') });
  });
});

describe("metrics", () => {
  test("sum the replicas' counters and histograms", async () => {
    const { replicas, lb } = await setup(2);
    for (const r of replicas) {
      const own = r.metrics.bind(r);
      const specDecode = { numDrafts: 3, numDraftTokens: 9, numAcceptedTokens: 5, acceptedPerPos: [3, 1, 1], governorProbes: 2, governorFlips: 1, offByBatch: [1, 0] };
      const grammar = { compiles: 3, compileSeconds: 0.75, cacheHits: 5, compileTimeouts: 1, masksComputed: 120, maskWaitSeconds: 0.125, workerRestarts: 2 };
      r.metrics = () => ({ ...own(), iterationTokens: { bounds: [1, 8], counts: [1, 2], sum: 5, count: 2 }, specDecode, grammar });
    }
    await Promise.all([run(lb, request(3)), run(lb, request(3))]);
    const m = lb.metrics();
    expect(m.kvBlocksTotal).toBe(200);
    expect(m.generationTokensTotal).toBe(6);
    expect(m.iterationTokens).toEqual({ bounds: [1, 8], counts: [2, 4], sum: 10, count: 4 });
    expect(m.queueTimeSeconds).toBeUndefined();
    expect(m.specDecode).toEqual({ numDrafts: 6, numDraftTokens: 18, numAcceptedTokens: 10, acceptedPerPos: [6, 2, 2], governorProbes: 4, governorFlips: 2, offByBatch: [2, 0] });
    expect(m.grammar).toEqual({ compiles: 6, compileSeconds: 1.5, cacheHits: 10, compileTimeouts: 2, masksComputed: 240, maskWaitSeconds: 0.25, workerRestarts: 4 });
  });

  test("speculative decoding's counters: summed where replicas have them, absent where none does", async () => {
    const { replicas, lb } = await setup(2);
    expect(lb.metrics().specDecode).toBeUndefined();
    expect(lb.metrics().grammar).toBeUndefined(); // likewise the grammar counters (addGrammarMetrics)
    const own = replicas[1]!.metrics.bind(replicas[1]!);
    const only = { numDrafts: 2, numDraftTokens: 4, numAcceptedTokens: 3, acceptedPerPos: [2, 1], governorProbes: 1, governorFlips: 0, offByBatch: [] };
    replicas[1]!.metrics = () => ({ ...own(), specDecode: only });
    expect(lb.metrics().specDecode).toEqual(only);
  });
});

describe("servers over the balancer", () => {
  test("gRPC Health shows replica addresses and errors only to a caller with the API key", async () => {
    const { lb } = await setup(2);
    const grpc = createGrpcServer({ engine: lb, apiKey: "sekret" });
    const { address } = await grpc.listen("127.0.0.1", 0);
    const c = protoClient(address);
    try {
      const anonymous = await c.Health();
      expect(anonymous.replicas_healthy).toBe(2);
      expect(anonymous.replicas.map((r: { address: string }) => r.address)).toEqual(["replica 0", "replica 1"]);
      const md = new Metadata();
      md.set("authorization", "Bearer sekret");
      const operator = await new Promise<{ replicas: { address: string }[] }>((resolve, reject) =>
        c.raw.Health!({}, md, (err: Error | null, res: { replicas: { address: string }[] }) => (err ? reject(err) : resolve(res))),
      );
      expect(operator.replicas.map((r) => r.address)).toEqual(["fake-0:1", "fake-1:1"]);
    } finally {
      c.close();
      await grpc.stop();
    }
  });

  test("HTTP completions route each prompt on its own; gRPC Health lists the replicas", async () => {
    const { replicas, lb } = await setup(3);
    const http = createServer({ engine: lb });
    const { url } = await http.listen("127.0.0.1", 0);
    const grpc = createGrpcServer({ engine: lb });
    const { address } = await grpc.listen("127.0.0.1", 0);
    const c = protoClient(address);
    try {
      const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 });
      const res = await openai.completions.create({ model: "fake-model", prompt: ["a", "b", "c"], max_tokens: 5 });
      expect(res.choices.map((ch) => ch.text)).toEqual(["Reply", "Reply", "Reply"]);
      expect(counts(replicas)).toEqual([1, 1, 1]);
      const metrics = await fetch(`${url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(await metrics.text()).toContain("generation_tokens");
      const health = await c.Health();
      expect(health.replicas_healthy).toBe(3);
      expect(health.replicas.map((r: { address: string }) => r.address)).toEqual(["fake-0:1", "fake-1:1", "fake-2:1"]);
      expect(health.replicas.map((r: { requests_routed: number }) => r.requests_routed)).toEqual([1, 1, 1]);
      for (const r of replicas) r.crash();
      await lb.health.checkAll();
      expect((await c.Health()).serving).toBe(false);
      const err = await openai.completions.create({ model: "fake-model", prompt: "a", max_tokens: 5 }).catch((e) => e);
      expect(err.status).toBe(503);
    } finally {
      c.close();
      await Promise.all([http.stop(), grpc.stop()]);
    }
  });
});
