import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import pkg from "../../package.json";
import type { TestServer } from "./testServer";
import { startTestServer } from "./testServer";

let t: TestServer;
beforeAll(async () => {
  t = await startTestServer({ servedModelName: "my-model" });
});
afterAll(() => t.close());

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text format 0.0.4 strictly enough to catch malformed output. */
function parsePrometheus(text: string): { types: Map<string, string>; samples: Sample[] } {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  expect(text.endsWith("\n")).toBe(true);
  for (const line of text.trimEnd().split("\n")) {
    if (line.startsWith("# HELP ")) continue;
    const type = line.match(/^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/);
    if (type) {
      expect(types.has(type[1]!)).toBe(false);
      types.set(type[1]!, type[2]!);
      continue;
    }
    const m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/);
    if (!m) throw new Error(`malformed metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? "").matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?/g)) labels[l[1]!] = l[2]!;
    const value = m[3] === "+Inf" ? Infinity : Number(m[3]);
    expect(Number.isNaN(value)).toBe(false);
    const family = m[1]!.replace(/_(bucket|sum|count)$/, "");
    expect(types.has(m[1]!) || types.get(family) === "histogram").toBe(true);
    samples.push({ name: m[1]!, labels, value });
  }
  return { types, samples };
}

describe("plain routes", () => {
  test("GET /v1/models lists the served name", async () => {
    const models = await t.client.models.list();
    expect(models.data).toHaveLength(1);
    expect(models.data[0]).toMatchObject({ id: "my-model", object: "model", owned_by: "fastgen", root: "fake-model", max_model_len: 256 });
    const one = await t.client.models.retrieve("my-model");
    expect(one.id).toBe("my-model");
  });

  test("a served name with / and % is found by GET /v1/models/{id}", async () => {
    const other = await startTestServer({ servedModelName: "org/model 50%" });
    try {
      expect((await other.client.models.retrieve("org/model 50%")).id).toBe("org/model 50%");
      expect((await fetch(`${other.url}/v1/models/org%2Fother`)).status).toBe(404);
    } finally {
      await other.close();
    }
  });

  test("the served name is the one requests must use", async () => {
    expect((await t.post("/v1/completions", { model: "my-model", prompt: "x", max_tokens: 1 })).status).toBe(200);
    expect((await t.post("/v1/completions", { model: "fake-model", prompt: "x", max_tokens: 1 })).status).toBe(404);
  });

  test("GET /health and GET /version", async () => {
    const health = await fetch(`${t.url}/health`);
    expect(health.status).toBe(200);
    expect(await fetch(`${t.url}/version`).then((r) => r.json())).toEqual({ version: pkg.version });
  });

  test("POST /tokenize: prompt form and chat form", async () => {
    const res = await t.post("/tokenize", { prompt: "Hi", return_token_strs: true });
    expect(await res.json()).toEqual({ count: 3, max_model_len: 256, tokens: [0, 43, 76], token_strs: ["<s>", "H", "i"] });
    const raw = (await (await t.post("/tokenize", { prompt: "Hi", add_special_tokens: false })).json()) as { tokens: number[]; token_strs: unknown };
    expect(raw.tokens).toEqual([43, 76]);
    expect(raw.token_strs).toBeNull();
    const chat = (await (await t.post("/tokenize", { messages: [{ role: "user", content: "Hi" }] })).json()) as { tokens: number[] };
    expect(t.engine.tokenizer.decode(chat.tokens)).toBe("<s><user>Hi\n<assistant>");
    expect((await t.post("/tokenize", { prompt: "x", messages: [] })).status).toBe(400);
    expect((await t.post("/tokenize", { prompt: "x", model: "other" })).status).toBe(404);
  });

  test("POST /detokenize", async () => {
    const res = await t.post("/detokenize", { tokens: [0, 43, 76] });
    expect(await res.json()).toEqual({ prompt: "<s>Hi" });
    expect((await t.post("/detokenize", { tokens: [1e9] })).status).toBe(400);
    expect((await t.post("/detokenize", {})).status).toBe(400);
  });

  test("GET /metrics parses and counts requests, tokens and latency", async () => {
    const before = parsePrometheus(await fetch(`${t.url}/metrics`).then((r) => r.text()));
    await t.client.completions.create({ model: "my-model", prompt: "abc", max_tokens: 5 });
    await t.post("/v1/completions", { prompt: "x", temperature: 9 });
    const res = await fetch(`${t.url}/metrics`);
    expect(res.headers.get("content-type")).toStartWith("text/plain");
    const { types, samples } = parsePrometheus(await res.text());
    const get = (name: string, labels: Record<string, string> = {}, from = samples) =>
      from.find((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value ?? 0;
    expect(types.get("fastgen_http_requests_total")).toBe("counter");
    expect(types.get("fastgen_time_to_first_token_seconds")).toBe("histogram");
    const ok = { endpoint: "/v1/completions", status: "200" };
    expect(get("fastgen_http_requests_total", ok) - get("fastgen_http_requests_total", ok, before.samples)).toBe(1);
    expect(get("fastgen_http_requests_total", { endpoint: "/v1/completions", status: "400" })).toBeGreaterThanOrEqual(1);
    expect(get("fastgen_prompt_tokens_total") - get("fastgen_prompt_tokens_total", {}, before.samples)).toBe(4);
    expect(get("fastgen_generation_tokens_total") - get("fastgen_generation_tokens_total", {}, before.samples)).toBe(5);
    for (const name of ["fastgen_requests_waiting", "fastgen_requests_running", "fastgen_kv_cache_usage_ratio", "fastgen_kv_blocks_free"])
      expect(types.get(name)).toBe("gauge");
    for (const h of ["fastgen_time_to_first_token_seconds", "fastgen_e2e_request_latency_seconds"]) {
      const buckets = samples.filter((s) => s.name === `${h}_bucket`);
      expect(buckets.at(-1)!.labels.le).toBe("+Inf");
      for (let i = 1; i < buckets.length; i++) expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value);
      expect(buckets.at(-1)!.value).toBe(get(`${h}_count`));
      expect(get(`${h}_count`)).toBeGreaterThanOrEqual(1);
    }
  });
});
