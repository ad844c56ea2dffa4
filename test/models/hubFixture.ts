/**
 * A Hugging Face hub for tests, with no network: a hub cache laid out as huggingface_hub writes it
 * (blobs/, linked snapshots/<commit>/, refs/), and a fake `fetch` serving the hub's API and files
 * from memory, as @huggingface/hub calls them. The files are the committed tiny model
 * test/fixtures/llama-gqa plus the extras a real repository carries and the engine never reads.
 */
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { repoFolder } from "../../src/model/hubCache";

export const FIXTURE = join(import.meta.dir, "..", "fixtures", "llama-gqa");
/** The fixture's files, minus the transformers reference the tests compare against. */
export const MODEL_FILES = readdirSync(FIXTURE).filter((f) => f !== "reference.json");
/** Files a hub repository holds that no download of ours should touch. */
export const UNWANTED = ["pytorch_model.bin", "README.md", "model.gguf", "onnx/model.onnx", ".gitattributes"];

export const COMMIT_A = "a".repeat(8) + "0123456789abcdef0123456789abcdef";
export const COMMIT_B = "b".repeat(8) + "0123456789abcdef0123456789abcdef";

const hex = (algo: "sha1" | "sha256", data: Uint8Array | string) => new Bun.CryptoHasher(algo).update(data).digest("hex");

/** The etag a blob is named by: sha256 for LFS files (weights), the git blob sha1 otherwise. */
function etagOf(path: string, data: Uint8Array): { oid: string; lfs?: { oid: string; size: number; pointerSize: number } } {
  const gitOid = hex("sha1", Buffer.concat([Buffer.from(`blob ${data.byteLength}\0`), data]));
  return path.endsWith(".safetensors") ? { oid: gitOid, lfs: { oid: hex("sha256", data), size: data.byteLength, pointerSize: 134 } } : { oid: gitOid };
}

/** The fixture's bytes by file name. */
export function fixtureFiles(): Map<string, Uint8Array<ArrayBuffer>> {
  return new Map(MODEL_FILES.map((f) => [f, new Uint8Array(readFileSync(join(FIXTURE, f)))]));
}

/**
 * Writes `repo` at `commit` into the cache at `cacheDir`: blobs named by etag, snapshot files as
 * relative links to them, and a refs/ file per name in `refs`. `only` limits the files placed.
 */
export function placeInCache(cacheDir: string, repo: string, commit: string, refs: string[] = [], only?: string[]): string {
  const folder = repoFolder(cacheDir, repo);
  const snapshot = join(folder, "snapshots", commit);
  mkdirSync(snapshot, { recursive: true });
  mkdirSync(join(folder, "blobs"), { recursive: true });
  for (const [f, data] of fixtureFiles()) {
    if (only && !only.includes(f)) continue;
    const { oid, lfs } = etagOf(f, data);
    const etag = lfs?.oid ?? oid;
    writeFileSync(join(folder, "blobs", etag), data);
    symlinkSync(join("..", "..", "blobs", etag), join(snapshot, f));
  }
  for (const ref of refs) {
    mkdirSync(join(folder, "refs"), { recursive: true });
    writeFileSync(join(folder, "refs", ref), commit);
  }
  return snapshot;
}

/** One request the fake hub answered. */
export interface HubCall {
  method: string;
  host: string;
  path: string;
  auth: string | null;
}

/**
 * A fake hub serving `repo` (its branches and tags all at `commit`) from memory; any other repo is
 * the hub's 401 "Repository not found". `calls` records every request.
 */
export function fakeHub(repo: string, commit: string, branches: string[] = ["main"]) {
  const files = fixtureFiles();
  for (const f of UNWANTED) files.set(f, new TextEncoder().encode(`not for the engine: ${f}`));
  const calls: HubCall[] = [];
  const json = (body: unknown, status = 200) => new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json" } });
  const entry = (path: string) => ({ type: "file", path, size: files.get(path)!.byteLength, ...etagOf(path, files.get(path)!) });

  const fetchFn = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const req = new Request(input, init);
    const url = new URL(req.url);
    const path = decodeURIComponent(url.pathname);
    calls.push({ method: req.method, host: url.host, path, auth: req.headers.get("authorization") });
    const api = path.match(/^\/api\/models\/(.+?)\/(revision|tree|paths-info)\/([^/]+)/);
    const file = path.match(/^\/(.+?)\/resolve\/([^/]+)\/(.+)$/);
    const [r, rev] = api ? [api[1], api[3]] : file ? [file[1], file[2]] : [null, null];
    if (r !== repo) return json({ error: "Repository not found" }, 401);
    if (rev !== commit && !branches.includes(rev!)) return json({ error: `Invalid rev id: ${rev}` }, 404);
    if (api?.[2] === "revision") return json({ _id: "x", id: repo, sha: commit, private: false, downloads: 0, likes: 0, lastModified: "2026-01-01T00:00:00Z" });
    if (api?.[2] === "tree") {
      const top = [...files.keys()].filter((f) => !f.includes("/"));
      return json([...top.map(entry), { type: "directory", path: "onnx", size: 0, oid: "0".repeat(40) }]);
    }
    if (api?.[2] === "paths-info") {
      const { paths } = (await req.json()) as { paths: string[] };
      return json(paths.map((p) => ({ ...entry(p), lastCommit: { id: commit, title: "fixture", date: "2026-01-01T00:00:00Z" } })));
    }
    const data = file ? files.get(file[3]!) : undefined;
    if (!data) return new Response("no such file", { status: 404, headers: { "x-error-code": "EntryNotFound" } });
    const headers = { etag: `"${etagOf(file![3]!, data).oid}"`, "content-type": "application/octet-stream" };
    const range = req.headers.get("range")?.match(/^bytes=(\d+)-(\d+)$/);
    if (!range) return new Response(data, { headers });
    const [a, b] = [Number(range[1]), Math.min(Number(range[2]), data.byteLength - 1)];
    return new Response(data.slice(a, b + 1), { status: 206, headers: { ...headers, "content-range": `bytes ${a}-${b}/${data.byteLength}` } });
  };
  return { fetch: fetchFn as typeof fetch, calls };
}
