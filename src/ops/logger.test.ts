import { describe, expect, test } from "bun:test";
import { Logger, errorFields } from "./logger";

const at = () => new Date("2025-01-02T03:04:05.678Z");

function capture(format: "text" | "json") {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, logger: new Logger(format, { out: (l) => out.push(l), err: (l) => err.push(l) }, at) };
}

describe("Logger", () => {
  test("json: one object per line with ts, level, msg and the defined fields", () => {
    const { out, err, logger } = capture("json");
    logger.out("request", { request_id: "abc", status: 200, ttft_ms: 1.5, skipped: undefined });
    logger.warn("careful", { n: 2 });
    expect(out.map((l) => JSON.parse(l))).toEqual([{ ts: "2025-01-02T03:04:05.678Z", level: "info", msg: "request", request_id: "abc", status: 200, ttft_ms: 1.5 }]);
    expect(JSON.parse(err[0]!)).toMatchObject({ level: "warn", msg: "careful", n: 2 });
    expect(out[0]).not.toContain("\n");
  });

  test("text: fastgen: prefix, key=value, quoted when not one word", () => {
    const { out, err, logger } = capture("text");
    logger.out("request", { path: "/v1/completions", status: 200, finish_reason: "stop,length", note: "two words" });
    logger.error("boom", { n: 1 });
    expect(out[0]).toBe('fastgen: request path=/v1/completions status=200 finish_reason=stop,length note="two words"');
    expect(err[0]).toBe("fastgen: error: boom n=1");
  });

  test("errors: the stack stays in the log, except for API errors already answered", () => {
    const plain = errorFields(new TypeError("x is undefined"));
    expect(plain).toMatchObject({ error: "x is undefined", error_name: "TypeError" });
    expect(String(plain.stack)).toContain("logger.test.ts");
    const api = Object.assign(new Error("bad"), { name: "ApiError" });
    expect(errorFields(api).stack).toBeUndefined();
    const { err, logger } = capture("json");
    logger.error("failed", plain);
    expect(JSON.parse(err[0]!).stack).toContain("TypeError");
  });
});
