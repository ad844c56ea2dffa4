/**
 * `fastgen serve` start-up: a busy HTTP or gRPC port is reported before the weights load; gRPC is
 * off unless --grpc-port is given; the load line gives the weights' size, the time and the KV
 * capacity; a hub-cache snapshot is served under its repository's name; --allowed-origins.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultModelDir } from "../../src/model/defaultModel";
import { ROOT } from "../reliability/helpers";

const CLI = join(ROOT, "src", "cli.ts");
const tmp = mkdtempSync(join(tmpdir(), "fastgen-startup-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs serve until it prints its ready line (or exits); returns its output and a stop function. */
async function serve(args: string[], timeoutMs = 60_000) {
  const proc = Bun.spawn([process.execPath, CLI, "serve", "--threads", "1", "--kv-blocks", "64", ...args], {
    cwd: ROOT, env: { ...process.env, FASTGEN_API_KEY: undefined }, stdout: "pipe", stderr: "pipe",
  });
  let stdout = "";
  const reader = proc.stdout.getReader();
  const deadline = Date.now() + timeoutMs;
  while (!stdout.includes("/v1") && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    stdout += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  const stop = async () => {
    proc.kill("SIGTERM");
    await proc.exited;
    return new Response(proc.stderr).text();
  };
  return { proc, stdout, stop };
}

describe("busy ports are reported before the weights load", () => {
  test.each([["--port"], ["--grpc-port"]])("%s", async (flag) => {
    const busy = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
    try {
      const args = flag === "--port" ? ["--port", String(busy.port)] : ["--port", "0", "--grpc-port", String(busy.port)];
      const proc = Bun.spawn([process.execPath, CLI, "serve", ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
      expect(await proc.exited).not.toBe(0);
      const stderr = await new Response(proc.stderr).text();
      expect(stderr).toContain(`127.0.0.1:${busy.port}`);
      expect(stderr).toContain("already in use");
      expect(stderr).not.toContain("loading");
    } finally {
      busy.stop(true);
    }
  });
});

describe("a served snapshot directory", () => {
  test("no gRPC by default; the load line; the repository's name; CORS from --allowed-origins", async () => {
    // The hub cache's layout: snapshot files are links into the repository's blobs/.
    const repo = join(tmp, "hub", "models--fastgen--demo-tiny");
    const snapshot = join(repo, "snapshots", "0123456789abcdef0123456789abcdef01234567");
    mkdirSync(snapshot, { recursive: true });
    mkdirSync(join(repo, "blobs"));
    for (const f of readdirSync(defaultModelDir())) {
      copyFileSync(join(defaultModelDir(), f), join(repo, "blobs", `blob-${f}`));
      symlinkSync(join("..", "..", "blobs", `blob-${f}`), join(snapshot, f));
    }
    const s = await serve(["--model", snapshot, "--port", "0", "--allowed-origins", "https://a.example, https://b.example"]);
    try {
      expect(s.stdout).toContain("serving fastgen/demo-tiny");
      expect(s.stdout).not.toContain("grpc://");
      const url = s.stdout.match(/ at (http:\/\/\S+)\/v1/)![1]!;
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data[0]!.id).toBe("fastgen/demo-tiny");
      const pre = await fetch(`${url}/v1/responses`, { method: "OPTIONS", headers: { origin: "https://b.example", "access-control-request-method": "POST" } });
      expect(pre.status).toBe(204);
      expect(pre.headers.get("access-control-allow-origin")).toBe("https://b.example");
    } finally {
      const stderr = await s.stop();
      expect(stderr).toMatch(/loaded fastgen\/demo-tiny \([\d.]+ MiB of weights, max context \d+ tokens\) in [\d.]+ s; KV cache holds 1024 tokens/);
    }
  });

  test("--generation-config must be auto or vllm", async () => {
    const proc = Bun.spawn([process.execPath, CLI, "serve", "--generation-config", "hf"], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
    expect(await proc.exited).toBe(2);
    expect(await new Response(proc.stderr).text()).toContain("--generation-config");
  });
});
