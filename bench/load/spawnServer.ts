/**
 * `--serve`: starts `fastgen serve` as a child process (its own process, so the load generator
 * never shares an event loop or cores' scheduling with the server's HTTP thread), waits for its
 * "serving ... at URL/v1" line, and stops it with SIGTERM afterwards.
 */
import type { Subprocess } from "bun";
import { join } from "node:path";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");

/** A running server child. */
export interface SpawnedServer {
  url: string;
  stop(): Promise<void>;
}

/** Splits a flag string ("--max-batch-tokens 768 --backend cuda") into argv words. */
export function splitFlags(s: string | undefined): string[] {
  return (s ?? "").split(/\s+/).filter((w) => w !== "");
}

/** Starts `fastgen serve --host 127.0.0.1 --port 0 [--model DIR] [--policy P] [flags]`. */
export async function spawnFastgen(o: { modelDir?: string; policy?: string; flags?: string[]; timeoutMs?: number }): Promise<SpawnedServer> {
  const args = ["serve", "--host", "127.0.0.1", "--port", "0"];
  if (o.modelDir) args.push("--model", o.modelDir);
  if (o.policy) args.push("--policy", o.policy);
  args.push(...(o.flags ?? []));
  const proc: Subprocess<"ignore", "pipe", "inherit"> = Bun.spawn([process.execPath, CLI, ...args], {
    stdin: "ignore",
    stdout: "pipe",
    stderr: "inherit",
  });
  const stop = async () => {
    if (proc.exitCode !== null) return;
    proc.kill("SIGTERM");
    const killed = setTimeout(() => proc.kill("SIGKILL"), 20_000);
    await proc.exited;
    clearTimeout(killed);
  };
  const timeoutMs = o.timeoutMs ?? 30 * 60_000;
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  let seen = "";
  const found = (async () => {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`fastgen serve exited (code ${await proc.exited}) before serving:\n${seen}`);
      seen += decoder.decode(value, { stream: true });
      const m = seen.match(/ at (https?:\/\/\S+)\/v1/);
      if (m) return m[1]!;
    }
  })();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`fastgen serve did not come up in ${timeoutMs / 1000} s`)), timeoutMs);
  });
  try {
    const url = await Promise.race([found, timeout]);
    // Keep draining stdout so the child never blocks on a full pipe.
    void (async () => {
      while (!(await reader.read()).done) {}
    })().catch(() => {});
    return { url, stop };
  } catch (e) {
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
