import { describe } from "bun:test";
import { POLICY_NAMES } from "../../src/engine/scheduler";
import { speculativeSuite } from "./speculativeConformance";

for (const policy of POLICY_NAMES) describe(`speculative conformance: ${policy}`, () => speculativeSuite(policy));
