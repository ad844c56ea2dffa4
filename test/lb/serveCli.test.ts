/**
 * The command line end to end: `fastgen replica` on its own (a "remote" replica), then
 * `fastgen serve --replicas 1 --replica HOST:PORT` balancing over its own child and that one;
 * SIGTERM stops the front end and its child but leaves the remote replica running. A remote
 * replica serving another model is refused at startup with a clear message.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { protoClient } from "../grpc/protoClient";

const ROOT = join(import.meta.dir, "..", "..");
const CLI = join(ROOT, "src", "cli.ts");
const FIXTURE = join(ROOT, "test", "fixtures", "llama-gqa");
const started: ReturnType<typeof Bun.spawn>[] = [];
afterAll(() => {
  for (const p of started) if (p.exitCode === null) p.kill("SIGKILL");
});

/** Runs `fastgen <args>` and resolves with the process once a stdout line matches `ready`. */
async function fastgen(args: string[], ready: RegExp): Promise<{ proc: ReturnType<typeof Bun.spawn>; match: RegExpMatchArray }> {
  const proc = Bun.spawn([process.execPath, CLI, ...args], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  started.push(proc);
  let seen = "";
  for await (const chunk of proc.stdout as ReadableStream<Uint8Array>) {
    seen += new TextDecoder().decode(chunk);
    const match = seen.match(ready);
    if (match) return { proc, match };
  }
  throw new Error(`fastgen ${args.join(" ")} exited (${await proc.exited}) without "${ready}":\n${seen}\n${await new Response(proc.stderr as ReadableStream).text()}`);
}

describe("fastgen serve with --replicas and --replica", () => {
  test("balances over its own replica and a remote one; SIGTERM stops only what it started", async () => {
    const remote = await fastgen(["replica", "--model", FIXTURE, "--port", "0", "--threads", "1"], /at grpc:\/\/(\S+)/);
    const remoteAddress = remote.match[1]!;
    const front = await fastgen(
      ["serve", "--model", FIXTURE, "--replicas", "1", "--replica", remoteAddress, "--port", "0", "--grpc-port", "0", "--threads", "1"],
      /and grpc:\/\/(\S+)/,
    );
    const c = protoClient(front.match[1]!);
    const health = await c.Health();
    expect(health.replicas_healthy).toBe(2);
    const addresses = health.replicas.map((r: { address: string }) => r.address);
    expect(addresses[1]).toBe(remoteAddress);
    const res = await c.Generate({ prompts: Array.from({ length: 6 }, () => ({ text: "hello" })), params: { max_new_tokens: 4 } });
    expect(res.responses).toHaveLength(6);
    expect((await c.Health()).replicas.map((r: { requests_routed: number }) => r.requests_routed)).toEqual([3, 3]);
    c.close();

    front.proc.kill("SIGTERM");
    expect(await front.proc.exited).toBe(0);
    const local = protoClient(addresses[0]);
    const gone = await local.Health({}, 1000).catch((e) => e);
    local.close();
    expect(gone).toBeInstanceOf(Error);
    const stillThere = protoClient(remoteAddress);
    expect((await stillThere.Health()).serving).toBe(true);
    stillThere.close();
    remote.proc.kill("SIGTERM");
    expect(await remote.proc.exited).toBe(0);
  }, 30_000);

  test("a remote replica serving another model is refused at startup", async () => {
    const other = await fastgen(["replica", "--port", "0", "--threads", "1"], /at grpc:\/\/(\S+)/); // the demo model
    const proc = Bun.spawn([process.execPath, CLI, "serve", "--model", FIXTURE, "--replica", other.match[1]!, "--port", "0", "--grpc-port", "0"], {
      cwd: ROOT, stdout: "pipe", stderr: "pipe",
    });
    started.push(proc);
    expect(await proc.exited).toBe(1);
    const stderr = await new Response(proc.stderr as ReadableStream).text();
    expect(stderr).toContain(`replica ${other.match[1]} serves model "fastgen-demo-tiny", but this front end loaded "llama-gqa"`);
    other.proc.kill("SIGTERM");
    await other.proc.exited;
  }, 30_000);
});
