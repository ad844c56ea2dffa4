/**
 * One sweep point: `clients` concurrent clients, each sending its next request as soon as the
 * previous one ends (a closed loop, as in DeepSpeed-FastGen's benchmark), until the point's
 * request list is used up. Requests are handed out in order, so request i is the same
 * wherever it runs; requests of one session (chat-multiturn --sessions) go to one client together.
 */
import type { RequestRecord } from "./metrics";
import type { StreamTiming } from "./sseClient";
import type { RequestSpec } from "./workload";

/** A request ready to send. */
export interface PreparedRequest {
  spec: RequestSpec;
  prompt: number[] | string;
}


/** A record from a timed stream; times become seconds since the point started (t0Ms). */
export function toRecord(t: StreamTiming, spec: RequestSpec, client: number, t0Ms: number, promptSent: number): RequestRecord {
  const rec: RequestRecord = {
    index: spec.index,
    client,
    promptTokens: t.promptTokens ?? promptSent,
    genTokens: spec.genTokens,
    tokensOut: t.tokenMs.length,
    startS: round((t.startMs - t0Ms) / 1000),
    ttftS: t.tokenMs.length > 0 ? round((t.tokenMs[0]! - t.startMs) / 1000) : null,
    tokenTimesS: t.tokenMs.map((ms) => round((ms - t.startMs) / 1000)),
    e2eS: round((t.endMs - t.startMs) / 1000),
  };
  if (t.error !== undefined) rec.error = t.error;
  if (t.cachedTokens !== undefined) rec.cachedTokens = t.cachedTokens;
  return rec;
}

/** Microsecond resolution keeps result files small without losing anything measurable. */
const round = (s: number) => Math.round(s * 1e6) / 1e6;

/** Runs `requests` from `clients` closed-loop clients through `send`; the records come back in request order. */
export async function runPoint(
  clients: number,
  requests: readonly PreparedRequest[],
  send: (req: PreparedRequest) => Promise<StreamTiming>,
  onDone?: (rec: RequestRecord) => void,
): Promise<RequestRecord[]> {
  const records = new Array<RequestRecord>(requests.length);
  // Sessions (chat-multiturn --sessions): a client takes a whole conversation and runs its turns in order.
  const groups: PreparedRequest[][] = [];
  for (const req of requests) {
    const last = groups.at(-1);
    if (req.spec.session !== undefined && last?.[0]!.spec.session === req.spec.session) last.push(req);
    else groups.push([req]);
  }
  let next = 0;
  const t0 = performance.now();
  const client = async (id: number) => {
    while (next < groups.length) {
      for (const req of groups[next++]!) {
        const timing = await send(req);
        const promptSent = typeof req.prompt === "string" ? req.spec.promptTokens : req.prompt.length;
        const rec = toRecord(timing, req.spec, id, t0, promptSent);
        records[req.spec.index - requests[0]!.spec.index] = rec;
        onDone?.(rec);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, id) => client(id)));
  return records;
}
