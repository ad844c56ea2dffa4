/**
 * FastGen's library API, in DeepSpeed-MII's spirit:
 *
 *   const pipe = await pipeline("Qwen/Qwen2.5-0.5B-Instruct", { maxBatchTokens: 512 });  // or a directory
 *   const out = await pipe(["Hello", "DeepSpeed is"], { max_new_tokens: 128 });
 *   // [{ generated_text, prompt_length, generated_length, finish_reason }]
 *   for await (const d of pipe.stream("Hello", { max_new_tokens: 16 })) process.stdout.write(d.text);
 *   await pipe.destroy();
 *
 *   const h = await serve(model, { replicas: 2, port: 50050, http: 8000 });     // gRPC (+ HTTP)
 *   const c = client("localhost:50050");
 *   const res = await c.generate(["Hello"], { max_new_tokens: 32 });             // same shape
 *   for await (const d of c.stream("Hello")) process.stdout.write(d.text);
 *   c.close();
 *   await h.terminate();
 */
import type { EngineOptions } from "./engine/options";
import type { SamplingOptions } from "./engine/samplingOptions";
import type { FinishReason, GenerationDelta } from "./engine/types";
import { AsyncEngine, startEngine } from "./engine/asyncEngine";
import { type HubOptions, resolveModels } from "./engine/resolveModels";
import type { PipelineGenerateOptions, PipelineResponse } from "./engine/pipelineOptions";
import { toSampling } from "./engine/pipelineOptions";

export type { EngineOptions, SamplingOptions, GenerationDelta, FinishReason, PipelineGenerateOptions, PipelineResponse, HubOptions };
export { ModelNotFoundError } from "./model/errors";
export { startEngine, AsyncEngine };
// The engine in a child process that is restarted when it crashes (what `fastgen serve` runs).
export { startSupervisedEngine, SupervisedEngine } from "./engine/supervisedEngine";
export { EngineCrashedError, RequestQuarantinedError } from "./engine/engineErrors";
export { client, FastGenClient, FastGenRpcError } from "./grpc/client";
export type { ClientGenerateOptions, ClientPrompt, ClientResponse } from "./grpc/client";
export { serve } from "./deploy/serve";
export type { ServeHandle, ServeOptions } from "./deploy/serve";

export interface Pipeline {
  (prompts: string | string[], opts?: PipelineGenerateOptions): Promise<PipelineResponse[]>;
  stream(prompt: string, opts?: PipelineGenerateOptions): AsyncIterable<GenerationDelta>;
  readonly engine: AsyncEngine;
  destroy(): Promise<void>;
}

let nextId = 0;

/**
 * Loads a model (a directory or a hub id `org/name[@revision]`, found in the hub cache or downloaded
 * into it as `hub` says; default: the embedded demo model) and returns a callable pipeline.
 * @throws ModelNotFoundError when a hub id is neither cached nor downloaded.
 */
export async function pipeline(model?: string, options: Partial<EngineOptions> = {}, hub: HubOptions = {}): Promise<Pipeline> {
  const resolved = await resolveModels(model, options, hub);
  const engine = await startEngine(resolved.model.dir, resolved.options);

  async function runOne(prompt: string, sampling: SamplingOptions): Promise<PipelineResponse> {
    const promptIds = engine.tokenizer.encode(prompt, { addSpecialTokens: true });
    let text = "", finish: FinishReason = "abort";
    const ids: number[] = [];
    for await (const d of engine.generate({ requestId: `pipe-${nextId++}`, promptIds, sampling })) {
      text += d.text;
      ids.push(...d.tokenIds);
      if (d.finishReason) finish = d.finishReason;
    }
    return { generated_text: text, prompt_length: promptIds.length, generated_length: ids.length, finish_reason: finish, token_ids: ids };
  }

  const pipe = (async (prompts: string | string[], opts?: PipelineGenerateOptions) => {
    const list = Array.isArray(prompts) ? prompts : [prompts];
    const sampling = toSampling(opts);
    return Promise.all(list.map((p) => runOne(p, sampling)));
  }) as Pipeline;
  pipe.stream = (prompt, opts) => {
    const promptIds = engine.tokenizer.encode(prompt, { addSpecialTokens: true });
    return engine.generate({ requestId: `pipe-${nextId++}`, promptIds, sampling: toSampling(opts) });
  };
  Object.defineProperty(pipe, "engine", { value: engine });
  pipe.destroy = () => engine.shutdown();
  return pipe;
}
