/**
 * A query of death behind the load balancer (`fastgen serve --replicas 2` on the demo model, CPU).
 * The test-only hook FASTGEN_DEBUG_CRASH_ON_PROMPT makes a replica abort (like a native segfault)
 * when it runs one prompt. The request that crashed a replica must not be re-sent to the other
 * one: it fails with a clear 503 naming no internal address, an identical request is then refused
 * (422 on HTTP, FAILED_PRECONDITION on gRPC) while quarantined, and every other request is served
 * by the replica that stayed up and then by both.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { status } from "@grpc/grpc-js";
import type { ProtoClient } from "../grpc/protoClient";
import { protoClient, readStream } from "../grpc/protoClient";
import type { ServeProcess } from "./helpers";
import { checkErrorBody, spawnServe } from "./helpers";

const POISON = [7, 7, 7, 7, 7];
let server: ServeProcess;
let grpc: ProtoClient;

beforeAll(async () => {
  const before = process.env.FASTGEN_DEBUG_CRASH_ON_PROMPT;
  process.env.FASTGEN_DEBUG_CRASH_ON_PROMPT = POISON.join(","); // inherited by the replicas
  try {
    server = await spawnServe(["--replicas", "2", "--threads", "1"], 60_000);
  } finally {
    if (before === undefined) delete process.env.FASTGEN_DEBUG_CRASH_ON_PROMPT;
    else process.env.FASTGEN_DEBUG_CRASH_ON_PROMPT = before;
  }
  const address = server.stdout.join("\n").match(/grpc:\/\/(\S+)/)![1]!;
  grpc = protoClient(address);
}, 90_000);

afterAll(async () => {
  grpc?.close();
  await server?.stop();
});

const complete = (prompt: unknown, maxTokens = 4) =>
  fetch(`${server.url}/v1/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt, max_tokens: maxTokens }),
  });

/** Replicas brought back by health checks so far. */
const backs = () => server.stderr.filter((l) => / is back$/.test(l)).length;

async function until(cond: () => boolean, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond() && Date.now() < deadline) await Bun.sleep(50);
}

/** Replica crashes so far (the hook's line, one per crashed process). */
const crashes = () => server.stderr.filter((l) => l.includes("FASTGEN_DEBUG_CRASH_ON_PROMPT matched")).length;

describe("a poison request behind the load balancer", () => {
  test("crashes one replica only, fails clearly, and is refused while quarantined", async () => {
    const res = await complete(POISON);
    expect(res.status).toBe(503);
    const err = checkErrorBody(await res.json(), "poison");
    expect(err.code).toBe("replica_failed");
    expect(err.message).toMatch(/^replica [01] failed while running this request; it is not sent to another replica/);
    expect(err.message).not.toMatch(/127\.0\.0\.1|:\d{4,5}\b/); // no internal address
    expect(crashes()).toBe(1);

    // Other requests go on, on the replica that stayed up (and on the other once it is back).
    const others = await Promise.all([0, 1, 2, 3].map((i) => complete(`Hello ${i}`)));
    expect(others.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect((await fetch(`${server.url}/health`)).status).toBe(200);

    // The identical request is refused before any replica sees it: a 4xx the OpenAI SDKs do not retry.
    const again = await complete(POISON);
    expect(again.status).toBe(422);
    const refused = checkErrorBody(await again.json(), "quarantined");
    expect(refused).toMatchObject({ type: "invalid_request_error", code: "request_quarantined" });
    expect(refused.message).toContain("refused for another");

    // Over gRPC (whose defaults make another fingerprint) the same story, once replica 0/1 is back.
    await until(() => backs() >= 1, 30_000);
    const grpcPoison = () => readStream(grpc.GenerateStream({ prompt: { token_ids: { ids: POISON } }, params: { max_new_tokens: 4 } }));
    const first = await grpcPoison();
    expect(first.error?.code).toBe(status.UNAVAILABLE);
    expect(first.error?.details).toMatch(/^replica [01] failed while running this request/);
    expect(first.error?.details).not.toContain("127.0.0.1");
    expect(crashes()).toBe(2);
    // Refused while quarantined: FAILED_PRECONDITION, which gRPC's retry policies do not retry.
    const second = await grpcPoison();
    expect(second.error?.code).toBe(status.FAILED_PRECONDITION);
    expect(crashes()).toBe(2);
    expect((await complete("still up")).status).toBe(200);
  }, 60_000);

  test("the crashed replicas are restarted and serve again", async () => {
    await until(() => backs() >= 2, 30_000);
    expect(backs()).toBe(2);
    const all = await Promise.all([0, 1, 2, 3, 4, 5].map((i) => complete(`Again ${i}`)));
    expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(crashes()).toBe(2);
  }, 40_000);
});
