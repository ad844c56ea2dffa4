/**
 * Generate (unary: every prompt to the end, MII's response shape) and GenerateStream (one
 * prompt's deltas as they come). Each prompt is one engine request, so a load balancer behind
 * `engine` routes every prompt on its own. A cancelled call, an Abort RPC or a failed sibling
 * prompt aborts the engine requests; a sample the engine left unfinished is closed as ABORT.
 */
import type { sendUnaryData, ServerUnaryCall, ServerWritableStream } from "@grpc/grpc-js";
import type { GenerationDelta } from "../engine/types";
import type { GrpcServiceState } from "./serviceState";
import type { DeltaUsage } from "./convert";
import { deltaToWire, finishToWire, logprobToWire, stopReasonToWire } from "./convert";
import type { GenerateJob } from "./requestCheck";
import { checkModel, checkRequestId, readJobs } from "./requestCheck";
import { signalAccepted } from "./acceptSignal";
import { toServiceError } from "./status";
import type { WireGenerateDelta, WireGenerateReply, WireGenerateRequest, WireGenerateStreamRequest, WireResponse } from "./wire";

/** A delta and, on a sample's last one, its usage. */
interface JobDelta {
  delta: GenerationDelta;
  usage?: DeltaUsage;
}

/**
 * Runs one job on the engine, counting its work and closing samples the engine left open. The
 * engine request id starts with the client's request_id (when it gave one) so logs correlate.
 */
async function* runJob(state: GrpcServiceState, job: GenerateJob, signal: AbortSignal, clientId: string, firstSample: number): AsyncGenerator<JobDelta> {
  const n = job.sampling.n ?? 1;
  const generated = new Array<number>(n).fill(0);
  const finished = new Array<boolean>(n).fill(false);
  const ticket = state.work.start(job.promptIds.length, job.sampling.maxTokens, n);
  const usage = (i: number): DeltaUsage => ({ promptLength: job.promptIds.length, generatedLength: generated[i] ?? 0 });
  try {
    const requestId = `${clientId || "grpc"}-${crypto.randomUUID().slice(0, 8)}`;
    for await (const delta of state.engine.generate({ requestId, promptIds: job.promptIds, sampling: job.sampling, firstSample }, signal)) {
      generated[delta.index] = (generated[delta.index] ?? 0) + delta.tokenIds.length;
      ticket.consume(delta.tokenIds.length);
      if (!delta.finishReason) {
        yield { delta };
        continue;
      }
      finished[delta.index] = true;
      yield { delta, usage: usage(delta.index) };
    }
  } finally {
    ticket.finish();
  }
  for (let i = 0; i < n; i++)
    if (!finished[i]) yield { delta: { index: i, tokenIds: [], text: "", finishReason: "abort" }, usage: usage(i) };
}

/** Everything one sample produced, as a Response. */
function emptyResponse(): WireResponse {
  return { generated_text: "", prompt_length: 0, generated_length: 0, finish_reason: "FINISH_REASON_UNSPECIFIED", token_ids: [], logprobs: [], cached_tokens: 0 };
}

async function collectJob(state: GrpcServiceState, job: GenerateJob, signal: AbortSignal, clientId: string, firstSample: number): Promise<WireResponse[]> {
  const out = Array.from({ length: job.sampling.n ?? 1 }, emptyResponse);
  for await (const { delta, usage } of runJob(state, job, signal, clientId, firstSample)) {
    const r = out[delta.index]!;
    r.generated_text += delta.text;
    r.token_ids.push(...delta.tokenIds);
    if (delta.logprobs) r.logprobs.push(...delta.logprobs.map(logprobToWire));
    if (delta.cachedTokens !== undefined) r.cached_tokens = delta.cachedTokens;
    if (delta.finishReason) Object.assign(r, { finish_reason: finishToWire(delta.finishReason) }, stopReasonToWire(delta.stopReason));
    if (usage) Object.assign(r, { prompt_length: usage.promptLength, generated_length: usage.generatedLength });
  }
  return out;
}

/** Waits until the stream can take more (or the call is gone). */
function drained(call: ServerWritableStream<unknown, unknown>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("cancelled", done);
      resolve();
    };
    call.once("drain", done);
    call.once("cancelled", done);
  });
}

/**
 * One Generate(Stream) call's admission: the client's cancel aborts `controller`; admit() checks
 * the key, model and request id, takes a --max-queue place, reads the prompts and lists the call
 * for Abort; release() gives back what admit() took (whatever it got to), once.
 */
class CallAdmission {
  readonly controller = new AbortController();
  release: () => void = () => {};

  constructor(call: { on(event: "cancelled", f: () => void): unknown }) {
    call.on("cancelled", () => this.controller.abort());
  }

  async admit(state: GrpcServiceState, call: { metadata: Parameters<GrpcServiceState["authorize"]>[0] },
    req: { model: string; request_id: string; params?: Parameters<typeof readJobs>[1] },
    prompts: Parameters<typeof readJobs>[0]): Promise<GenerateJob[]> {
    state.authorize(call.metadata);
    checkModel(req.model, state.servedModelName);
    checkRequestId(req.request_id);
    const leave = state.admit(); // --max-queue, before any work (with HTTP's requests under `fastgen serve`)
    this.release = leave;
    const jobs = await readJobs(prompts, req.params, state);
    const unlist = state.requests.register(req.request_id, this.controller);
    this.release = () => (unlist(), leave());
    return jobs;
  }

  /** Stops what is still running (a no-op once all finished) and releases. */
  end(): void {
    this.controller.abort();
    this.release();
  }
}

/** The Generate handler. */
export async function handleGenerate(
  state: GrpcServiceState,
  call: ServerUnaryCall<WireGenerateRequest, WireGenerateReply>,
  callback: sendUnaryData<Partial<WireGenerateReply>>,
): Promise<void> {
  const req = call.request;
  const a = new CallAdmission(call);
  try {
    const jobs = await a.admit(state, call, req, req.prompts.map((prompt, i) => ({ field: `prompts[${i}]`, prompt })));
    // fair share: prompt j's samples count after the earlier prompts' (j * n)
    const results = await Promise.all(jobs.map((job, j) => collectJob(state, job, a.controller.signal, req.request_id, j * (job.sampling.n ?? 1))));
    callback(null, { responses: results.flat() });
  } catch (e) {
    callback(toServiceError(e));
  } finally {
    a.end(); // stops the other prompts when one failed
  }
}

/** The GenerateStream handler. */
export async function handleGenerateStream(
  state: GrpcServiceState,
  call: ServerWritableStream<WireGenerateStreamRequest, Partial<WireGenerateDelta>>,
): Promise<void> {
  const req = call.request;
  const a = new CallAdmission(call);
  try {
    const [job] = await a.admit(state, call, req, [{ field: "prompt", prompt: req.prompt }]);
    await signalAccepted(call); // from here a lost stream means this replica died holding the request
    for await (const { delta, usage } of runJob(state, job!, a.controller.signal, req.request_id, req.first_sample ?? 0)) {
      if (call.cancelled) break;
      if (!call.write(deltaToWire(delta, usage))) await drained(call);
    }
    if (!call.cancelled) call.end();
  } catch (e) {
    if (!call.cancelled) call.emit("error", toServiceError(e));
  } finally {
    a.end();
  }
}
