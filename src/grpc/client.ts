/**
 * The client API (`client()` in src/index.ts): MII's client over FastGen's gRPC service.
 *
 *   const c = client("localhost:50050");
 *   const out = await c.generate(["Hello", "DeepSpeed is"], { max_new_tokens: 64 });
 *   // [{ generated_text, prompt_length, generated_length, finish_reason, token_ids }]
 *   for await (const d of c.stream("Hello", { max_new_tokens: 16 })) process.stdout.write(d.text);
 *   c.close();
 *
 * Failures reject with FastGenRpcError (the gRPC status code and the server's message).
 */
import type { FinishReason, GenerationDelta, TokenLogprob } from "../engine/types";
import type { PipelineGenerateOptions, PipelineResponse } from "../engine/pipelineOptions";
import { deltaFromWire, finishFromWire, logprobFromWire, stopReasonFromWire } from "./convert";
import type { RpcClientOptions } from "./rpcClient";
import { isServiceError, RpcClient, statusName } from "./rpcClient";
import type {
  WireAbortReply, WireGenerateDelta, WireGenerateReply, WireHealthReply, WireListModelsReply, WireModelInfo, WirePrompt, WireSamplingParams,
} from "./wire";
import { envVar } from "../envVars";

/** Generation options: MII's, plus what the service adds. */
export interface ClientGenerateOptions extends PipelineGenerateOptions {
  /** Top-k logprobs per generated token (0-20). */
  logprobs?: number;
  /** Samples per prompt (generate() returns prompts x n responses, prompt-major). */
  n?: number;
  presence_penalty?: number;
  frequency_penalty?: number;
  /** An id for abort(); unique among your calls in flight. */
  request_id?: string;
  /** The served model's name (default: whatever the server serves). */
  model?: string;
  /** Deadline of a generate() call in milliseconds (default none). */
  timeout_ms?: number;
}

/** One prompt (or one sample of it): MII's response shape. */
export interface ClientResponse extends PipelineResponse {
  logprobs?: TokenLogprob[];
  /** The stop string or stop token id that ended it, when one did. */
  stop_reason?: string | number;
}

/** A prompt: text (encoded by the server's tokenizer) or token ids. */
export type ClientPrompt = string | number[];

/** A failed call: `code` is the gRPC status code, `codeName` its name, `message` the server's. */
export class FastGenRpcError extends Error {
  override name = "FastGenRpcError";

  constructor(
    readonly code: number,
    readonly codeName: string,
    readonly details: string,
  ) {
    super(`${codeName}: ${details}`);
  }
}

function rpcError(e: unknown): unknown {
  return isServiceError(e) ? new FastGenRpcError(e.code, statusName(e.code), e.details) : e;
}

function toWirePrompt(p: ClientPrompt): Partial<WirePrompt> {
  return typeof p === "string" ? { text: p } : { token_ids: { ids: p } };
}

/** MII's options as SamplingParams (do_sample false, or no temperature, means greedy). */
export function toWireParams(o: ClientGenerateOptions = {}): Partial<WireSamplingParams> {
  const sample = o.do_sample ?? o.temperature !== undefined;
  const stop = o.stop === undefined ? [] : Array.isArray(o.stop) ? o.stop : [o.stop];
  return {
    max_new_tokens: o.max_new_tokens ?? 0,
    min_new_tokens: o.min_new_tokens ?? 0,
    temperature: sample ? (o.temperature ?? 1) : 0,
    top_p: o.top_p,
    top_k: o.top_k,
    min_p: o.min_p,
    seed: o.seed,
    stop,
    stop_token_ids: o.stop_token_ids ?? [],
    ignore_eos: o.ignore_eos ?? false,
    presence_penalty: o.presence_penalty ?? 0,
    frequency_penalty: o.frequency_penalty ?? 0,
    repetition_penalty: o.repetition_penalty,
    logprobs: o.logprobs ?? 0,
    n: o.n ?? 1,
  };
}

export class FastGenClient {
  private readonly rpc: RpcClient;

  constructor(
    readonly address: string,
    options: RpcClientOptions = {},
  ) {
    this.rpc = new RpcClient(address, options);
  }

  /** Runs every prompt to the end; one response per prompt (per sample when n > 1). */
  async generate(prompts: ClientPrompt | ClientPrompt[], opts: ClientGenerateOptions = {}): Promise<ClientResponse[]> {
    const single = typeof prompts === "string" || (Array.isArray(prompts) && prompts.every((p) => typeof p === "number"));
    const list = (single ? [prompts] : prompts) as ClientPrompt[];
    const request = { model: opts.model ?? "", prompts: list.map(toWirePrompt), params: toWireParams(opts), request_id: opts.request_id ?? "" };
    let reply: WireGenerateReply;
    try {
      reply = await this.rpc.unary<WireGenerateReply>("Generate", request, opts.timeout_ms);
    } catch (e) {
      throw rpcError(e);
    }
    return reply.responses.map((r) => {
      const out: ClientResponse = {
        generated_text: r.generated_text,
        prompt_length: r.prompt_length,
        generated_length: r.generated_length,
        finish_reason: (finishFromWire(r.finish_reason) ?? "abort") as FinishReason,
        token_ids: r.token_ids,
      };
      if (r.logprobs.length > 0) out.logprobs = r.logprobs.map(logprobFromWire);
      const stop = stopReasonFromWire(r);
      if (stop !== undefined) out.stop_reason = stop;
      return out;
    });
  }

  /** Streams one prompt's deltas; leaving the loop early cancels the generation. */
  async *stream(prompt: ClientPrompt, opts: ClientGenerateOptions = {}): AsyncGenerator<GenerationDelta> {
    const request = { model: opts.model ?? "", prompt: toWirePrompt(prompt), params: toWireParams(opts), request_id: opts.request_id ?? "" };
    const call = this.rpc.stream<WireGenerateDelta>("GenerateStream", request);
    try {
      for await (const m of call.messages) yield deltaFromWire(m);
    } catch (e) {
      throw rpcError(e);
    }
  }

  /** Aborts the generate()/stream() call that gave `requestId`; false when none is in flight. */
  async abort(requestId: string): Promise<boolean> {
    return (await this.call<WireAbortReply>("Abort", { request_id: requestId })).found;
  }

  /** The served model(s). */
  async models(): Promise<WireModelInfo[]> {
    return (await this.call<WireListModelsReply>("ListModels", {})).models;
  }

  /** The server's health: serving, queue lengths, replicas (on a front end). */
  health(timeoutMs = 5000): Promise<WireHealthReply> {
    return this.call<WireHealthReply>("Health", {}, timeoutMs);
  }

  private async call<T>(method: "Abort" | "ListModels" | "Health", request: unknown, timeoutMs = 30_000): Promise<T> {
    try {
      return await this.rpc.unary<T>(method, request, timeoutMs);
    } catch (e) {
      throw rpcError(e);
    }
  }

  close(): void {
    this.rpc.close();
  }
}

/**
 * A client of the FastGen gRPC service at `address` (host:port; default localhost:50050).
 * `apiKey` is for servers started with --api-key (default: $FASTGEN_API_KEY when set).
 */
export function client(address = "localhost:50050", options: RpcClientOptions = {}): FastGenClient {
  return new FastGenClient(address, { apiKey: options.apiKey ?? envVar("FASTGEN_API_KEY") });
}
