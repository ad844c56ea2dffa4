import { describe } from "bun:test";
import { POLICY_NAMES } from "../../src/engine/scheduler";
import { conformanceSuite } from "./conformance";

for (const policy of POLICY_NAMES) describe(`conformance: ${policy}`, () => conformanceSuite(policy));
