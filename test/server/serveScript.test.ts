// `bun run serve -- --port N` from the repository root, as a user runs it: the package.json script
// serves the embedded demo model, answers the openai client, and exits 0 soon after SIGTERM.
import type { Subprocess } from "bun";
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import OpenAI from "openai";
import { waitFor } from "./testServer";

const ROOT = join(import.meta.dir, "..", "..");

/** A port nothing listens on right now. */
function freePort(): number {
  const probe = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response() });
  const port = probe.port!;
  probe.stop(true);
  return port;
}

let port: number;
let proc: Subprocess<"ignore", "pipe", "pipe">;
beforeAll(() => {
  port = freePort();
  const env: Record<string, string | undefined> = { ...process.env, FASTGEN_API_KEY: undefined };
  proc = Bun.spawn([process.execPath, "run", "serve", "--", "--port", String(port), "--grpc-port", "0"], { cwd: ROOT, env, stdout: "pipe", stderr: "pipe" });
});
afterAll(() => {
  if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGKILL");
});

async function up(): Promise<boolean> {
  if (proc.exitCode !== null) throw new Error(`serve exited with ${proc.exitCode}: ${await new Response(proc.stderr).text()}`);
  return fetch(`http://127.0.0.1:${port}/health`).then((r) => r.status === 200, () => false);
}

describe("bun run serve", () => {
  test("serves the embedded model to the openai client, then stops cleanly on SIGTERM", async () => {
    await waitFor(up, 30_000);
    const client = new OpenAI({ baseURL: `http://127.0.0.1:${port}/v1`, apiKey: "unused", maxRetries: 0 });
    const models = await client.models.list();
    expect(models.data.map((m) => m.id)).toEqual(["fastgen-demo-tiny"]);
    const chat = await client.chat.completions.create({
      model: "fastgen-demo-tiny", messages: [{ role: "user", content: "What does os.path.join do?" }], max_tokens: 16, temperature: 0,
    });
    expect(chat.choices[0]!.message.content!.length).toBeGreaterThan(0);
    expect(chat.usage!.completion_tokens).toBeGreaterThan(0);

    const stoppedAt = performance.now();
    proc.kill("SIGTERM");
    const code = await Promise.race([proc.exited, Bun.sleep(5000).then(() => "still running")]);
    expect(code).toBe(0);
    expect(performance.now() - stoppedAt).toBeLessThan(5000);
    const [stdout, stderr] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text()]);
    expect(stdout).toContain(`http://127.0.0.1:${port}/v1`);
    expect(stderr).toContain("SIGTERM, shutting down");
    expect(await fetch(`http://127.0.0.1:${port}/health`).catch((e) => e)).toBeInstanceOf(Error);
  });
});
