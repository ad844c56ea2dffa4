// A model named by hub id, end to end: downloaded through a fake hub and loaded by the loader
// `fastgen generate` uses; and from a prepared hub cache through `fastgen generate` and
// `fastgen serve` (subprocesses, HF_HUB_OFFLINE=1), pipeline(), and serve() with a replica. The
// name served is the id without its revision unless --served-model-name says otherwise.
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve } from "../../src/deploy/serve";
import { EngineCore } from "../../src/engine/engineCore";
import { resolveModels } from "../../src/engine/resolveModels";
import { runToCompletion } from "../../src/engine/runToCompletion";
import { pipeline } from "../../src/index";
import { ROOT } from "../reliability/helpers";
import { COMMIT_A, FIXTURE, fakeHub, placeInCache } from "./hubFixture";

const CLI = join(ROOT, "src", "cli.ts");
const REPO = "fastgen/llama-gqa";
const ref = JSON.parse(readFileSync(join(FIXTURE, "reference.json"), "utf8")) as { prompts: { prompt_ids: number[]; greedy_ids: number[] }[] };
const PROMPT = ref.prompts[0]!;
const tmp = mkdtempSync(join(tmpdir(), "fastgen-hubserve-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// One prepared cache for the offline runs: main and a tag at one commit.
const CACHE = join(tmp, "cache");
placeInCache(CACHE, REPO, COMMIT_A, ["main", "v1"]);
const OFFLINE_ENV = { ...process.env, HF_HUB_CACHE: CACHE, HF_HUB_OFFLINE: "1", FASTGEN_API_KEY: undefined };

/** Greedy tokens of the reference prompt from a loaded core. */
function greedy(core: EngineCore): number[] {
  const [out] = runToCompletion(core, [{ promptIds: PROMPT.prompt_ids }], { maxTokens: PROMPT.greedy_ids.length, temperature: 0, ignoreEos: true });
  return out!.tokenIds;
}

test("downloaded through the fake hub, then loaded as `fastgen generate` loads it: the reference tokens", async () => {
  const cache = join(tmp, "downloaded");
  const hub = fakeHub(REPO, COMMIT_A);
  const { model, options } = await resolveModels(REPO, { kvBlocks: 32, threads: 1 }, { env: { HF_HUB_CACHE: cache }, fetch: hub.fetch, log: () => {} });
  expect(model.dir).toBe(join(cache, "models--fastgen--llama-gqa", "snapshots", COMMIT_A));
  const core = await EngineCore.load(model.dir, options);
  try {
    expect(core.modelName).toBe(REPO);
    expect(greedy(core)).toEqual(PROMPT.greedy_ids);
  } finally {
    core.destroy();
  }
});

describe("fastgen generate", () => {
  const run = (env: Record<string, string | undefined>, ...args: string[]) => {
    const p = Bun.spawnSync([process.execPath, CLI, "generate", "--threads", "1", "--kv-blocks", "32", ...args], { env, stdout: "pipe", stderr: "pipe" });
    return { code: p.exitCode, stdout: p.stdout.toString(), stderr: p.stderr.toString() };
  };
  const ids = ["--prompt-ids", PROMPT.prompt_ids.join(","), "--max-tokens", String(PROMPT.greedy_ids.length), "--ignore-eos", "--json"];

  test("--model org/name@tag from HF_HUB_CACHE, and from --download-dir", () => {
    const r = run(OFFLINE_ENV, "--model", `${REPO}@v1`, ...ids);
    expect(r.stderr).toBe("");
    expect(JSON.parse(r.stdout).token_ids).toEqual(PROMPT.greedy_ids);
    const d = run({ ...OFFLINE_ENV, HF_HUB_CACHE: join(tmp, "elsewhere") }, "--model", REPO, "--download-dir", CACHE, ...ids);
    expect(JSON.parse(d.stdout).token_ids).toEqual(PROMPT.greedy_ids);
  });

  test("a model in no place: one line naming the places searched, not a missing tokenizer.json", () => {
    const r = run(OFFLINE_ENV, "--model", "fastgen/absent", "--prompt", "x");
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toStartWith('fastgen: model "fastgen/absent" not found; searched: local directory');
    expect(r.stderr).toContain(`hub cache ${CACHE} (HF_HUB_CACHE): no ${join(CACHE, "models--fastgen--absent")}`);
    expect(r.stderr).toContain("download not attempted (HF_HUB_OFFLINE=1)");
    expect(r.stderr).not.toContain("tokenizer.json");
  });
});

describe("fastgen serve", () => {
  /** Serves until the ready line; returns the /v1/models ids and stops the server. */
  async function servedIds(...args: string[]): Promise<{ ready: string; ids: string[] }> {
    const proc = Bun.spawn([process.execPath, CLI, "serve", "--threads", "1", "--kv-blocks", "32", "--port", "0", ...args],
      { cwd: ROOT, env: OFFLINE_ENV, stdout: "pipe", stderr: "pipe" });
    try {
      let stdout = "";
      const reader = proc.stdout.getReader();
      while (!stdout.includes("\n")) {
        const { value, done } = await reader.read();
        if (done) throw new Error(`serve exited: ${await new Response(proc.stderr).text()}`);
        stdout += new TextDecoder().decode(value);
      }
      reader.releaseLock();
      const url = stdout.match(/ at (http:\/\/\S+)\/v1/)![1]!;
      const models = (await (await fetch(`${url}/v1/models`)).json()) as { data: { id: string }[] };
      return { ready: stdout, ids: models.data.map((m) => m.id) };
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }

  test("serves the id as typed, without @revision, not the snapshot's hash; --served-model-name overrides", async () => {
    const byId = await servedIds("--model", `${REPO}@${COMMIT_A.slice(0, 8)}`);
    expect(byId.ids).toEqual([REPO]);
    expect(byId.ready).toContain(`serving ${REPO} (`);
    expect((await servedIds("--model", REPO, "--served-model-name", "my-model")).ids).toEqual(["my-model"]);
  }, 60_000);
});

describe("the library API", () => {
  test("pipeline() takes an id; the hub options say where to look", async () => {
    const pipe = await pipeline(REPO, { kvBlocks: 32, threads: 1 }, { cacheDir: CACHE, env: { HF_HUB_OFFLINE: "1" } });
    try {
      expect(pipe.engine.modelName).toBe(REPO);
      const [out] = await pipe(["Hello"], { max_new_tokens: 2, ignore_eos: true });
      expect(out!.generated_length).toBe(2);
    } finally {
      await pipe.destroy();
    }
  });

  test("serve() with a replica: the replica loads the snapshot and reports the same name", async () => {
    const h = await serve(`${REPO}@v1`, {
      replicas: 1, port: 0, http: 0, engine: { threads: 1, kvBlocks: 32 }, hub: { env: OFFLINE_ENV }, log: () => {}, output: () => {},
    });
    try {
      expect(h.processes).toHaveLength(1);
      const models = (await (await fetch(`${h.httpUrl}/v1/models`)).json()) as { data: { id: string }[] };
      expect(models.data.map((m) => m.id)).toEqual([REPO]);
    } finally {
      await h.terminate();
    }
  }, 60_000);
});
