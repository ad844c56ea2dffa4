// `bun run compile` → dist/fastgen: one executable that runs generate and serve from an empty
// directory with no node_modules, no repo and no FASTGEN_* variables beside it.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const repo = join(import.meta.dir, "..", "..");
let dir: string;
let exe: string;
const env = () => {
  const e: Record<string, string> = { PATH: "/usr/bin:/bin", HOME: dir, XDG_CACHE_HOME: join(dir, "cache") };
  return e;
};

beforeAll(() => {
  const build = Bun.spawnSync([process.execPath, "run", "compile"], { cwd: repo, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`bun run compile failed: ${build.stderr}`);
  dir = mkdtempSync(join(tmpdir(), "fastgen-bin-"));
  exe = join(dir, "fastgen");
  copyFileSync(join(repo, "dist", "fastgen"), exe);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("the binary runs generate on its embedded model from an empty directory", () => {
  const r = Bun.spawnSync([exe, "generate", "--prompt", "The module", "--max-tokens", "6", "--ignore-eos", "--json"], { cwd: dir, env: env(), stdout: "pipe", stderr: "pipe" });
  expect(r.stderr.toString()).toBe("");
  expect(r.exitCode).toBe(0);
  expect(JSON.parse(r.stdout.toString()).token_ids).toHaveLength(6);
});

test("the binary has every command: generate, serve, replica, bench", () => {
  for (const cmd of ["generate", "serve", "replica", "bench"]) {
    const r = Bun.spawnSync([exe, cmd, "--help"], { cwd: dir, env: env(), stdout: "pipe", stderr: "pipe" });
    expect({ cmd, code: r.exitCode }).toEqual({ cmd, code: 0 });
    expect(r.stdout.toString()).toContain("Usage");
  }
});

/** `serve` on a random port, ready to answer; a port another process holds makes it exit: try another. */
async function startServer(): Promise<{ p: ReturnType<typeof Bun.spawn>; port: number }> {
  let why = "";
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 20000);
    const p = Bun.spawn([exe, "serve", "--port", String(port), "--grpc-port", "0"], { cwd: dir, env: env(), stdout: "ignore", stderr: "pipe" });
    // up to 30 s: the whole suite shares two cores with this server's start-up
    for (let i = 0; i < 300 && p.exitCode === null; i++) {
      await Bun.sleep(100);
      const models = await fetch(`http://127.0.0.1:${port}/v1/models`).catch(() => null);
      if (models?.status === 200) return { p, port };
    }
    p.kill("SIGTERM");
    await p.exited;
    why = `exit ${p.exitCode}: ${(await new Response(p.stderr as ReadableStream).text()).slice(-500)}`;
  }
  throw new Error(`the binary's server did not come up (${why})`);
}

test("the binary serves the OpenAI API, structured outputs included", async () => {
  const { p, port } = await startServer();
  try {
    const res = await fetch(`http://127.0.0.1:${port}/v1/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "fastgen-demo-tiny", prompt: "The module", max_tokens: 5, ignore_eos: true }),
    });
    expect(res.status).toBe(200);
    expect((await res.json()).usage.completion_tokens).toBe(5);
    // A long prompt is tokenized by a tokenizer Worker, which the binary bundles as an entry point.
    const long = await fetch(`http://127.0.0.1:${port}/tokenize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ prompt: " ".repeat(9000) }),
    });
    expect(long.status).toBe(200);
    expect((await long.json()).count).toBeGreaterThan(0);
    // A constrained request compiles and masks in the grammar Worker, another bundled entry point.
    const schema = { type: "object", properties: { ok: { type: "boolean" } }, required: ["ok"], additionalProperties: false };
    const structured = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        model: "fastgen-demo-tiny", messages: [{ role: "user", content: "ok?" }], max_tokens: 20, seed: 1,
        response_format: { type: "json_schema", json_schema: { name: "answer", schema, strict: true } },
      }),
    });
    expect(structured.status).toBe(200);
    expect(typeof JSON.parse((await structured.json()).choices[0].message.content).ok).toBe("boolean");
  } finally {
    p.kill("SIGTERM");
    await p.exited;
  }
}, 120_000);
