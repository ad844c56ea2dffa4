/**
 * The library API: serve() in-process on the tiny llama-gqa fixture (gRPC + HTTP over one engine)
 * and client(): MII's response shape, streaming, abort, models, health, errors; gRPC and HTTP give
 * the same greedy tokens because they serve the same engine.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import { join } from "node:path";
import type { FastGenClient, ServeHandle } from "../../src/index";
import { FastGenRpcError, client, serve } from "../../src/index";

const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
let h: ServeHandle;
let c: FastGenClient;

beforeAll(async () => {
  h = await serve(FIXTURE, { port: 0, http: 0, engine: { threads: 1 } });
  c = client(h.address);
});
afterAll(async () => {
  c?.close();
  await h?.terminate();
});

describe("client()", () => {
  test("generate returns MII's response shape, one per prompt", async () => {
    const out = await c.generate(["Hello there", "The cat"], { max_new_tokens: 8 });
    expect(out).toHaveLength(2);
    for (const r of out) {
      expect(Object.keys(r).sort()).toEqual(["finish_reason", "generated_length", "generated_text", "prompt_length", "token_ids"]);
      expect(r).toMatchObject({ generated_length: 8, finish_reason: "length" });
      expect(r.prompt_length).toBeGreaterThan(1);
      expect(r.token_ids).toHaveLength(8);
    }
    const [single] = await c.generate("Hello there", { max_new_tokens: 8 });
    expect(single!.token_ids).toEqual(out[0]!.token_ids);
  });

  test("token-id prompts, n samples, logprobs", async () => {
    const out = await c.generate([[5, 6, 7]], { max_new_tokens: 4, n: 2, temperature: 0.8, seed: 1, logprobs: 3 });
    expect(out).toHaveLength(2);
    for (const r of out) {
      expect(r.prompt_length).toBe(3);
      expect(r.logprobs).toHaveLength(4);
      expect(r.logprobs![0]!.top).toHaveLength(3);
    }
  });

  test("stream yields the same tokens as generate, ending with a finish reason", async () => {
    const [full] = await c.generate("Once upon", { max_new_tokens: 10 });
    const ids: number[] = [];
    let last;
    for await (const d of c.stream("Once upon", { max_new_tokens: 10 })) {
      ids.push(...d.tokenIds);
      last = d;
    }
    expect(ids).toEqual(full!.token_ids);
    expect(last!.finishReason).toBe("length");
  });

  test("gRPC and HTTP serve the same engine: same greedy tokens", async () => {
    const [viaGrpc] = await c.generate([[5, 6, 7, 8]], { max_new_tokens: 6 });
    const res = await fetch(`${h.httpUrl}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: [5, 6, 7, 8], max_tokens: 6, temperature: 0, logprobs: 1 }),
    }).then((r) => r.json());
    expect(res.choices[0].text).toBe(viaGrpc!.generated_text);
  });

  test("abort(request_id) ends a stream early with finish reason abort", async () => {
    const deltas = [];
    for await (const d of c.stream("abort me", { max_new_tokens: 240, ignore_eos: true, request_id: "abort-me" })) {
      if (deltas.length === 0) expect(await c.abort("abort-me")).toBe(true);
      deltas.push(d);
    }
    expect(deltas.at(-1)!.finishReason).toBe("abort");
    expect(await c.abort("abort-me")).toBe(false);
  });

  test("models and health", async () => {
    expect(await c.models()).toEqual([{ id: "llama-gqa", max_model_len: 256 }]);
    const health = await c.health();
    expect(health).toMatchObject({ serving: true, replicas_healthy: 1, model: { id: "llama-gqa" } });
    expect(health.metrics!.generation_tokens_total).toBeGreaterThan(0);
  });

  test("failures reject with FastGenRpcError carrying the status and the server's message", async () => {
    const bad = await c.generate("x", { top_p: 2 }).catch((e) => e);
    expect(bad).toBeInstanceOf(FastGenRpcError);
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.message).toBe("INVALID_ARGUMENT: params.top_p: must be > 0 and <= 1, got 2");
    const missing = await c.generate("x", { model: "nope" }).catch((e) => e);
    expect(missing.code).toBe(status.NOT_FOUND);
    const streamErr = await (async () => {
      for await (const _ of c.stream("x", { max_new_tokens: 100000 }));
    })().catch((e) => e);
    expect(streamErr).toBeInstanceOf(FastGenRpcError);
    expect(streamErr.codeName).toBe("INVALID_ARGUMENT");
    const nobody = client("127.0.0.1:1");
    const down = await nobody.health(500).catch((e) => e);
    nobody.close();
    expect(down).toBeInstanceOf(FastGenRpcError);
    expect([status.UNAVAILABLE, status.DEADLINE_EXCEEDED]).toContain(down.code);
  });
});
