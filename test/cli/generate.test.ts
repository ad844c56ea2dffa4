// `fastgen generate` as a user runs it: a subprocess, JSON on stdout, one-line errors.
import { describe, expect, test } from "bun:test";
import { join } from "node:path";

const CLI = join(import.meta.dir, "..", "..", "src", "cli.ts");
const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");

function run(...args: string[]) {
  const p = Bun.spawnSync([process.execPath, CLI, ...args], { stdout: "pipe", stderr: "pipe" });
  return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
}

describe("fastgen generate", () => {
  test("the embedded demo model runs with no --model", () => {
    const r = run("generate", "--prompt", "The module", "--max-tokens", "8", "--ignore-eos", "--json");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.token_ids).toHaveLength(8);
    expect(typeof out.text).toBe("string");
    expect(out.finish_reason).toBe("length");
    expect(out.logprobs).toBeUndefined();
  });

  test("several prompts run together and come back in flag order, with logprobs", () => {
    const ref = JSON.parse(require("node:fs").readFileSync(join(FIXTURE, "reference.json"), "utf8"));
    const [a, b] = ref.prompts;
    const r = run("generate", "--model", FIXTURE, "--prompt-ids", a.prompt_ids.join(","), "--prompt", b.text,
      "--max-tokens", "12", "--ignore-eos", "--logprobs", "3", "--json");
    expect(r.code).toBe(0);
    const { results } = JSON.parse(r.stdout);
    expect(results).toHaveLength(2);
    expect(results[0].token_ids).toEqual(a.greedy_ids);
    expect(results[1].token_ids).toEqual(b.greedy_ids);
    for (const res of results) {
      expect(res.logprobs).toHaveLength(12);
      for (const step of res.logprobs) {
        expect(step).toHaveLength(3);
        expect(step[0][1]).toBeGreaterThanOrEqual(step[1][1]);
      }
    }
  });

  test("the same seed gives the same sampled tokens", () => {
    const args = ["generate", "--model", FIXTURE, "--prompt", "Hello", "--max-tokens", "10", "--temperature", "1", "--seed", "7", "--ignore-eos", "--json"];
    const x = JSON.parse(run(...args).stdout), y = JSON.parse(run(...args).stdout);
    expect(x.token_ids).toEqual(y.token_ids);
  });

  test("a bad flag is a usage error (exit 2, one line)", () => {
    const r = run("generate", "--prompt", "x", "--max-tokens", "zero");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^fastgen: --max-tokens must be an integer/);
    expect(run("generate").code).toBe(2);
  });

  test("a missing model is a clear error, not a stack trace", () => {
    const r = run("generate", "--model", "/nonexistent/model", "--prompt", "x");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/does not exist/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  test("a prompt longer than the context is refused", () => {
    const ids = Array.from({ length: 300 }, () => 5).join(",");
    const r = run("generate", "--model", FIXTURE, "--prompt-ids", ids);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/exceeds the model's context of 256/);
  });

  test("--help lists the flags", () => {
    const r = run("generate", "--help");
    expect(r.code).toBe(0);
    for (const flag of ["--prompt-ids", "--logprobs", "--max-batch-tokens", "--policy", "--kv-blocks"]) expect(r.stdout).toContain(flag);
  });
});
