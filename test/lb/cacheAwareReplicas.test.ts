/**
 * Cache-aware routing over two real CPU replicas (`fastgen replica` processes of the demo model)
 * behind the front end serve() starts: conversations whose turns re-send their history stick to
 * the replica that cached them (every later turn finds its history in usage's cached_tokens), load
 * still spreads when prompts share nothing, a replica's KvEvents snapshot equals the front end's
 * index of it (what a resync rebuilds), and a killed replica's index is emptied until its
 * restarted self reports again.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ServeHandle } from "../../src/deploy/serve";
import { serve } from "../../src/deploy/serve";
import { defaultModelDir } from "../../src/model/defaultModel";
import type { LoadBalancer } from "../../src/lb/loadBalancer";
import { PromptChain } from "../../src/lb/promptChain";
import { RpcClient } from "../../src/grpc/rpcClient";
import type { WireKvEventBatch } from "../../src/grpc/kvEventsWire";
import { kvBatchFromWire } from "../../src/grpc/kvEventsWire";
import { KvBlockIndex } from "../../src/engine/kvCache/kvBlockIndex";
import type { ProtoClient } from "../grpc/protoClient";
import { protoClient } from "../grpc/protoClient";

let h: ServeHandle;
let front: ProtoClient;
let lb: LoadBalancer;

beforeAll(async () => {
  h = await serve(defaultModelDir(), {
    replicas: 2,
    port: 0,
    engine: { threads: 1 },
    health: { intervalMs: 200, timeoutMs: 2000 },
    log: () => {},
    output: () => {},
  });
  front = protoClient(h.address);
  lb = h.engine as LoadBalancer;
}, 60_000);

afterAll(async () => {
  front?.close();
  await h?.terminate();
});

async function until(cond: () => boolean | Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await Bun.sleep(20);
  }
}

let x = 7;
const tokens = (n: number) => Array.from({ length: n }, () => ((x = (x * 1103515245 + 12345) & 0x7fffffff), 10 + (x % 400)));
const routed = async () => (await front.Health()).replicas.map((r: { requests_routed: number }) => r.requests_routed) as number[];

/** One greedy turn: the reply's token ids, cached_tokens, and which replica ran it. */
async function turn(prompt: number[]): Promise<{ ids: number[]; cached: number; replica: number }> {
  const before = await routed();
  const res = await front.Generate({ prompts: [{ token_ids: { ids: prompt } }], params: { max_new_tokens: 8, temperature: 0 } });
  const after = await routed();
  const r = res.responses[0];
  return { ids: r.token_ids, cached: r.cached_tokens, replica: after.findIndex((n, i) => n > before[i]!) };
}

/** The prompt tokens the front end's index says replica i holds. */
const indexed = (i: number, prompt: number[]) => new PromptChain({ promptIds: prompt, cacheSalt: "", cacheable: true }).cachedTokens(lb.replicas[i]!.cache);

describe("cache-aware routing over 2 CPU replicas", () => {
  test("it is the default policy; each replica's index follows its cache", () => {
    expect((lb as unknown as { router: { policy: string } }).router.policy).toBe("cache-aware");
    expect(lb.kvSubscribers.every((s) => s !== null)).toBe(true);
  });

  test("each conversation's later turns go to the replica that cached it and find its history", async () => {
    const CONVS = 4;
    const TURNS = 4;
    const history = Array.from({ length: CONVS }, () => tokens(70));
    const home: number[] = [];
    let cached = 0;
    let prompted = 0;
    for (let t = 0; t < TURNS; t++) {
      for (let c = 0; c < CONVS; c++) {
        const prompt = history[c]!;
        if (t > 0) await until(() => indexed(home[c]!, prompt) > 0, 5000); // the last turn's events are in
        const r = await turn(prompt);
        if (t === 0) home[c] = r.replica;
        else {
          expect(r.replica).toBe(home[c]!);
          // Everything but the new user tokens (and the partial last block) was cached.
          expect(r.cached).toBeGreaterThanOrEqual(Math.floor((prompt.length - 24 - 8) / 16) * 16);
          cached += r.cached;
          prompted += prompt.length;
        }
        history[c] = [...prompt, ...r.ids, ...tokens(16)];
      }
    }
    // First turns spread (equal loads take turns); later turns hit.
    expect(new Set(home).size).toBe(2);
    expect(cached / prompted).toBeGreaterThan(0.6);
  }, 60_000);

  test("prompts that share nothing still spread over both replicas", async () => {
    const before = await routed();
    const res = await front.Generate({ prompts: Array.from({ length: 20 }, () => ({ token_ids: { ids: tokens(40) } })), params: { max_new_tokens: 16, ignore_eos: true } });
    expect(res.responses).toHaveLength(20);
    const shares = (await routed()).map((n, i) => n - before[i]!);
    for (const share of shares) expect(share).toBeGreaterThanOrEqual(5);
  }, 60_000);

  test("a new subscriber's snapshot (what a resync rebuilds) equals the front end's index", async () => {
    const rpc = new RpcClient(h.processes[0]!.address);
    try {
      const stream = rpc.stream<WireKvEventBatch>("KvEvents", {});
      const fresh = new KvBlockIndex();
      for await (const m of stream.messages) {
        expect(fresh.apply(kvBatchFromWire(m))).toBe("applied");
        break;
      }
      const mine = lb.replicas[0]!.cache;
      await until(() => mine.seq === fresh.seq, 5000);
      expect(fresh.size).toBeGreaterThan(0);
      expect(fresh.snapshot()).toEqual(mine.snapshot());
    } finally {
      rpc.close();
    }
  });

  test("a killed replica's index is emptied; its restarted self reports from an empty cache", async () => {
    const victim = h.processes[1]!;
    const index = lb.replicas[1]!.cache;
    expect(index.size).toBeGreaterThan(0);
    const resyncs = lb.kvSubscribers[1]!.resyncs;
    process.kill(victim.pid!, "SIGKILL");
    await until(() => index.size === 0, 10_000);
    expect(lb.kvSubscribers[1]!.resyncs).toBeGreaterThan(resyncs);
    await until(async () => (await front.Health()).replicas_healthy === 2, 30_000);
    // A prompt the restarted replica runs shows up in its index again.
    const prompt = tokens(60);
    await until(async () => {
      await turn(prompt);
      return indexed(1, prompt) > 0;
    }, 30_000);
    expect(index.seq).toBeGreaterThan(0);
  }, 60_000);
});
