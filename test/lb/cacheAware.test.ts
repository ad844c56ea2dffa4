/**
 * Cache-aware routing without processes: the router's score (outstanding tokens - cached prompt
 * tokens) over replicas whose block indexes are set by hand, and the KV event subscriber over a
 * scripted stream (snapshot, batches, a gap, a broken stream, a replica without events).
 */
import { describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { chainBlockHashes } from "../../src/engine/kvCache/blockHash";
import type { KvEventBatch } from "../../src/engine/kvCache/kvEvents";
import { KvBlockIndex } from "../../src/engine/kvCache/kvBlockIndex";
import type { WireKvEventBatch } from "../../src/grpc/kvEventsWire";
import { kvBatchToWire } from "../../src/grpc/kvEventsWire";
import type { RpcStream } from "../../src/grpc/rpcClient";
import { KvEventSubscriber } from "../../src/lb/kvEventSubscriber";
import { Replica } from "../../src/lb/replica";
import type { RouteQuery } from "../../src/lb/promptChain";
import { defaultRoutingPolicy, Router } from "../../src/lb/router";
import { FakeReplica } from "./fakeReplica";

const BS = 4;
const range = (n: number, from = 1) => Array.from({ length: n }, (_, i) => from + i);
const query = (promptIds: number[], cacheSalt = "", cacheable = true): RouteQuery => ({ promptIds, cacheSalt, cacheable });

/** A replica whose cache holds the full blocks of `prompts` and which carries `load` tokens. */
function replica(name: string, load: number, prompts: number[][] = [], salt = ""): Replica {
  const r = new Replica(new FakeReplica(name));
  r.healthy = true;
  if (load > 0) r.work.start(load, 0);
  prompts.forEach((p, i) => {
    const hashes = chainBlockHashes(Int32Array.from(p), BS, Math.floor(p.length / BS), salt);
    r.cache.apply({ seq: i + 1, blockSize: BS, events: [{ type: "stored", blockHashes: hashes, parentBlockHash: null }] });
  });
  return r;
}

describe("cache-aware router", () => {
  const conversation = range(40); // 10 blocks
  test("with no cached prefix anywhere it is least-outstanding", () => {
    const router = new Router("cache-aware");
    const rs = [replica("a", 50), replica("b", 20), replica("c", 30, [range(40, 500)])];
    expect(router.pick(rs, query(conversation))!.replica.address).toBe("b");
  });

  test("the replica holding the prefix wins until its load exceeds another's by the cached tokens", () => {
    const router = new Router("cache-aware");
    const prompt = [...conversation, 900, 901, 902]; // the conversation's next turn
    // c holds 40 tokens of it: it wins while its load is < 40 tokens over the least loaded.
    expect(router.pick([replica("a", 0), replica("b", 10), replica("c", 39, [conversation])], query(prompt))!.replica.address).toBe("c");
    expect(router.pick([replica("a", 0), replica("b", 10), replica("c", 41, [conversation])], query(prompt))!.replica.address).toBe("a");
    // least-outstanding ignores the cache.
    expect(new Router("least-outstanding").pick([replica("a", 0), replica("c", 39, [conversation])], query(prompt))!.replica.address).toBe("a");
  });

  test("longest prefix: the replica with more of the chain wins at equal load", () => {
    const router = new Router("cache-aware");
    const rs = [replica("short", 0, [range(16)]), replica("long", 0, [range(32)])];
    expect(router.pick(rs, query(range(40)))!.replica.address).toBe("long");
  });

  test("the last prompt token is never counted (the replica recomputes it), nor a partial block", () => {
    const router = new Router("cache-aware");
    // Both hold 8 tokens = 2 blocks; an 8-token prompt can hit only its first block (4 tokens).
    for (let i = 0; i < 4; i++) expect(router.pick([replica("a", 0), replica("b", 4, [range(8)])], query(range(8)))!.replica.address).toBe("a");
    expect(router.pick([replica("a", 0), replica("b", 3, [range(8)])], query(range(8)))!.replica.address).toBe("b");
  });

  test("a different cache salt, or a request with prompt logprobs, matches nothing", () => {
    const router = new Router("cache-aware");
    const rs = () => [replica("a", 0), replica("b", 10, [conversation], "tenant-1")];
    expect(router.pick(rs(), query(conversation, "tenant-1"))!.replica.address).toBe("b");
    expect(router.pick(rs(), query(conversation, "tenant-2"))!.replica.address).toBe("a");
    expect(router.pick(rs(), query(conversation))!.replica.address).toBe("a");
    expect(router.pick(rs(), query(conversation, "tenant-1", false))!.replica.address).toBe("a");
  });

  test("default policy: cache-aware unless prefix caching is off", () => {
    expect(defaultRoutingPolicy(undefined)).toBe("cache-aware");
    expect(defaultRoutingPolicy(true)).toBe("cache-aware");
    expect(defaultRoutingPolicy(false)).toBe("least-outstanding");
  });
});

/** A scripted server stream: push batches, end it or fail it; `opened` counts calls. */
class ScriptedStreams {
  opened = 0;
  cancelled = 0;
  private current: { items: WireKvEventBatch[]; end: Error | "ok" | null; wake: (() => void) | null } | null = null;

  open = (): RpcStream<WireKvEventBatch> => {
    this.opened++;
    const s: { items: WireKvEventBatch[]; end: Error | "ok" | null; wake: (() => void) | null } = { items: [], end: null, wake: null };
    this.current = s;
    const self = this;
    return {
      messages: {
        async *[Symbol.asyncIterator]() {
          try {
            for (;;) {
              while (s.items.length > 0) yield s.items.shift()!;
              if (s.end === "ok") return;
              if (s.end) throw s.end;
              await new Promise<void>((r) => (s.wake = r));
            }
          } finally {
            if (!s.end) self.cancelled++;
          }
        },
      },
      cancel: () => {
        s.end ??= "ok";
        s.wake?.();
      },
    };
  };

  push(batch: KvEventBatch): void {
    this.current!.items.push(kvBatchToWire(batch));
    this.current!.wake?.();
  }

  fail(code: number): void {
    this.current!.end = Object.assign(new Error("stream failed"), { code, details: "x", metadata: null });
    this.current!.wake?.();
  }
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await Bun.sleep(5);
  }
}

