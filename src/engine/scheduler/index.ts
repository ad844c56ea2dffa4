/**
 * The scheduler: pick a policy by name, plan a pass with schedule() (invariants asserted),
 * apply it with commitPlan().
 */
import { assertPlan } from "./invariants";
import { orcaPolicy } from "./orca";
import { prefillFirstPolicy } from "./prefillFirst";
import { splitFusePolicy } from "./splitfuse";
import type { Plan, PolicyName, SchedulerConfig, SchedulerInput, SchedulerPolicy } from "./types";

export type { Plan, PlanEntry, PolicyName, Rejection, SchedulerConfig, SchedulerInput, SchedulerPolicy } from "./types";
export { POLICY_NAMES, ownTokens } from "./types";
export { PlanInvariantError, assertPlan } from "./invariants";
export { commitPlan } from "./commit";

const POLICIES: Record<PolicyName, SchedulerPolicy> = {
  splitfuse: splitFusePolicy,
  "prefill-first": prefillFirstPolicy,
  orca: orcaPolicy,
};

/** The policy called `name`. */
export function getPolicy(name: PolicyName): SchedulerPolicy {
  const p = POLICIES[name];
  if (p === undefined) throw new Error(`unknown scheduling policy "${name}"`);
  return p;
}

/** Checks a config once, at engine start. */
export function validateSchedulerConfig(config: SchedulerConfig): void {
  if (!Number.isInteger(config.tokenBudget) || config.tokenBudget < 1) throw new Error(`token budget must be >= 1, got ${config.tokenBudget}`);
  if (!Number.isInteger(config.maxSeqs) || config.maxSeqs < 1) throw new Error(`max sequences must be >= 1, got ${config.maxSeqs}`);
  const d = config.specDisableBatchSize;
  if (d !== undefined && !(d >= 1)) throw new Error(`speculative disable batch size must be >= 1, got ${d}`);
}

/** Plans one pass with `policy` and asserts the plan's invariants (throws on violation). */
export function schedule(policy: SchedulerPolicy, input: SchedulerInput, config: SchedulerConfig): Plan {
  const plan = policy.plan(input, config);
  assertPlan(plan, input, config, policy);
  return plan;
}
