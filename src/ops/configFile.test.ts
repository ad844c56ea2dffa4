import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "./engineFlags";
import { SERVE_FLAG_SPEC } from "../cli/serve";
import type { FlagValues } from "./configFile";
import { configValues, mergeConfigFile } from "./configFile";

const dir = mkdtempSync(join(tmpdir(), "fastgen-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
const errorOf = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e as Error;
  }
  throw new Error("did not throw");
};

describe("--config FILE", () => {
  test("keys are flag names; numbers and lists become flag values", () => {
    const v = configValues("c.json", { port: 8001, "max-batch-tokens": 768, "log-format": "json", replica: ["a:1", "b:2"] }, SERVE_FLAG_SPEC);
    expect(v).toEqual({ port: "8001", "max-batch-tokens": "768", "log-format": "json", replica: ["a:1", "b:2"] });
  });

  test("flags on the command line override the file", () => {
    const p = file("over.json", JSON.stringify({ port: 8001, "max-queue": 4, model: "/m" }));
    expect(mergeConfigFile<FlagValues>({ config: p, port: "9000" }, SERVE_FLAG_SPEC)).toEqual({ port: "9000", "max-queue": "4", model: "/m" });
    expect(mergeConfigFile({ port: "9000" }, SERVE_FLAG_SPEC)).toEqual({ port: "9000" });
  });

  test.each([
    [{ prot: 1 }, 'unknown key "prot"'],
    [{ maxBatchTokens: 1 }, 'did you mean "max-batch-tokens"'],
    [{ config: "other.json" }, 'unknown key "config"'],
    [{ help: true }, 'unknown key "help"'],
    [{ port: { n: 1 } }, '"port" must be a string or a number'],
    [{ port: [1, 2] }, '"port" takes one value'],
    [{ port: Number.MAX_VALUE * 2 }, "must be a string or a number"],
    [[1, 2], "one JSON object"],
    [null, "one JSON object"],
  ])("%j is an error", (config, message) => {
    const err = errorOf(() => configValues("c.json", config, SERVE_FLAG_SPEC));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain(message);
    expect(err.message).toContain("c.json");
  });

  test("a missing file or bad JSON is a usage error naming the file", () => {
    expect(errorOf(() => mergeConfigFile({ config: join(dir, "nope.json") }, SERVE_FLAG_SPEC)).message).toContain("nope.json");
    const bad = file("bad.json", "{ port: 1 }");
    const err = errorOf(() => mergeConfigFile({ config: bad }, SERVE_FLAG_SPEC));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toContain("not valid JSON");
  });
});
