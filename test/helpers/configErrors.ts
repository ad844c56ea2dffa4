/** configToSpec(config) must throw a ModelConfigError whose message matches `pattern`. */
import { expect } from "bun:test";
import { configToSpec } from "../../src/model/config";
import { ModelConfigError } from "../../src/model/configFields";

export function expectConfigError(config: object, pattern: RegExp): void {
  let err: unknown;
  try {
    configToSpec(config);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(ModelConfigError);
  expect((err as Error).message).toMatch(pattern);
}
