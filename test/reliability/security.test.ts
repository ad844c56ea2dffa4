// Security: --api-key guards every route but /health (path tricks included, over raw HTTP too);
// a model directory cannot make the server read files outside it (shard names with ../ or absolute
// paths, symlinked shards and tokenizer files; the Hugging Face cache's blob links still work);
// request size limits (body bytes, headers, prompts, choices, prompt characters) answer 4xx.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEngine } from "../../src/engine/asyncEngine";
import { openModelDir } from "../../src/model/load";
import { Tokenizer } from "../../src/tokenizer/tokenizer";
import { FakeEngine } from "../server/fakeEngine";
import type { TestServer } from "../server/testServer";
import { serveEngine } from "../server/testServer";
import { checkErrorBody } from "./helpers";

const KEY = "sk-security-test";
const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");

describe("--api-key", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await serveEngine(new FakeEngine(), { apiKey: KEY });
  });
  afterAll(() => t.close());

  const ROUTES: [string, string][] = [
    ["GET", "/v1/models"], ["GET", "/v1/models/fake-model"], ["GET", "/metrics"], ["GET", "/version"],
    ["POST", "/v1/completions"], ["POST", "/v1/chat/completions"], ["POST", "/tokenize"], ["POST", "/detokenize"],
    ["GET", "/nowhere"], ["DELETE", "/v1/models"], ["GET", "/"],
  ];
  const BAD_AUTH = [undefined, "", "Bearer", "Bearer ", `Bearer ${KEY}x`, `Bearer ${KEY.slice(0, -1)}`, `Basic ${btoa(`u:${KEY}`)}`, KEY, `Token ${KEY}`, `Bearer ${KEY.toUpperCase()}`];

  test.each(ROUTES)("%s %s: 401 without the right key, never the route", async (method, path) => {
    for (const authorization of BAD_AUTH) {
      const headers: Record<string, string> = { "content-type": "application/json" };
      if (authorization !== undefined) headers.authorization = authorization;
      const res = await fetch(`${t.url}${path}?api_key=${KEY}`, { method, headers, body: method === "GET" ? undefined : "{}" });
      expect({ authorization, status: res.status }).toEqual({ authorization, status: 401 });
      expect(res.headers.get("www-authenticate")).toBe("Bearer");
      expect(checkErrorBody(await res.json(), path).type).toBe("authentication_error");
    }
    const ok = await fetch(`${t.url}${path}`, { method, headers: { authorization: `bearer  ${KEY} ` }, body: method === "GET" ? undefined : "{}" });
    expect(ok.status).not.toBe(401);
    await ok.arrayBuffer();
  });

  test("/health alone needs no key; no other spelling of it is let through", async () => {
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
    expect((await fetch(`${t.url}/health?probe=1`)).status).toBe(200);
    const { port } = new URL(t.url);
    for (const path of ["/health/../v1/models", "/health/", "//health", "/HEALTH", "/%68ealth", "/health%2F..%2Fv1%2Fmodels", "/health/../metrics", "/./v1/models", "/health;/v1/models"]) {
      const reply = await rawGet(Number(port), path);
      expect({ path, status: reply.split(" ")[1] }).toEqual({ path, status: "401" });
    }
    // Paths the HTTP layer normalizes to /health are /health.
    for (const path of ["/v1/models/../../health", "/./health"]) expect((await rawGet(Number(port), path)).split(" ")[1]).toBe("200");
    // Other methods on /health need no key either, and reach no route.
    expect((await fetch(`${t.url}/health`, { method: "POST", body: "{}" })).status).toBe(404);
  });

  test("a short Host header cannot make the router see another path than the key check (GET /health?/v1/models)", async () => {
    const { port } = new URL(t.url);
    for (const host of ["x", "ab", "abc", "a:1"]) {
      for (const path of ["/health?/v1/models", "/health?a=/v1/completions", "/health?/metrics"]) {
        const reply = await rawGet(Number(port), path, host);
        expect({ host, path, status: reply.split(" ")[1] }).toEqual({ host, path, status: "200" }); // /health itself
      }
      expect((await rawGet(Number(port), "/v1/models", host)).split(" ")[1]).toBe("401");
    }
  });

  test("no key is ever echoed back", async () => {
    const res = await fetch(`${t.url}/v1/models`, { headers: { authorization: `Bearer ${KEY}-wrong` } });
    expect(await res.text()).not.toContain(KEY);
  });
});

