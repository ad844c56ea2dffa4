/** Messages between the serving thread (AsyncEngine) and the engine Worker (engineWorker.ts). */
import type { EngineOptions } from "./options";
import type { EngineMetrics, GenerationDelta } from "./types";
import type { SamplingOptions } from "./samplingOptions";
import type { KvEventBatch } from "./kvCache/kvEvents";

export type ToWorker =
  | { type: "init"; modelDir: string; options: Partial<EngineOptions> }
  | { type: "add"; id: string; promptIds: number[]; sampling: SamplingOptions; firstSample?: number }
  | { type: "abort"; id: string }
  | { type: "shutdown" }
  /** Tests only (AsyncEngine.debugFailNextSteps): the next n forward passes fail in libfastgen. */
  | { type: "debug-fail-steps"; n: number; device?: boolean };

export interface WorkerReadyInfo {
  modelName: string;
  maxModelLen: number;
  numBlocks: number;
  blockSize: number;
  backend: string;
}

export type FromWorker =
  | { type: "progress"; done: number; total: number }
  | { type: "ready"; info: WorkerReadyInfo }
  | { type: "init-error"; error: SerializedError }
  /** One pass's output; `kvEvents`: its prefix-cache changes, when it made any. */
  | { type: "deltas"; items: { id: string; deltas: GenerationDelta[] }[]; metrics: EngineMetrics; kvEvents?: KvEventBatch }
  | { type: "request-error"; id: string; error: SerializedError }
  /** The native engine failed for good (EngineCore.fatalError): every request was failed. */
  | { type: "fatal"; error: SerializedError }
  | { type: "closed" };

export interface SerializedError {
  name: string;
  message: string;
}

export function serializeError(e: unknown): SerializedError {
  const err = e instanceof Error ? e : new Error(String(e));
  return { name: err.name, message: err.message };
}
