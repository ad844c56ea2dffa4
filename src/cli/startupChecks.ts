/**
 * What `fastgen serve` checks and reports around loading the model: a busy HTTP or gRPC port is
 * found before the weights load (minutes for a big model), not after; the load line says how
 * big the weights are, how long they took and how many tokens the KV cache holds.
 */
import { readdirSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import type { EngineClient } from "../engine/types";
import { formatBytes } from "../model/formatBytes";
import { UsageError } from "../ops/engineFlags";

/** Resolves once `port` on `host` could be bound (and was let go again); rejects naming it otherwise. */
function probe(host: string, port: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", (e: NodeJS.ErrnoException) => {
      const why = e.code === "EADDRINUSE" ? "it is already in use" : e.code === "EACCES" ? "permission denied" : e.message;
      reject(new UsageError(`cannot listen on ${host}:${port} (${what}): ${why}`));
    });
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve()));
  });
}

/** Checks every fixed port (0 = any free one is never busy) before anything slow starts. */
export async function checkPortsFree(host: string, ports: { port: number; what: string }[]): Promise<void> {
  for (const { port, what } of ports) if (port !== 0) await probe(host, port, what);
}

/** Bytes of the model's weight files (*.safetensors) in `dir` (0 when it cannot be read). */
export function weightBytes(dir: string): number {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith(".safetensors"))
      .reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  } catch {
    return 0;
  }
}

/** The load log line: model, weight size, elapsed time, KV capacity in tokens (when the engine knows it). */
export function loadedLine(engine: EngineClient, modelDir: string, elapsedMs: number): string {
  const bytes = weightBytes(modelDir);
  const size = bytes > 0 ? `${formatBytes(bytes)} of weights, ` : "";
  const kv = engine.kvCacheTokens !== undefined ? `; KV cache holds ${engine.kvCacheTokens} tokens` : "";
  return `loaded ${engine.modelName} (${size}max context ${engine.maxModelLen} tokens) in ${(elapsedMs / 1000).toFixed(1)} s${kv}`;
}
