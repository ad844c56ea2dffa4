// Issue #25's query of death, end to end: a tiny positive repetition_penalty (subnormal or
// 1e-38, with temperature > 0) used to segfault `fastgen serve` through /v1/completions, a
// streamed /v1/chat/completions and gRPC Generate alike. Against the real CLI (a crash shows as
// the process exiting): every such request is answered, and the server stays healthy and serves.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { FastGenClient } from "../../src/grpc/client";
import type { ServeProcess } from "./helpers";
import { spawnServe } from "./helpers";

const PENALTIES = [1.4e-45, 1e-38, 1e-37];
let s: ServeProcess;
let grpcAddress: string;
beforeAll(async () => {
  s = await spawnServe(["--backend", "cpu", "--kv-blocks", "64", "--max-model-len", "128"]);
  grpcAddress = s.stdout.join("\n").match(/grpc:\/\/(\S+)/)![1]!;
});
afterAll(async () => {
  await s?.stop();
});

const post = (path: string, body: unknown) =>
  fetch(`${s.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });

async function expectServing(): Promise<void> {
  expect(s.proc.exitCode).toBeNull();
  expect((await fetch(`${s.url}/health`)).status).toBe(200);
  const res = await post("/v1/completions", { prompt: "The module", max_tokens: 4, temperature: 0 });
  expect(res.status).toBe(200);
}

describe("a subnormal repetition_penalty does not take the server down", () => {
  test("/v1/completions", async () => {
    for (const repetition_penalty of PENALTIES) {
      const res = await post("/v1/completions", { prompt: "The module loads the module", max_tokens: 8, temperature: 1, repetition_penalty, seed: 1 });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { choices: { text: string }[] };
      expect(body.choices).toHaveLength(1);
    }
    await expectServing();
  });

  test("streamed /v1/chat/completions", async () => {
    for (const repetition_penalty of PENALTIES) {
      const res = await post("/v1/chat/completions", {
        messages: [{ role: "user", content: "Say the module twice" }], max_tokens: 8, temperature: 1.5, top_p: 0.9, repetition_penalty, stream: true,
      });
      expect(res.status).toBe(200);
      const text = await res.text();
      expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    }
    await expectServing();
  });

  test("gRPC Generate", async () => {
    const client = new FastGenClient(grpcAddress);
    try {
      for (const repetition_penalty of PENALTIES) {
        const [r] = await client.generate("The module loads", { max_new_tokens: 8, temperature: 1, top_k: 20, repetition_penalty });
        expect(r!.generated_length).toBeGreaterThan(0);
      }
    } finally {
      client.close();
    }
    await expectServing();
  });
});
