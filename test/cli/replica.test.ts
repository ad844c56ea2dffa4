// `fastgen replica` takes its flags from --config too, and drains on SIGTERM within
// --shutdown-timeout.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
let dir: string;
beforeAll(() => (dir = mkdtempSync(join(tmpdir(), "fastgen-replica-"))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("an unknown key in --config is a usage error", () => {
  const cfg = join(dir, "bad.json");
  writeFileSync(cfg, JSON.stringify({ bogus: 1 }));
  const r = Bun.spawnSync([process.execPath, CLI, "replica", "--config", cfg], { stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(2);
  expect(r.stderr.toString()).toContain('unknown key "bogus"');
});

test("flags from --config; SIGTERM stops it cleanly", async () => {
  const cfg = join(dir, "good.json");
  writeFileSync(cfg, JSON.stringify({ model: FIXTURE, port: "0", "shutdown-timeout": "1", "kv-blocks": "32" }));
  const p = Bun.spawn([process.execPath, CLI, "replica", "--config", cfg], { stdout: "pipe", stderr: "pipe" });
  const reader = p.stdout.getReader();
  let out = "";
  while (!out.includes("grpc://")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  expect(out).toMatch(/replica serving llama-gqa .* at grpc:\/\/127\.0\.0\.1:\d+/);
  p.kill("SIGTERM");
  expect(await p.exited).toBe(0);
});

test("--log-format json: every line one JSON object, the ready line with its address", async () => {
  const p = Bun.spawn([process.execPath, CLI, "replica", "--model", FIXTURE, "--port", "0", "--kv-blocks", "32", "--log-format", "json"],
    { stdout: "pipe", stderr: "pipe" });
  const reader = p.stdout.getReader();
  let out = "";
  while (!out.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  const ready = JSON.parse(out.split("\n")[0]!);
  expect(ready.msg).toMatch(/replica serving llama-gqa .* at grpc:\/\/127\.0\.0\.1:\d+/);
  expect(ready.grpc).toMatch(/^127\.0\.0\.1:\d+$/);
  expect(ready.level).toBe("info");
  p.kill("SIGTERM");
  expect(await p.exited).toBe(0);
  const err = (await new Response(p.stderr).text()).trim().split("\n");
  for (const line of err) expect(() => JSON.parse(line)).not.toThrow();
});

test("--log-format other is a usage error", () => {
  const r = Bun.spawnSync([process.execPath, CLI, "replica", "--log-format", "xml"], { stdout: "pipe", stderr: "pipe" });
  expect(r.exitCode).toBe(2);
  expect(r.stderr.toString()).toContain("--log-format");
});
