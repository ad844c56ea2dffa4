// Operations features in-process: X-Request-Id on every answer, one access-log line per request
// (streams logged after their last token, disconnects included), --max-model-len capping the
// engine's context (400 beyond it), and `fastgen serve --config FILE` with flags overriding it.
import { afterAll, beforeAll, describe, expect, mock, spyOn, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "../../src/ops/engineFlags";
import { serveCommand } from "../../src/cli/serve";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { startEngine } from "../../src/engine/asyncEngine";
import { defaultModelDir } from "../../src/model/defaultModel";
import { FakeEngine } from "../server/fakeEngine";
import type { TestServer } from "../server/testServer";
import { serveEngine, sseEvents, waitFor } from "../server/testServer";
import { checkErrorBody, memoryLogger } from "./helpers";

const HEX32 = /^[0-9a-f]{32}$/;

describe("X-Request-Id and the access log", () => {
  let t: TestServer;
  let log: ReturnType<typeof memoryLogger>;
  beforeAll(async () => {
    log = memoryLogger();
    t = await serveEngine(new FakeEngine({ delayMs: 2 }), { logger: log.logger, accessLog: true, apiKey: "k", maxBodyBytes: 4096 });
  });
  afterAll(() => t.close());
  const lineFor = async (id: string) => {
    await waitFor(() => log.out.some((l) => l.request_id === id));
    const lines = log.out.filter((l) => l.request_id === id);
    expect(lines).toHaveLength(1);
    return lines[0]!;
  };

  test("a sane client id is echoed; none or an insane one gets a fresh id", async () => {
    const given = await t.post("/v1/completions", { prompt: "x", max_tokens: 2 }, { "x-request-id": "trace-42_a.b:c" });
    expect(given.headers.get("x-request-id")).toBe("trace-42_a.b:c");
    const none = await t.post("/v1/completions", { prompt: "x", max_tokens: 2 });
    expect(none.headers.get("x-request-id")).toMatch(HEX32);
    for (const bad of ["has space", "x".repeat(129), '"quoted"', "-leading-dash", "a\tb"]) {
      const res = await t.post("/tokenize", { prompt: "x" }, { "x-request-id": bad });
      expect(res.headers.get("x-request-id")).toMatch(HEX32);
    }
  });

  test("every answer carries it: 200, 400, 401, 404, 413, SSE", async () => {
    const auth = { authorization: "Bearer k" };
    const answers = [
      await fetch(`${t.url}/v1/models`, { headers: auth }),
      await t.post("/v1/completions", "{nope"),
      await fetch(`${t.url}/v1/models`),
      await fetch(`${t.url}/nowhere`, { headers: auth }),
      await t.post("/tokenize", { prompt: "x".repeat(5000) }),
      await t.post("/v1/completions", { prompt: "x", max_tokens: 2, stream: true }),
      await fetch(`${t.url}/health`),
    ];
    expect(answers.map((r) => r.status)).toEqual([200, 400, 401, 404, 413, 200, 200]);
    for (const r of answers) {
      expect(r.headers.get("x-request-id")).toMatch(HEX32);
      await r.arrayBuffer();
    }
  });

  test("one line per request: tokens, timings, finish reason, status", async () => {
    const res = await t.post("/v1/completions", { prompt: "abc", max_tokens: 3 }, { "x-request-id": "log-plain" });
    const body = await res.json();
    const line = await lineFor("log-plain");
    expect(line).toMatchObject({
      level: "info", msg: "request", method: "POST", path: "/v1/completions", status: 200, response_id: body.id,
      stream: false, prompt_tokens: 4, completion_tokens: 3, finish_reason: "length",
    });
    expect(line.ttft_ms as number).toBeGreaterThan(0);
    expect(line.duration_ms as number).toBeGreaterThanOrEqual(line.ttft_ms as number);

    await (await t.post("/v1/chat/completions", { temperature: 9, messages: [] }, { "x-request-id": "log-400" })).text();
    expect(await lineFor("log-400")).toMatchObject({ status: 400, error_type: "invalid_request_error", path: "/v1/chat/completions" });
    await (await fetch(`${t.url}/v1/models`, { headers: { "x-request-id": "log-401" } })).text();
    expect(await lineFor("log-401")).toMatchObject({ status: 401, error_code: "invalid_api_key" });
  });

  test("a stream is logged after its last token, n choices together", async () => {
    const res = await t.post("/v1/completions", { prompt: "a", max_tokens: 50, n: 2, stream: true }, { "x-request-id": "log-stream" });
    expect(log.out.some((l) => l.request_id === "log-stream")).toBe(false); // headers are out, tokens are not
    const events = await sseEvents(res);
    expect(events.at(-1)).toBe("[DONE]");
    expect(await lineFor("log-stream")).toMatchObject({ status: 200, stream: true, completion_tokens: 100, finish_reason: "length" });
  });

  test("a client that leaves mid-stream is logged once, as gone, with what it got", async () => {
    const ac = new AbortController();
    const res = await fetch(`${t.url}/v1/completions`, {
      method: "POST", signal: ac.signal,
      headers: { authorization: "Bearer k", "x-request-id": "log-gone" },
      body: JSON.stringify({ prompt: "a", max_tokens: 200, stream: true }),
    });
    const reader = res.body!.getReader();
    await reader.read();
    ac.abort();
    const line = await lineFor("log-gone");
    expect(line).toMatchObject({ status: 200, client_gone: true, finish_reason: "abort" });
    expect(line.completion_tokens as number).toBeLessThan(200);
    await Bun.sleep(20);
    expect(log.out.filter((l) => l.request_id === "log-gone")).toHaveLength(1);
  });
});

describe("--max-model-len", () => {
  let engine: AsyncEngine;
  let t: TestServer<AsyncEngine>;
  beforeAll(async () => {
    engine = await startEngine(defaultModelDir(), { backend: "cpu", kvBlocks: 64, blockSize: 16, maxModelLen: 48 });
    t = await serveEngine(engine);
  });
  afterAll(async () => {
    await t?.close();
    await engine?.shutdown();
  });

  test("caps the context the server reports and enforces", async () => {
    expect(engine.maxModelLen).toBe(48);
    const models = await (await fetch(`${t.url}/v1/models`)).json();
    expect(models.data[0].max_model_len).toBe(48);
    const ok = await t.post("/v1/completions", { prompt: "The", max_tokens: 40, ignore_eos: true, temperature: 0 });
    expect((await ok.json()).usage.completion_tokens).toBe(40);
    const over = await t.post("/v1/completions", { prompt: "The", max_tokens: 48 });
    expect(over.status).toBe(400);
    expect(checkErrorBody(await over.json(), "over").code).toBe("context_length_exceeded");
    const chat = await t.post("/v1/chat/completions", { messages: [{ role: "user", content: "word ".repeat(60) }] });
    expect(chat.status).toBe(400);
  });

  test("a cap above what the engine can hold fails at start, naming both", async () => {
    const err = await startEngine(defaultModelDir(), { backend: "cpu", kvBlocks: 8, blockSize: 16, maxModelLen: 512 }).catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toContain("max model length 512");
    expect(err.message).toContain("KV pool 128 tokens");
  });
});

describe("fastgen serve --config", () => {
  const dir = mkdtempSync(join(tmpdir(), "fastgen-ops-"));
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    mock.restore();
  });

  test("the file sets flags; flags override it; the file's unknown key is a usage error", async () => {
    const config = join(dir, "serve.json");
    writeFileSync(config, JSON.stringify({ model: "/from/file", port: 1, "grpc-port": 0, "max-batch-tokens": 96, policy: "orca", "log-format": "json", "served-model-name": "filed" }));
    const lines: string[] = [];
    spyOn(console, "log").mockImplementation((...a: unknown[]) => void lines.push(a.join(" ")));
    spyOn(console, "error").mockImplementation(() => {});
    const started: unknown[] = [];
    const engine = new FakeEngine();
    const running = serveCommand(["--config", config, "--port", "0", "--policy", "splitfuse"], {
      startEngine: async (modelDir, options) => {
        started.push({ modelDir, options });
        return engine;
      },
    });
    await waitFor(() => lines.some((l) => l.includes('"msg":"serving')), 5000);
    expect(started).toEqual([{ modelDir: "/from/file", options: { maxBatchTokens: 96, policy: "splitfuse" } }]);
    const ready = JSON.parse(lines.find((l) => l.includes('"msg":"serving'))!);
    expect(ready).toMatchObject({ level: "info", model: "filed" });
    const res = await fetch(`${ready.url}/models`, { headers: { "x-request-id": "cfg-1" } });
    expect((await res.json()).data[0].id).toBe("filed");
    await waitFor(() => lines.some((l) => l.includes('"request_id":"cfg-1"')));
    process.emit("SIGTERM");
    await running;

    const typo = join(dir, "typo.json");
    writeFileSync(typo, JSON.stringify({ "max-batch-token": 96 }));
    const err = await serveCommand(["--config", typo]).catch((e) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain('unknown key "max-batch-token"');
  });

  test("--log-format and --shutdown-timeout are checked", async () => {
    expect(await serveCommand(["--log-format", "xml"]).catch((e) => e.message)).toContain("--log-format");
    expect(await serveCommand(["--shutdown-timeout", "-1"]).catch((e) => e.message)).toContain("--shutdown-timeout");
    expect(await serveCommand(["--max-model-len", "0"]).catch((e) => e.message)).toContain("--max-model-len");
  });
});
