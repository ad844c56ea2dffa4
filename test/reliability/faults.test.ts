// Faults under the HTTP server, on the real engine (CPU): a native error injected into a forward
// pass (libfastgen's fg_debug_fail_next_steps, through the test-only worker message) fails only
// the requests in that pass with a clear error; a tiny KV pool exhausted over and over (preemption
// by recomputation) loses and duplicates no streamed token; a replica killed mid-run behind the
// load balancer fails only its own requests and the rest go on.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { startEngine } from "../../src/engine/asyncEngine";
import { defaultModelDir } from "../../src/model/defaultModel";
import { expectKvDrained } from "../server/demoEngine";
import type { TestServer } from "../server/testServer";
import { serveEngine, sseEvents } from "../server/testServer";
import { checkErrorBody } from "./helpers";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");

/** A streamed completion read to the end: its chunks' token strings, text, finish reasons and errors. */
async function streamed(t: TestServer<AsyncEngine>, body: Record<string, unknown>) {
  const res = await t.post("/v1/completions", { ...body, stream: true });
  expect(res.status).toBe(200);
  const events = await sseEvents(res);
  expect(events.at(-1)).toBe("[DONE]");
  expect(events.filter((e) => e === "[DONE]")).toHaveLength(1);
  const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
  const errors = chunks.filter((c) => c.error).map((c) => checkErrorBody(c, "stream error event"));
  const ok = chunks.filter((c) => !c.error);
  return {
    tokens: ok.flatMap((c) => c.choices[0].logprobs?.tokens ?? []) as string[],
    text: ok.map((c) => c.choices[0].text).join(""),
    finish: ok.map((c) => c.choices[0].finish_reason).filter(Boolean) as string[],
    errors,
  };
}

describe("a native error in a forward pass", () => {
  let engine: AsyncEngine;
  let t: TestServer<AsyncEngine>;
  beforeAll(async () => {
    // One sequence per pass: the running request is in the failing pass, the queued one is not.
    engine = await startEngine(defaultModelDir(), { backend: "cpu", kvBlocks: 128, maxSeqs: 1 });
    t = await serveEngine(engine);
  });
  afterAll(async () => {
    await t?.close();
    await engine?.shutdown();
  });

  test("fails the streaming request in the pass with engine_error; the queued one completes", async () => {
    const res = await t.post("/v1/completions", { prompt: "The", max_tokens: 1000, ignore_eos: true, stream: true });
    const reader = res.body!.getReader();
    await reader.read(); // it is running
    const queued = t.post("/v1/completions", { prompt: "A", max_tokens: 12, ignore_eos: true }).then((r) => r.json());
    await Bun.sleep(5);
    engine.debugFailNextSteps(1);
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
    const events = rest.split("\n\n").filter((e) => e.trim()).map((e) => e.slice(6));
    expect(events.at(-1)).toBe("[DONE]");
    const error = checkErrorBody(JSON.parse(events.at(-2)!), "error event");
    expect(error).toMatchObject({ type: "server_error", code: "engine_error" });
    expect(error.message).toContain("forward pass failed");
    expect((await queued).usage.completion_tokens).toBe(12);
    await expectKvDrained(engine);
  });

  test("a whole (non-streamed) request gets a 500 naming the failure; the engine keeps serving", async () => {
    engine.debugFailNextSteps(1);
    const res = await t.post("/v1/completions", { prompt: "The", max_tokens: 4 });
    expect(res.status).toBe(500);
    expect(checkErrorBody(await res.json(), "500")).toMatchObject({ code: "engine_error" });
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    const after = await t.post("/v1/completions", { prompt: "The", max_tokens: 4, ignore_eos: true });
    expect((await after.json()).usage.completion_tokens).toBe(4);
    await expectKvDrained(engine);
  });
});

describe("a device failure (FG_ERR_DEVICE: a GPU fault, a tensor-parallel rank lost)", () => {
  test("fails the pass's request (500) and the queued one (503), then the engine reports itself dead", async () => {
    const engine = await startEngine(defaultModelDir(), { backend: "cpu", kvBlocks: 128, maxSeqs: 1 });
    const t = await serveEngine(engine);
    try {
      const res = await t.post("/v1/completions", { prompt: "The", max_tokens: 1000, ignore_eos: true, stream: true });
      const reader = res.body!.getReader();
      await reader.read(); // it is running
      const queued = t.post("/v1/completions", { prompt: "A", max_tokens: 12, ignore_eos: true });
      await Bun.sleep(5);
      engine.debugFailNextSteps(1, true);
      let rest = "";
      for (let r = await reader.read(); !r.done; r = await reader.read()) rest += new TextDecoder().decode(r.value);
      const events = rest.split("\n\n").filter((e) => e.trim()).map((e) => e.slice(6));
      expect(checkErrorBody(JSON.parse(events.at(-2)!), "error event")).toMatchObject({ code: "engine_error" });
      const q = await queued;
      expect(q.status).toBe(503);
      expect(checkErrorBody(await q.json(), "503")).toMatchObject({ code: "engine_unavailable" });
      expect((await fetch(`${t.url}/health`)).status).toBe(503);
      const after = await t.post("/v1/completions", { prompt: "The", max_tokens: 4 });
      expect(after.status).toBe(503);
      expect(JSON.stringify(await after.json())).toContain("injected failure");
    } finally {
      await t.close();
      await engine.shutdown();
    }
  });
});