/** A GET over a raw socket (fetch would normalize the path); resolves with the status line. */
async function rawGet(port: number, path: string, host = "x"): Promise<string> {
  let got = "";
  let done!: () => void;
  const closed = new Promise<void>((r) => (done = r));
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port,
    socket: { data: (_s, d) => void (got += d.toString()), close: () => done(), error: () => done() },
  });
  socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
  await Promise.race([closed, Bun.sleep(2000)]);
  socket.end();
  return got.split("\r\n")[0] ?? "";
}

describe("model paths stay inside the model directory", () => {
  const root = mkdtempSync(join(tmpdir(), "fastgen-paths-"));
  const outside = join(root, "outside");
  mkdirSync(outside);
  copyFileSync(join(FIXTURE, "model.safetensors"), join(outside, "model.safetensors"));
  writeFileSync(join(outside, "secret.json"), JSON.stringify({ secret: "do not read" }));
  copyFileSync(join(FIXTURE, "tokenizer.json"), join(outside, "tokenizer.json"));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** A copy of the fixture's small files; `weights` decides how its weights are laid out. */
  function modelDir(name: string, weights: (dir: string) => void, skip: string[] = []): string {
    const dir = join(root, name);
    mkdirSync(dir, { recursive: true });
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"])
      if (!skip.includes(f)) copyFileSync(join(FIXTURE, f), join(dir, f));
    weights(dir);
    return dir;
  }
  const indexWith = (dir: string, shard: string) => {
    const header = readFileSync(join(FIXTURE, "model.safetensors"));
    const names = Object.keys(JSON.parse(header.subarray(8, 8 + Number(header.readBigUInt64LE(0))).toString())).filter((n) => n !== "__metadata__");
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: Object.fromEntries(names.map((n) => [n, shard])) }));
  };
  const openError = (dir: string) => {
    try {
      openModelDir(dir).close();
    } catch (e) {
      return (e as Error).message;
    }
    return "opened";
  };

  test.each([
    ["../outside/model.safetensors", "climbs out with .."],
    ["sub/../../outside/model.safetensors", "climbs out with .."],
    ["..\\outside\\model.safetensors", "climbs out with .."],
    ["/etc/passwd", "is not a relative file name"],
    ["", "is not a relative file name"],
    ["model\u0000.safetensors", "is not a relative file name"],
  ])("an index naming shard %j is refused", (shard, why) => {
    const dir = modelDir(`index-${Bun.hash(shard)}`, (d) => indexWith(d, shard));
    expect(openError(dir)).toContain(why);
  });

  test("a shard that is a symlink out of the directory is refused; the error names the link", () => {
    const dir = modelDir("link-shard", (d) => {
      symlinkSync(join(outside, "model.safetensors"), join(d, "model-00001-of-00001.safetensors"));
      indexWith(d, "model-00001-of-00001.safetensors");
    });
    expect(openError(dir)).toContain("a link out");
    const plain = modelDir("link-plain", (d) => symlinkSync(join(outside, "model.safetensors"), join(d, "model.safetensors")));
    // model.safetensors itself (no index) is the user's own choice of file: a link is followed.
    expect(openError(plain)).toBe("opened");
  });

  test.each(["tokenizer.json", "tokenizer_config.json", "generation_config.json", "chat_template.jinja"])(
    "a %s linking out of the directory is a TokenizerError; the engine does not start",
    async (name) => {
      const dir = modelDir(`link-${name}`, (d) => {
        copyFileSync(join(FIXTURE, "model.safetensors"), join(d, "model.safetensors"));
        rmSync(join(d, name), { force: true });
        symlinkSync(name === "tokenizer.json" ? join(outside, "tokenizer.json") : join(outside, "secret.json"), join(d, name));
      });
      expect(() => Tokenizer.fromDir(dir)).toThrow(/outside the model directory/);
      const err = await startEngine(dir, { backend: "cpu", kvBlocks: 16 }).catch((e) => e);
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toContain("outside the model directory");
      expect(err.message).not.toContain("do not read");
    },
  );

  test("the Hugging Face cache layout (snapshots/<rev>/* linking into blobs/) loads", () => {
    const repo = join(root, "hub", "models--t--tiny");
    const blobs = join(repo, "blobs");
    const snap = join(repo, "snapshots", "abc123");
    mkdirSync(blobs, { recursive: true });
    mkdirSync(snap, { recursive: true });
    for (const f of ["config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json", "model.safetensors"]) {
      copyFileSync(join(FIXTURE, f), join(blobs, `blob-${f}`));
      symlinkSync(join("..", "..", "blobs", `blob-${f}`), join(snap, f));
    }
    expect(openError(snap)).toBe("opened");
    expect(Tokenizer.fromDir(snap).vocabSize).toBeGreaterThan(0);
  });

  test("a request's model name is only compared, never used as a path", async () => {
    const t = await serveEngine(new FakeEngine());
    try {
      for (const model of ["../../../etc/passwd", "/etc/passwd", join(outside, "secret.json")]) {
        const res = await t.post("/v1/completions", { model, prompt: "x" });
        expect(res.status).toBe(404);
        expect(checkErrorBody(await res.json(), model).code).toBe("model_not_found");
      }
      const res = await fetch(`${t.url}/v1/models/..%2F..%2F..%2Fetc%2Fpasswd`);
      expect(res.status).toBe(404);
      expect(await res.text()).not.toContain("root:");
    } finally {
      await t.close();
    }
  });
});

