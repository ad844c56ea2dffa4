/**
 * Workloads that repeat themselves, for prefix caching (issue #16):
 *
 *   shared-prefix    every prompt = one long prefix (the same tokens) + a short suffix of its own
 *   chat-multiturn   conversations of 4-8 turns behind one shared system prompt; turn t re-sends
 *                    the system prompt and the whole history (user turns and replies) before its
 *                    new user turn, as a chat client does
 *
 * A prompt is a list of segments of the prompt pool (cut cyclically), so equal segments are
 * equal tokens. Replies in the history are pool text of the turn's generation length (the load
 * generator does not re-send what the server answered), so a turn can hit the cache for the system
 * prompt and the history up to the previous user turn. Requests are conversation-major, each
 * conversation's turns in order; lengths are normal draws as in makeRequests (30% deviation).
 */
import type { RequestSpec, WorkloadSpec } from "./workload";
import { mulberry32, normal } from "./workload";

/** How a workload repeats itself. */
export interface PrefixShape {
  kind: "shared-prefix" | "chat-multiturn";
  /** Tokens of the shared prefix (the system prompt). */
  prefixTokens: number;
  /** Turns per conversation (chat-multiturn). */
  minTurns?: number;
  maxTurns?: number;
  /**
   * chat-multiturn with --sessions: a client is a user, sending one conversation's turns one
   * after another, each once the reply to the last has come (without it, clients take requests
   * in order, so a conversation's turns may run at once on different clients).
   */
  sessions?: boolean;
}

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

/** The first `count` requests of a prefix workload (`w.prefix` set); lengths fit `maxModelLen`. */
export function makePrefixRequests(w: WorkloadSpec & { prefix: PrefixShape }, count: number, poolSize: number, maxModelLen?: number): RequestSpec[] {
  const rng = mulberry32(w.seed);
  const ctx = maxModelLen ?? Infinity;
  const draw = (mean: number) => Math.max(1, Math.round(mean + w.deviation * mean * normal(rng)));
  const prefix: [number, number] = [0, w.prefix.prefixTokens];
  const out: RequestSpec[] = [];
  let conversation = 0;
  const push = (segments: [number, number][], genTokens: number) => {
    const promptTokens = segments.reduce((s, [, n]) => s + n, 0);
    out.push({ index: out.length, promptTokens, genTokens, poolOffset: segments[0]![0], segments });
    if (w.prefix.sessions) out[out.length - 1]!.session = conversation;
  };
  while (out.length < count) {
    if (w.prefix.kind === "shared-prefix") {
      const gen = clamp(draw(w.meanGen), 1, Math.max(1, ctx - prefix[1] - 1));
      const suffix = clamp(draw(w.meanPrompt), 1, Math.max(1, Math.min(w.maxPrompt, ctx - gen) - prefix[1]));
      push([prefix, [Math.floor(rng() * poolSize), suffix]], gen);
      continue;
    }
    const lo = w.prefix.minTurns ?? 4;
    const turns = lo + Math.floor(rng() * ((w.prefix.maxTurns ?? 8) - lo + 1));
    const history: [number, number][] = [prefix];
    let length = prefix[1];
    for (let t = 0; t < turns && out.length < count; t++) {
      const user: [number, number] = [Math.floor(rng() * poolSize), draw(w.meanPrompt)];
      const gen = draw(w.meanGen);
      // The conversation ends where the next turn would not fit the context.
      if (length + user[1] + gen > Math.min(ctx, w.maxPrompt + gen)) break;
      push([...history, user], gen);
      history.push(user, [Math.floor(rng() * poolSize), gen]);
      length += user[1] + gen;
    }
    conversation++;
  }
  return out;
}

/** The prompt ids of a request: its segments of the pool, cut cyclically and joined. */
export function segmentIds(pool: readonly number[], segments: readonly [number, number][]): number[] {
  const out: number[] = [];
  for (const [offset, length] of segments) for (let j = 0; j < length; j++) out.push(pool[(offset + j) % pool.length]!);
  return out;
}
