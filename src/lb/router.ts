/**
 * Routing policies: which healthy replica takes the next prompt.
 *   least-outstanding  fewest queued + running tokens (ties: fewest requests, then in turn)
 *   round-robin        each in turn
 * Both keep a cursor, so equal replicas take turns instead of the first one taking everything.
 */
import type { Replica } from "./replica";

export const ROUTING_POLICIES = ["least-outstanding", "round-robin"] as const;
export type RoutingPolicy = (typeof ROUTING_POLICIES)[number];

export class Router {
  private cursor = 0;

  constructor(readonly policy: RoutingPolicy = "least-outstanding") {}

  /** Picks one of `candidates` (all healthy, in a fixed order); undefined when there are none. */
  pick(candidates: readonly Replica[]): Replica | undefined {
    const count = candidates.length;
    if (count === 0) return undefined;
    const start = this.cursor++ % count;
    if (this.policy === "round-robin") return candidates[start];
    let best: Replica | undefined;
    for (let k = 0; k < count; k++) {
      const r = candidates[(start + k) % count]!;
      if (!best || r.load < best.load || (r.load === best.load && r.work.requests < best.work.requests)) best = r;
    }
    return best;
  }
}
