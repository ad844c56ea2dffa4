/**
 * Shared by the reliability suite: a seeded PRNG (failures reproduce: the seed is printed), a
 * logger that keeps its lines, checks of OpenAI-shaped error bodies, and `fastgen serve` as a
 * child process on 127.0.0.1 with its output kept.
 */
import type { Subprocess } from "bun";
import { expect } from "bun:test";
import { join } from "node:path";
import { Logger } from "../../src/ops/logger";

export const ROOT = join(import.meta.dir, "..", "..");

/** mulberry32: a small seeded PRNG; `FASTGEN_SEED=n` overrides the default seed. */
export class Rng {
  private s: number;
  constructor(readonly seed: number) {
    this.s = seed >>> 0;
  }
  /** [0, 1) */
  next(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [lo, hi]. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[Math.floor(this.next() * xs.length)]!;
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
}

/** The suite's seed: $FASTGEN_SEED, else `fallback`. */
export function suiteSeed(fallback: number): number {
  const env = Number(process.env.FASTGEN_SEED);
  return Number.isInteger(env) ? env : fallback;
}

/** A JSON logger whose lines are kept (out = access log, err = diagnostics). */
export function memoryLogger(): { logger: Logger; out: Record<string, unknown>[]; err: Record<string, unknown>[] } {
  const out: Record<string, unknown>[] = [];
  const err: Record<string, unknown>[] = [];
  const logger = new Logger("json", { out: (l) => out.push(JSON.parse(l)), err: (l) => err.push(JSON.parse(l)) });
  return { logger, out, err };
}

/** An OpenAI error body: exactly { error: { message, type, param, code } }, no stack trace. */
export function checkErrorBody(body: unknown, context: string): { message: string; type: string; code: string | null } {
  const e = (body as { error?: Record<string, unknown> })?.error;
  if (!e || typeof e !== "object") throw new Error(`${context}: not an OpenAI error body: ${JSON.stringify(body)?.slice(0, 300)}`);
  expect(Object.keys(body as object)).toEqual(["error"]);
  expect(Object.keys(e).sort()).toEqual(["code", "message", "param", "type"]);
  expect(typeof e.message).toBe("string");
  expect(e.message as string).not.toMatch(/\n\s+at |\.ts:\d+/);
  return e as { message: string; type: string; code: string | null };
}

/** A running `fastgen serve` child: its URL, output so far, and how to stop it. */
export interface ServeProcess {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  url: string;
  stdout: string[];
  stderr: string[];
  /** SIGTERM (or `signal`), then waits for exit (SIGKILL after `ms`); resolves with the exit code. */
  stop(signal?: NodeJS.Signals, ms?: number): Promise<number | null>;
}

async function lines(stream: ReadableStream<Uint8Array>, into: string[], onLine: (l: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      into.push(line);
      onLine(line);
    }
  }
  if (buffered) into.push(buffered);
}

/** Starts `bun src/cli.ts serve --port 0 --grpc-port 0 ...args` and resolves once it serves. */
export async function spawnServe(args: string[], timeoutMs = 30_000): Promise<ServeProcess> {
  const env: Record<string, string | undefined> = { ...process.env, FASTGEN_API_KEY: undefined };
  const proc = Bun.spawn([process.execPath, join(ROOT, "src", "cli.ts"), "serve", "--port", "0", "--grpc-port", "0", ...args], {
    cwd: ROOT, env, stdin: "ignore", stdout: "pipe", stderr: "pipe",
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  let found: (url: string) => void;
  const ready = new Promise<string>((r) => (found = r));
  const scan = (l: string) => {
    const m = l.match(/ at (http:\/\/[^\s"]+)\/v1/);
    if (m) found(m[1]!);
  };
  void lines(proc.stdout, stdout, scan);
  void lines(proc.stderr, stderr, () => {});
  const stop = async (signal: NodeJS.Signals = "SIGTERM", ms = 20_000) => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const killer = setTimeout(() => proc.kill("SIGKILL"), ms);
    const code = await proc.exited;
    clearTimeout(killer);
    return code;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const failed = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`serve did not start:\n${stderr.join("\n")}`)), timeoutMs);
    void proc.exited.then((code) => reject(new Error(`serve exited with ${code}:\n${stderr.join("\n")}`)));
  });
  try {
    const url = await Promise.race([ready, failed]);
    return { proc, url, stdout, stderr, stop };
  } catch (e) {
    await stop("SIGKILL");
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