describe("request size limits", () => {
  let t: TestServer;
  beforeAll(async () => {
    t = await serveEngine(new FakeEngine({ maxModelLen: 64 }), { maxBodyBytes: 64 * 1024 });
  });
  afterAll(() => t.close());
  const codeOf = async (res: Response) => ({ status: res.status, code: checkErrorBody(await res.json(), String(res.status)).code });

  test("bodies over --max-body-bytes: 413, declared or chunked; at the limit: read", async () => {
    const over = JSON.stringify({ prompt: "x".repeat(64 * 1024) });
    expect(await codeOf(await t.post("/tokenize", over))).toEqual({ status: 413, code: "request_too_large" });
    const chunked = new ReadableStream({ start: (c) => (c.enqueue(new TextEncoder().encode(over)), c.close()) });
    expect(await codeOf(await fetch(`${t.url}/tokenize`, { method: "POST", body: chunked }))).toEqual({ status: 413, code: "request_too_large" });
    const at = `{"prompt":"${"x".repeat(64 * 1024 - 13)}"}`;
    expect(at.length).toBe(64 * 1024);
    expect((await t.post("/tokenize", at)).status).not.toBe(413);
  });

  test("headers over Bun's limit: 431, and the server stays up", async () => {
    const res = await fetch(`${t.url}/health`, { headers: { "x-big": "b".repeat(64 * 1024) } }).catch((e) => e);
    if (res instanceof Response) expect(res.status).toBe(431);
    expect((await fetch(`${t.url}/health`)).status).toBe(200);
  });

  test("too many prompts, too many choices, prompt text longer than the context can hold: 400", async () => {
    expect(await codeOf(await t.post("/v1/completions", { prompt: Array(1025).fill("a") }))).toMatchObject({ status: 400 });
    expect(await codeOf(await t.post("/v1/completions", { prompt: Array(20).fill("a"), n: 100 }))).toMatchObject({ status: 400 });
    expect(await codeOf(await t.post("/v1/completions", { prompt: "a".repeat(30_000) }))).toEqual({ status: 400, code: "context_length_exceeded" });
    expect(await codeOf(await t.post("/tokenize", { prompt: "a".repeat(30_000) }))).toEqual({ status: 400, code: "context_length_exceeded" });
    const chat = { messages: [{ role: "user", content: "a".repeat(30_000) }] };
    expect(await codeOf(await t.post("/v1/chat/completions", chat))).toEqual({ status: 400, code: "context_length_exceeded" });
    expect(await codeOf(await t.post("/tokenize", { prompt: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["deep"]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]] }))).toEqual({ status: 400, code: "invalid_json" });
  });
});