describe("the KV pool exhausted again and again", () => {
  const ref = JSON.parse(readFileSync(join(FIXTURE, "reference.json"), "utf8"));
  // Six prompts of 4..67 tokens (the fixture's three and shifted copies), 24 new tokens each.
  const prompts: number[][] = ref.prompts.flatMap((p: { prompt_ids: number[] }) => [p.prompt_ids, p.prompt_ids.slice(1).concat([7, 8])]);
  const body = (i: number, seed: number) => ({ prompt: prompts[i], max_tokens: 24, ignore_eos: true, logprobs: 1, temperature: 0.8, seed });
  const runAll = (t: TestServer<AsyncEngine>, seed: number) => Promise.all(prompts.map((_, i) => streamed(t, body(i, seed + i))));

  test("streams the same tokens as an unconstrained engine, none lost or repeated", async () => {
    const roomy = await startEngine(FIXTURE, { backend: "cpu", kvBlocks: 256, blockSize: 16 });
    // 24 blocks of 4 tokens: one long sequence (67 + 24) fits, all six at once do not.
    const tight = await startEngine(FIXTURE, { backend: "cpu", kvBlocks: 24, blockSize: 4, maxBatchTokens: 64 });
    const [a, b] = [await serveEngine(roomy), await serveEngine(tight)];
    try {
      for (const seed of [1, 100]) {
        const [want, got] = [await runAll(a, seed), await runAll(b, seed)];
        for (let i = 0; i < prompts.length; i++) {
          expect(got[i]!.errors).toEqual([]);
          expect(got[i]!.finish).toEqual(["length"]);
          expect(got[i]!.tokens).toHaveLength(24);
          expect(got[i]!.tokens).toEqual(want[i]!.tokens);
          expect(got[i]!.text).toBe(want[i]!.text);
        }
      }
      expect(tight.metrics().preemptionsTotal).toBeGreaterThan(2);
      expect(roomy.metrics().preemptionsTotal).toBe(0);
      await expectKvDrained(tight);
    } finally {
      await Promise.all([a.close(), b.close()]);
      await Promise.all([roomy.shutdown(), tight.shutdown()]);
    }
  });
});

describe("a replica killed mid-run behind the load balancer", () => {
  test("its streams end with a replica error; the other replica goes on; it is restarted", async () => {
    const { startReplicaFrontEnd } = await import("../../src/lb/frontEnd");
    const output: string[] = [];
    const { balancer, processes } = await startReplicaFrontEnd({
      modelDir: defaultModelDir(),
      replicas: 2,
      engineOptions: { backend: "cpu", threads: 1, kvBlocks: 128, maxSeqs: 1 },
      health: { intervalMs: 100, timeoutMs: 1000, evictAfter: 1 },
      log: (m) => output.push(m),
      output: (l) => output.push(l),
    });
    const t = await serveEngine(balancer);
    try {
      // Four long streams spread over both replicas (least outstanding tokens): two run, two wait.
      const streams = await Promise.all([0, 1, 2, 3].map(() =>
        t.post("/v1/completions", { prompt: "The", max_tokens: 800, ignore_eos: true, stream: true })));
      const readers = streams.map((r) => r.body!.getReader());
      // Kill only once both running streams (one a replica, maxSeqs 1) have produced tokens: a
      // request without output would move to the survivor instead of failing (busy CI machines
      // can take a while to the first token).
      const texts = readers.map(() => "");
      const pending = readers.map((reader, i) => reader.read().then(function pump(r): Promise<void> | void {
        if (r.done) return;
        texts[i] += new TextDecoder().decode(r.value);
        if (!/"text":"[^"]/.test(texts[i]!)) return reader.read().then(pump);
      }));
      const started = () => texts.filter((t) => /"text":"[^"]/.test(t)).length >= 2;
      for (const deadline = Date.now() + 20_000; !started() && Date.now() < deadline;) await Bun.sleep(10);
      expect(started()).toBe(true);
      const victim = processes[0]!;
      const pid = victim.pid!;
      process.kill(pid, "SIGKILL");
      const ends = await Promise.all(readers.map(async (reader, i) => {
        await pending[i];
        let text = texts[i]!;
        for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
        const events = text.split("\n\n").filter((e) => e.trim()).map((e) => e.slice(6));
        expect(events.at(-1)).toBe("[DONE]");
        const last = JSON.parse(events.at(-2)!);
        return last.error ? `error:${checkErrorBody(last, "replica error").code}` : last.choices[0].finish_reason;
      }));
      // Each stream ended exactly once: finished on the survivor, or failed with its replica.
      expect(ends.filter((e) => e === "length").length).toBeGreaterThanOrEqual(1);
      expect(ends.filter((e) => e !== "length").every((e) => e === "error:replica_failed")).toBe(true);
      expect(ends.some((e) => e === "error:replica_failed")).toBe(true);
      // New requests are served while the victim is down or restarting.
      for (let i = 0; i < 3; i++) {
        const res = await t.post("/v1/completions", { prompt: "The", max_tokens: 3, ignore_eos: true });
        expect(res.status).toBe(200);
      }
      const deadline = Date.now() + 20_000;
      while (!(victim.pid !== undefined && victim.pid !== pid && balancer.replicas.every((r) => r.healthy)) && Date.now() < deadline) await Bun.sleep(50);
      expect(victim.restarts).toBeGreaterThanOrEqual(1);
      expect(balancer.replicas.every((r) => r.healthy)).toBe(true);
    } finally {
      await t.close();
      await balancer.shutdown();
    }
  }, 45_000);
});
