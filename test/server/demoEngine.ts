/**
 * The real engine for the end-to-end server tests: the embedded demo model in an engine Worker on
 * the CPU backend, and a wait for its KV cache to drain.
 */
import { afterAll, beforeAll, expect } from "bun:test";
import type { AsyncEngine } from "../../src/engine/asyncEngine";
import { startEngine } from "../../src/engine/asyncEngine";
import { defaultModelDir } from "../../src/model/defaultModel";
import type { TestServer } from "./testServer";
import { serveEngine, waitFor } from "./testServer";

/** Starts fastgen-demo-tiny with a small KV pool (4096 tokens: 4 full-context requests). */
export function startDemoEngine(): Promise<AsyncEngine> {
  return startEngine(defaultModelDir(), { backend: "cpu", kvBlocks: 256, blockSize: 16 });
}

/** Waits until the engine runs nothing and every KV block is free again. */
export async function expectKvDrained(engine: AsyncEngine): Promise<void> {
  await waitFor(() => {
    const m = engine.metrics();
    return m.kvBlocksFree === m.kvBlocksTotal && m.requestsRunning + m.requestsWaiting === 0;
  }, 5000);
  const m = engine.metrics();
  expect(m.kvBlocksFree).toBe(m.kvBlocksTotal);
}

/**
 * Registers the suite's beforeAll / afterAll: start the demo engine and serve it (handing both to
 * `use`), then close the server and shut the engine down.
 */
export function useDemoServer(use: (engine: AsyncEngine, server: TestServer<AsyncEngine>) => void): void {
  let engine: AsyncEngine | undefined;
  let server: TestServer<AsyncEngine> | undefined;
  beforeAll(async () => {
    engine = await startDemoEngine();
    server = await serveEngine(engine);
    use(engine, server);
  });
  afterAll(async () => {
    await server?.close();
    await engine?.shutdown();
  });
}
