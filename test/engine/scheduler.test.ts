import { describe } from "bun:test";
import { POLICY_NAMES, getPolicy } from "../../src/engine/scheduler";
import { conformanceSuite, fairnessSuite } from "./conformance";

for (const policy of POLICY_NAMES) {
  describe(`conformance: ${policy}`, () => {
    conformanceSuite(policy);
    fairnessSuite(policy, getPolicy(policy).neverSkipsDecodes);
  });
}
