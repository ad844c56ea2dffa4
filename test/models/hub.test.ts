// --model as a Hugging Face id: parsed, looked up in a hub cache laid out as huggingface_hub
// writes it (in temporary HOME / HF_HOME / HF_HUB_CACHE directories), downloaded through a fake
// fetch into that same layout with the token from the environment or `hf auth login`'s file,
// refused without the network, and reported with every place looked in.
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, realpathSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveModels } from "../../src/engine/resolveModels";
import { ModelNotFoundError } from "../../src/model/errors";
import { type HubOptions, resolveModel } from "../../src/model/hub";
import { hubCacheDir, parseHubId, repoFolder } from "../../src/model/hubCache";
import { isEngineFile } from "../../src/model/hubDownload";
import { offlineSwitch } from "../../src/model/hubEnv";
import { COMMIT_A, COMMIT_B, FIXTURE, MODEL_FILES, UNWANTED, fakeHub, placeInCache } from "./hubFixture";

const REPO = "fastgen/llama-gqa";
const root = mkdtempSync(join(tmpdir(), "fastgen-hub-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
/** A fresh empty directory. */
const fresh = (name = "d") => {
  const d = join(root, `${name}${n++}`);
  mkdirSync(d, { recursive: true });
  return d;
};
/** A fetch that fails the test if anything calls it. */
const noNetwork = (() => {
  throw new Error("the network was used");
}) as unknown as typeof fetch;

/** Options that read only `env` and can never reach the network. */
const offline = (env: Record<string, string>): HubOptions => ({ env: { HOME: fresh("home"), ...env }, fetch: noNetwork, log: () => {} });

describe("parseHubId", () => {
  test("org/name, a bare name and @revision; main by default", () => {
    expect(parseHubId("Qwen/Qwen2.5-7B-Instruct")).toEqual({ repo: "Qwen/Qwen2.5-7B-Instruct", revision: "main" });
    expect(parseHubId("org/name@v1.0")).toEqual({ repo: "org/name", revision: "v1.0" });
    expect(parseHubId(`org/name@${COMMIT_A}`)).toEqual({ repo: "org/name", revision: COMMIT_A });
    expect(parseHubId("gpt2")).toEqual({ repo: "gpt2", revision: "main" });
    expect(parseHubId("org/pr@refs/pr/1")).toEqual({ repo: "org/pr", revision: "refs/pr/1" });
  });

  test("what the hub refuses is no id", () => {
    for (const bad of ["a/b/c", "org/na--me", "org/-name", "org/name.", "org/../x", "org/name@", "org/name@../x", "org/na me", ""])
      expect(parseHubId(bad)).toBeNull();
  });
});

describe("the hub cache directory", () => {
  test("--download-dir, then HF_HUB_CACHE, then $HF_HOME/hub, then ~/.cache/huggingface/hub", () => {
    const env = { HOME: "/h", HF_HOME: "/hf", HF_HUB_CACHE: "/cache" };
    expect(hubCacheDir(env, "/dl")).toEqual({ dir: "/dl", source: "--download-dir" });
    expect(hubCacheDir(env).dir).toBe("/cache");
    expect(hubCacheDir({ HOME: "/h", HF_HOME: "/hf" }).dir).toBe("/hf/hub");
    expect(hubCacheDir({ HOME: "/h", XDG_CACHE_HOME: "/xdg" }).dir).toBe("/xdg/huggingface/hub");
    expect(hubCacheDir({ HOME: "/h" })).toEqual({ dir: "/h/.cache/huggingface/hub", source: "default" });
  });
});

describe("resolving an id from the cache, offline", () => {
  const cache = fresh("cache");
  const snapA = placeInCache(cache, REPO, COMMIT_A, ["main", "v1"]);
  const snapB = placeInCache(cache, REPO, COMMIT_B, ["v2"]);
  const opts = offline({ HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" });

  test("refs/main by default, a tag through refs/, a pinned commit, a unique commit prefix", async () => {
    expect(await resolveModel(REPO, opts)).toEqual({ dir: snapA, name: REPO });
    expect((await resolveModel(`${REPO}@v1`, opts)).dir).toBe(snapA);
    expect((await resolveModel(`${REPO}@v2`, opts)).dir).toBe(snapB);
    expect((await resolveModel(`${REPO}@${COMMIT_B}`, opts)).dir).toBe(snapB);
    expect((await resolveModel(`${REPO}@${COMMIT_B.slice(0, 10)}`, opts)).dir).toBe(snapB);
  });

  test("the served name is the id as typed, without its revision", async () => {
    for (const spec of [REPO, `${REPO}@v2`, `${REPO}@${COMMIT_B.slice(0, 7)}`]) expect((await resolveModel(spec, opts)).name).toBe(REPO);
  });

  test("snapshot files are links into blobs/", () => {
    expect(lstatSync(join(snapA, "config.json")).isSymbolicLink()).toBe(true);
    expect(realpathSync(join(snapA, "config.json")).startsWith(realpathSync(join(repoFolder(cache, REPO), "blobs")))).toBe(true);
  });

  test("a prefix two snapshots share is refused, naming both", async () => {
    const twoCache = fresh("cache");
    placeInCache(twoCache, REPO, "c".repeat(40));
    placeInCache(twoCache, REPO, "c".repeat(39) + "d");
    const err = await resolveModel(`${REPO}@cccc`, offline({ HF_HUB_CACHE: twoCache })).catch((e) => e);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect(err.message).toContain("matches 2 snapshots");
    expect(err.message).toContain("download not attempted (give more of the commit hash)");
  });

  test("HF_HUB_CACHE wins over HF_HOME; HF_HOME over ~/.cache; a temporary HOME is the default", async () => {
    const hfHome = fresh("hfhome");
    placeInCache(join(hfHome, "hub"), REPO, COMMIT_B, ["main"]);
    const home = fresh("home");
    const homeSnap = placeInCache(join(home, ".cache", "huggingface", "hub"), REPO, COMMIT_A, ["main"]);
    const base = { HOME: home, HF_HUB_OFFLINE: "1" };
    const at = async (env: Record<string, string>) => (await resolveModel(REPO, { env, fetch: noNetwork })).dir;
    expect(await at({ ...base, HF_HOME: hfHome, HF_HUB_CACHE: cache })).toBe(snapA);
    expect(await at({ ...base, HF_HOME: hfHome })).toBe(join(repoFolder(join(hfHome, "hub"), REPO), "snapshots", COMMIT_B));
    expect(await at(base)).toBe(homeSnap);
    // --download-dir wins over all of them.
    expect((await resolveModel(`${REPO}@v2`, { env: { ...base, HF_HUB_CACHE: "/nowhere" }, cacheDir: cache, fetch: noNetwork })).dir).toBe(snapB);
  });

  test("a local directory that exists wins over the id it spells", async () => {
    const cwd = fresh("cwd");
    const local = join(cwd, "fastgen", "llama-gqa");
    mkdirSync(local, { recursive: true });
    const before = process.cwd();
    process.chdir(cwd);
    try {
      expect(await resolveModel(REPO, opts)).toEqual({ dir: local, name: "llama-gqa" });
    } finally {
      process.chdir(before);
    }
  });

  test("/, ./, ../ and ~ are always paths, existing or not", async () => {
    expect((await resolveModel("./fastgen/llama-gqa", opts)).dir).toBe(join(process.cwd(), "fastgen", "llama-gqa"));
    expect((await resolveModel("/no/such/dir", opts)).dir).toBe("/no/such/dir");
    expect((await resolveModel("~/models/x", { ...opts, env: { HOME: "/home/u" } })).dir).toBe("/home/u/models/x");
    expect((await resolveModel(FIXTURE, opts)).name).toBe("llama-gqa");
  });
});

describe("a model that is not there", () => {
  test("HF_HUB_OFFLINE=1: no request at all; the error lists the local path, the cache and why no download", async () => {
    const cache = fresh("cache");
    const hub = fakeHub(REPO, COMMIT_A);
    const err = await resolveModel("fastgen/absent@v3", { env: { HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" }, fetch: hub.fetch }).catch((e) => e);
    expect(hub.calls).toEqual([]);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect(err.searched).toEqual([
      `local directory ${join(process.cwd(), "fastgen", "absent@v3")}: none`,
      `hub cache ${cache} (HF_HUB_CACHE): no ${join(cache, "models--fastgen--absent")}`,
      "download not attempted (HF_HUB_OFFLINE=1)",
    ]);
    expect(err.message).toStartWith('model "fastgen/absent@v3" not found; searched: local directory');
  });

  test("TRANSFORMERS_OFFLINE=yes is HF_HUB_OFFLINE: no request at all", async () => {
    const hub = fakeHub(REPO, COMMIT_A);
    const env = { HOME: fresh("home"), HF_HUB_CACHE: fresh("cache"), TRANSFORMERS_OFFLINE: "yes" };
    const err = await resolveModel(REPO, { env, fetch: hub.fetch, log: () => {} }).catch((e) => e);
    expect(hub.calls).toEqual([]);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect(err.searched.at(-1)).toBe("download not attempted (TRANSFORMERS_OFFLINE=yes)");
  });

  test("the offline switches read as huggingface_hub reads them: 1/ON/YES/TRUE in any case; HF_HUB_OFFLINE first", () => {
    for (const on of ["1", "on", "YES", "True", "tRuE"]) {
      expect(offlineSwitch({ HF_HUB_OFFLINE: on })).toBe(`HF_HUB_OFFLINE=${on}`);
      expect(offlineSwitch({ TRANSFORMERS_OFFLINE: on })).toBe(`TRANSFORMERS_OFFLINE=${on}`);
    }
    for (const off of ["0", "off", "no", "false", "2", " 1", ""]) {
      expect(offlineSwitch({ HF_HUB_OFFLINE: off })).toBeNull();
      expect(offlineSwitch({ TRANSFORMERS_OFFLINE: off })).toBeNull();
    }
    expect(offlineSwitch({})).toBeNull();
    // `HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE`: the first one set decides.
    expect(offlineSwitch({ HF_HUB_OFFLINE: "0", TRANSFORMERS_OFFLINE: "1" })).toBeNull();
    expect(offlineSwitch({ HF_HUB_OFFLINE: "", TRANSFORMERS_OFFLINE: "1" })).toBe("TRANSFORMERS_OFFLINE=1");
  });

  test("a missing ref and a partial snapshot are named as such", async () => {
    const cache = fresh("cache");
    const partial = placeInCache(cache, REPO, COMMIT_A, ["main"], ["config.json"]);
    const opts = offline({ HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "true" });
    const noRef = await resolveModel(`${REPO}@v9`, opts).catch((e) => e);
    expect(noRef.message).toContain(`no ref ${join(repoFolder(cache, REPO), "refs", "v9")}`);
    const lacking = await resolveModel(REPO, opts).catch((e) => e);
    expect(lacking.message).toContain(`snapshot ${partial} lacks tokenizer.json, model.safetensors`);
    expect(lacking.message).toContain("download not attempted (HF_HUB_OFFLINE=true)");
  });

  test("with the network, the hub's answer is in the error", async () => {
    const hub = fakeHub(REPO, COMMIT_A);
    const env = { HOME: fresh("home"), HF_HUB_CACHE: fresh("cache") };
    const err = await resolveModel("fastgen/absent", { env, fetch: hub.fetch, log: () => {} }).catch((e) => e);
    expect(err).toBeInstanceOf(ModelNotFoundError);
    expect(err.message).toContain("download from https://huggingface.co failed: Repository not found");
    expect(hub.calls.map((c) => c.path)).toEqual(["/api/models/fastgen/absent/revision/main"]);
  });
});

describe("downloading into the cache (a fake hub behind fetch)", () => {
  test("only the engine's files land, as blobs + linked snapshot + refs; progress is logged; HF_TOKEN is sent", async () => {
    const cache = fresh("cache");
    const hub = fakeHub(REPO, COMMIT_A, ["main", "v1"]);
    const lines: string[] = [];
    const env = { HF_HUB_CACHE: cache, HF_TOKEN: "hf_test_token" };
    // The package announces each file on console.debug, which is stdout (`generate --json`'s).
    const debug = console.debug;
    const debugLines: unknown[] = [];
    console.debug = (...a: unknown[]) => debugLines.push(a);
    let got;
    try {
      got = await resolveModel(`${REPO}@v1`, { env, fetch: hub.fetch, log: (m) => lines.push(m) });
    } finally {
      console.debug = debug;
    }
    expect(debugLines).toEqual([]);
    const folder = repoFolder(cache, REPO);
    const snapshot = join(folder, "snapshots", COMMIT_A);
    expect(got).toEqual({ dir: snapshot, name: REPO });
    expect(readdirSync(snapshot).sort()).toEqual([...MODEL_FILES].sort());
    for (const f of MODEL_FILES) {
      expect(readlinkSync(join(snapshot, f))).toMatch(/^\.\.\/\.\.\/blobs\/[0-9a-f]{40,64}$/);
      expect(readFileSync(join(snapshot, f))).toEqual(readFileSync(join(FIXTURE, f)));
    }
    expect(readdirSync(join(folder, "blobs"))).toHaveLength(MODEL_FILES.length);
    expect(readFileSync(join(folder, "refs", "v1"), "utf8")).toBe(COMMIT_A);
    // Nothing the engine does not read was asked for.
    const fetched = hub.calls.filter((c) => c.path.includes("/resolve/")).map((c) => c.path.split("/").pop());
    for (const f of UNWANTED) expect(fetched).not.toContain(f.split("/").pop());
    expect(hub.calls.every((c) => c.auth === "Bearer hf_test_token" && c.host === "huggingface.co")).toBe(true);
    expect(lines[0]).toMatch(new RegExp(`^downloading ${REPO}@v1 \\(commit ${COMMIT_A.slice(0, 12)}\\) into ${cache}: ${MODEL_FILES.length} files, [\\d.]+ KiB$`));
    expect(lines.filter((l) => /^  \d+% /.test(l)).at(-1)).toMatch(/^  100% \(([\d.]+ KiB) of \1\)$/);
    expect(lines.at(-1)).toMatch(/^downloaded fastgen\/llama-gqa in [\d.]+ s$/);

    // Now cached: found with the network off.
    const again = await resolveModel(`${REPO}@v1`, offline({ HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" }));
    expect(again.dir).toBe(snapshot);
  });

  test("a pinned commit writes no ref; HUGGING_FACE_HUB_TOKEN is the token's other name", async () => {
    const cache = fresh("cache");
    const hub = fakeHub(REPO, COMMIT_A);
    await resolveModel(`${REPO}@${COMMIT_A}`, { env: { HF_HUB_CACHE: cache, HUGGING_FACE_HUB_TOKEN: "hf_other" }, fetch: hub.fetch, log: () => {} });
    expect(existsSync(join(repoFolder(cache, REPO), "refs"))).toBe(false);
    expect(hub.calls[0]!.auth).toBe("Bearer hf_other");
  });

  test("the token `hf auth login` saved in $HF_HOME/token is sent when HF_TOKEN is unset, and never logged", async () => {
    const cache = fresh("cache");
    const hfHome = fresh("hfhome");
    writeFileSync(join(hfHome, "token"), "  hf_saved_token\n");
    const hub = fakeHub(REPO, COMMIT_A);
    const lines: string[] = [];
    const got = await resolveModel(REPO, { env: { HOME: fresh("home"), HF_HUB_CACHE: cache, HF_HOME: hfHome }, fetch: hub.fetch, log: (m) => lines.push(m) });
    expect(got.dir).toBe(join(repoFolder(cache, REPO), "snapshots", COMMIT_A));
    expect(hub.calls.length).toBeGreaterThan(MODEL_FILES.length);
    expect(hub.calls.every((c) => c.auth === "Bearer hf_saved_token")).toBe(true);
    expect(lines.join("\n")).not.toContain("hf_saved_token");
  });

  test("where the token file is: $HF_TOKEN_PATH, else $HF_HOME/token, else ~/.cache/huggingface/token; the variables win", async () => {
    const home = fresh("home");
    mkdirSync(join(home, ".cache", "huggingface"), { recursive: true });
    writeFileSync(join(home, ".cache", "huggingface", "token"), "hf_home_file");
    const hfHome = fresh("hfhome");
    writeFileSync(join(hfHome, "token"), "hf_hf_home_file");
    const tokenPath = join(fresh("elsewhere"), "my-token");
    writeFileSync(tokenPath, "hf_path_file\r\n");
    // The first request's Authorization header; "fastgen/absent" stops at the hub's 401.
    const sent = async (env: Record<string, string>) => {
      const hub = fakeHub(REPO, COMMIT_A);
      await resolveModel("fastgen/absent", { env: { HOME: home, HF_HUB_CACHE: fresh("cache"), ...env }, fetch: hub.fetch, log: () => {} }).catch(() => {});
      expect(hub.calls).toHaveLength(1);
      return hub.calls[0]!.auth;
    };
    expect(await sent({})).toBe("Bearer hf_home_file");
    expect(await sent({ HF_HOME: hfHome })).toBe("Bearer hf_hf_home_file");
    expect(await sent({ HF_HOME: hfHome, HF_TOKEN_PATH: tokenPath })).toBe("Bearer hf_path_file");
    expect(await sent({ HF_TOKEN_PATH: tokenPath, HF_TOKEN: "hf_env" })).toBe("Bearer hf_env");
    expect(await sent({ HF_TOKEN_PATH: tokenPath, HUGGING_FACE_HUB_TOKEN: "hf_env_other" })).toBe("Bearer hf_env_other");
    // A missing, unreadable or empty file is no token.
    expect(await sent({ HF_TOKEN_PATH: join(home, "no-such-token") })).toBeNull();
    expect(await sent({ HF_TOKEN_PATH: home })).toBeNull(); // a directory
    writeFileSync(join(hfHome, "empty"), "\n");
    expect(await sent({ HF_TOKEN_PATH: join(hfHome, "empty") })).toBeNull();
  });

  test("a partial snapshot is completed; HF_ENDPOINT picks the hub", async () => {
    const cache = fresh("cache");
    const snapshot = placeInCache(cache, REPO, COMMIT_A, ["main"], ["config.json"]);
    const hub = fakeHub(REPO, COMMIT_A);
    const env = { HOME: fresh("home"), HF_HUB_CACHE: cache, HF_ENDPOINT: "https://mirror.example/" };
    const got = await resolveModel(REPO, { env, fetch: hub.fetch, log: () => {} });
    expect(got.dir).toBe(snapshot);
    expect(readdirSync(snapshot).sort()).toEqual([...MODEL_FILES].sort());
    expect(hub.calls.every((c) => c.host === "mirror.example")).toBe(true);
    expect(hub.calls.some((c) => c.path.endsWith("/resolve/" + COMMIT_A + "/config.json"))).toBe(false); // already there
  });

  test("which files the engine reads", () => {
    for (const f of ["config.json", "model-00001-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json", "chat_template.jinja"])
      expect(isEngineFile(f)).toBe(true);
    for (const f of [...UNWANTED, "pytorch_model.bin.index.json", "consolidated.pth", "original/model.safetensors"]) expect(isEngineFile(f)).toBe(false);
  });
});

describe("resolveModels", () => {
  test("the draft model of speculative decoding is resolved the same way; other options pass through", async () => {
    const cache = fresh("cache");
    const snap = placeInCache(cache, REPO, COMMIT_A, ["main"]);
    const speculative = { method: "draft" as const, draftModel: REPO, numSpeculativeTokens: 3, promptLookupMax: 4, promptLookupMin: 2, disableByBatchSize: 8, autoDisable: true };
    const got = await resolveModels(`${REPO}@main`, { maxSeqs: 4, speculative }, offline({ HF_HUB_CACHE: cache, HF_HUB_OFFLINE: "1" }));
    expect(got.model).toEqual({ dir: snap, name: REPO });
    expect(got.options).toEqual({ maxSeqs: 4, speculative: { ...speculative, draftModel: snap } });
  });

  test("no model: the embedded demo model", async () => {
    expect((await resolveModels(undefined, {})).model.name).toBe("fastgen-demo-tiny");
  });
});

// A file, not a directory, at a path that spells an id is still the path's.
test("an existing file named like an id is taken as a path", async () => {
  const cwd = fresh("cwd");
  mkdirSync(join(cwd, "org"));
  writeFileSync(join(cwd, "org", "name"), "");
  const before = process.cwd();
  process.chdir(cwd);
  try {
    expect((await resolveModel("org/name", { fetch: noNetwork })).dir).toBe(join(cwd, "org", "name"));
  } finally {
    process.chdir(before);
  }
});
