/**
 * Three real CPU replicas (`fastgen replica` processes on the tiny llama-gqa fixture) behind the
 * front end serve() starts, driven by a client generated from the .proto. Prompts are spread over
 * every replica; killing one mid-run leaves every request either complete or failed with a clear
 * UNAVAILABLE naming no address (those the replica had accepted, queued or running, fail rather
 * than move: a replica that dies holding a request may have been killed by it), the service keeps
 * answering, and the replica, restarted by its supervisor, receives work again.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { join } from "node:path";
import type { ServeHandle } from "../../src/deploy/serve";
import { serve } from "../../src/deploy/serve";
import type { ProtoClient } from "../grpc/protoClient";
import { protoClient, readStream } from "../grpc/protoClient";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
let h: ServeHandle;
let front: ProtoClient;

beforeAll(async () => {
  h = await serve(FIXTURE, {
    replicas: 3,
    port: 0,
    // Two sequences at a time per replica, so a replica holds queued requests as well as running ones.
    engine: { threads: 1, maxSeqs: 2 },
    health: { intervalMs: 200, timeoutMs: 2000 },
    log: () => {},
    output: () => {},
  });
  front = protoClient(h.address);
}, 60_000);

afterAll(async () => {
  front?.close();
  await h?.terminate();
});

/** The Health of one replica, asked directly. */
async function replicaHealth(address: string) {
  const c = protoClient(address);
  try {
    return await c.Health();
  } finally {
    c.close();
  }
}

const routed = async () => (await front.Health()).replicas.map((r: { requests_routed: number }) => r.requests_routed) as number[];
const prompts = (k: number) => Array.from({ length: k }, (_, i) => ({ text: `prompt number ${i} says` }));

async function until(cond: () => Promise<boolean>, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error("condition not reached in time");
    await Bun.sleep(20);
  }
}

describe("3 CPU replicas", () => {
  test("the front end serves the fixture on every replica", async () => {
    expect(h.processes).toHaveLength(3);
    const health = await front.Health();
    expect(health).toMatchObject({ serving: true, replicas_healthy: 3, model: { id: "llama-gqa", max_model_len: 256 } });
    expect(await front.ListModels()).toEqual({ models: [{ id: "llama-gqa", max_model_len: 256 }] });
  });

  test("30 concurrent prompts are spread across all replicas", async () => {
    const before = await routed();
    const res = await front.Generate({ prompts: prompts(30), params: { max_new_tokens: 16, ignore_eos: true } });
    expect(res.responses).toHaveLength(30);
    for (const r of res.responses) expect(r).toMatchObject({ generated_length: 16, finish_reason: "FINISH_REASON_LENGTH" });
    const shares = (await routed()).map((n, i) => n - before[i]!);
    expect(shares.reduce((a, b) => a + b)).toBe(30);
    for (const share of shares) expect(share).toBeGreaterThanOrEqual(5);
    for (const p of h.processes) expect((await replicaHealth(p.address)).metrics.generation_tokens_total).toBeGreaterThan(0);
  });

  test("greedy output is the same whichever replica runs it", async () => {
    const res = await front.Generate({ prompts: Array.from({ length: 6 }, () => ({ text: "same prompt" })), params: { max_new_tokens: 12, temperature: 0 } });
    expect(new Set(res.responses.map((r: { token_ids: number[] }) => r.token_ids.join(","))).size).toBe(1);
  });

  test("killing a replica mid-run: each request completes or fails clearly; it restarts and gets work again", async () => {
    const victim = h.processes[1]!;
    const victimPid = victim.pid!;
    const routedBefore = await routed();
    // Enough work that the victim still holds some when the kill lands, even on a loaded machine.
    const CALLS = 60;
    const calls = Array.from({ length: CALLS }, (_, i) =>
      readStream(front.GenerateStream({ prompt: { text: `long prompt ${i}` }, params: { max_new_tokens: 240, ignore_eos: true } })),
    );
    // Kill it once it is generating (its two running requests then have output; the rest queue).
    await until(async () => (await replicaHealth(victim.address)).metrics.generation_tokens_total > 0, 20_000);
    const share = (await routed())[1]! - routedBefore[1]!; // all were routed at once
    process.kill(victimPid, "SIGKILL");
    const outcomes = await Promise.all(calls);
    // Accepted requests are never re-sent; one the victim had not yet accepted (still in its gRPC
    // queue when it died, more likely on a loaded machine) fails over, as it should.
    const routedNow = (await routed()).reduce((a, b) => a + b) - routedBefore.reduce((a, b) => a + b);
    expect(routedNow).toBeGreaterThanOrEqual(CALLS);
    expect(routedNow - CALLS).toBeLessThanOrEqual(share);

    const failed = outcomes.filter((o) => o.error);
    const completed = outcomes.filter((o) => !o.error);
    for (const o of completed) expect(o.messages.at(-1)).toMatchObject({ finish_reason: "FINISH_REASON_LENGTH", generated_length: 240 });
    for (const { error } of failed) {
      expect(error!.code).toBe(status.UNAVAILABLE);
      expect(error!.details).toMatch(/^replica 1 failed while running this request/);
      expect(error!.details).not.toContain(victim.address);
    }
    // Only requests the victim held (of those routed to it, some may have finished) fail.
    expect(share).toBeGreaterThanOrEqual(5);
    expect(failed.length).toBeGreaterThanOrEqual(1);
    expect(failed.length).toBeLessThanOrEqual(share);
    expect(completed.length).toBe(CALLS - failed.length);

    // The service keeps answering while the replica is out (or already back).
    const during = await front.Generate({ prompts: prompts(4), params: { max_new_tokens: 4 } });
    expect(during.responses).toHaveLength(4);

    // The supervisor restarts it on the same port; health checks bring it back.
    await until(async () => (await front.Health()).replicas_healthy === 3, 30_000);
    expect(victim.restarts).toBe(1);
    expect(victim.pid).not.toBe(victimPid);
    const before = await routed();
    await front.Generate({ prompts: prompts(12), params: { max_new_tokens: 8 } });
    expect((await routed())[1]! - before[1]!).toBeGreaterThanOrEqual(2);
    expect((await replicaHealth(victim.address)).metrics.generation_tokens_total).toBeGreaterThan(0);
  }, 60_000);
});