const stored = (seq: number, hashes: string[]): KvEventBatch => ({ seq, blockSize: BS, events: [{ type: "stored", blockHashes: hashes, parentBlockHash: null }] });
const snapshot = (seq: number, hashes: string[]): KvEventBatch => ({ seq, blockSize: BS, events: [{ type: "cleared" }, ...stored(seq, hashes).events] });

describe("KvEventSubscriber", () => {
  test("follows a snapshot and its batches; a gap empties the index and calls again at once", async () => {
    const streams = new ScriptedStreams();
    const index = new KvBlockIndex();
    const sub = new KvEventSubscriber(index, streams.open);
    sub.start();
    try {
      await until(() => streams.opened === 1);
      streams.push(snapshot(7, ["a"]));
      streams.push(stored(8, ["b"]));
      await until(() => index.has("b"));
      expect([index.seq, index.blockSize, index.size]).toEqual([8, BS, 2]);
      streams.push(stored(10, ["lost-9-before-me"])); // batch 9 never came
      await until(() => streams.opened === 2);
      expect([sub.gaps, sub.resyncs, index.size, streams.cancelled]).toEqual([1, 1, 0, 1]);
      streams.push(snapshot(10, ["a", "b", "c"]));
      await until(() => index.size === 3);
      expect(index.has("lost-9-before-me")).toBe(false);
    } finally {
      sub.stop();
    }
  });

  test("a broken stream (replica restarted) empties the index until the new snapshot; UNIMPLEMENTED stops it", async () => {
    const streams = new ScriptedStreams();
    const index = new KvBlockIndex();
    const sub = new KvEventSubscriber(index, streams.open);
    sub.start();
    try {
      await until(() => streams.opened === 1);
      streams.push(snapshot(3, ["a", "b"]));
      await until(() => index.size === 2);
      streams.fail(status.UNAVAILABLE);
      await until(() => index.size === 0);
      await until(() => streams.opened === 2); // after the retry delay
      streams.push(snapshot(0, [])); // the restarted replica: an empty cache, numbering from 0
      streams.push(stored(1, ["x"]));
      await until(() => index.has("x"));
      expect(index.seq).toBe(1);
      streams.fail(status.UNIMPLEMENTED);
      await until(() => sub.resyncs === 2);
      await Bun.sleep(700);
      expect(streams.opened).toBe(2);
    } finally {
      sub.stop();
    }
  });
});
