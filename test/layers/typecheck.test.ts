// The whole TypeScript tree type-checks (tsconfig.json: src, test, bench, scripts; strict, with
// noUncheckedIndexedAccess), so a wrong type fails CI instead of waiting for a run that reaches it.
import { expect, test } from "bun:test";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

test("tsc --noEmit reports no errors", () => {
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const run = Bun.spawnSync([process.execPath, tsc, "-p", ROOT], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  const out = `${run.stdout.toString()}${run.stderr.toString()}`;
  const errors = out.split("\n").filter((l) => l.includes("error TS"));
  expect(errors).toEqual([]);
  expect(run.exitCode).toBe(0);
}, 120_000);
