/**
 * Routing policies: which healthy replica takes the next prompt.
 *   cache-aware        least (outstanding tokens - prompt tokens it holds in its prefix cache)
 *   least-outstanding  fewest queued + running tokens
 *   round-robin        each in turn
 * Ties: fewest requests, then in turn; the cursor keeps equal replicas taking turns instead of
 * the first one taking everything.
 *
 * Why cache-aware scores `load - cached`: load counts the tokens a replica still has to pass
 * through its engine (a request the balancer sent counts its prompt less the tokens its route
 * expected cached, plus its generation). Under SplitFuse a prompt token and a decode token take
 * one slot each of a pass's token budget, so a cached token is one slot of work not done. The
 * score is then the replica's work once it has this request (less the prompt, the same
 * everywhere), which least-outstanding minimizes too: where no replica holds the prefix it IS
 * least-outstanding. A replica holding the prefix wins until its load exceeds another's by the
 * cached tokens; past that the prompt goes elsewhere, is computed there, and from then on both
 * hold it, so a hot prefix spreads to as many replicas as its load needs. The imbalance accepted
 * is bounded by one prompt's length (at most the context length). Dynamo's KV router scores the
 * same sum (prefill blocks still to compute + active blocks), with a weight on the first.
 */
import type { Replica } from "./replica";
import type { RouteQuery } from "./promptChain";
import { PromptChain } from "./promptChain";

export const ROUTING_POLICIES = ["cache-aware", "least-outstanding", "round-robin"] as const;
export type RoutingPolicy = (typeof ROUTING_POLICIES)[number];

/**
 * The policy when none is asked for: cache-aware where the replicas cache prefixes (the default),
 * least-outstanding where they were started without (no events to follow, no prompts to hash).
 * A replica that publishes nothing leaves cache-aware equal to least-outstanding, so the choice
 * is safe for remote replicas whose flags this front end cannot see.
 */
export function defaultRoutingPolicy(enablePrefixCaching: boolean | undefined): RoutingPolicy {
  return enablePrefixCaching === false ? "least-outstanding" : "cache-aware";
}

/** A routing decision: the replica, and the prompt tokens it is expected to find cached. */
export interface Route {
  replica: Replica;
  cachedTokens: number;
}

export class Router {
  private cursor = 0;

  constructor(readonly policy: RoutingPolicy = "least-outstanding") {}

  /**
   * Picks one of `candidates` (all healthy, in a fixed order) for the prompt `query` describes;
   * undefined when there are none.
   */
  pick(candidates: readonly Replica[], query?: RouteQuery): Route | undefined {
    const count = candidates.length;
    if (count === 0) return undefined;
    const start = this.cursor++ % count;
    if (this.policy === "round-robin") return { replica: candidates[start]!, cachedTokens: 0 };
    const chain = this.policy === "cache-aware" && query ? new PromptChain(query) : null;
    let best: Route | undefined;
    let bestScore = Infinity;
    for (let k = 0; k < count; k++) {
      const r = candidates[(start + k) % count]!;
      const cachedTokens = chain ? chain.cachedTokens(r.cache) : 0;
      const score = r.load - cachedTokens;
      if (!best || score < bestScore || (score === bestScore && r.work.requests < best.replica.work.requests)) {
        best = { replica: r, cachedTokens };
        bestScore = score;
      }
    }
    return best;
  }
}
