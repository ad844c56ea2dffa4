/**
 * The Hugging Face hub cache, read without the network: where it is, how a model id names its
 * folder, and which snapshot a revision means. The layout every HF tool shares:
 *
 *   <cache>/models--Qwen--Qwen2.5-7B-Instruct/
 *     refs/main                       a file holding a 40-hex commit (one per branch or tag)
 *     snapshots/<commit>/config.json  -> ../../blobs/<etag> (files are links into blobs/)
 *     blobs/<etag>
 */
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type Env, type EnvDir, hfHome } from "./hubEnv";

/** A model id as typed: `org/name` (or a bare `name`) and an optional `@revision`. */
export interface HubId {
  /** `org/name`: the id without the revision, the name the model is served under. */
  repo: string;
  /** A branch, tag, full commit or commit prefix; `main` when none was given. */
  revision: string;
}

export const DEFAULT_REVISION = "main";
const COMMIT = /^[0-9a-f]{40}$/;
const COMMIT_PREFIX = /^[0-9a-f]{4,39}$/;
// The hub's own rule (huggingface_hub validate_repo_id): word characters, "-" and "." inside.
const ID_PART = /^[A-Za-z0-9_](?:[\w.-]{0,94}[A-Za-z0-9_])?$/;

/** Parses `org/name[@revision]`; null when `spec` is no valid hub id. */
export function parseHubId(spec: string): HubId | null {
  const at = spec.indexOf("@");
  const repo = at < 0 ? spec : spec.slice(0, at);
  const revision = at < 0 ? DEFAULT_REVISION : spec.slice(at + 1);
  const parts = repo.split("/");
  if (parts.length > 2 || !parts.every((p) => ID_PART.test(p) && !p.includes("--") && !p.includes(".."))) return null;
  if (revision === "" || revision.includes("..") || revision.startsWith("/") || !/^[\w./-]+$/.test(revision)) return null;
  return { repo, revision };
}

/** Whether `revision` is a full commit hash. */
export const isCommit = (revision: string): boolean => COMMIT.test(revision);

/**
 * The hub cache: `given` (--download-dir), else HF_HUB_CACHE, else $HF_HOME/hub, else
 * ~/.cache/huggingface/hub — huggingface_hub's order, with its legacy HUGGINGFACE_HUB_CACHE and
 * XDG_CACHE_HOME in the places it reads them.
 */
export function hubCacheDir(env: Env, given?: string): EnvDir {
  if (given) return { dir: given, source: "--download-dir" };
  for (const name of ["HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"]) if (env[name]) return { dir: env[name]!, source: name };
  const home = hfHome(env);
  return { dir: join(home.dir, "hub"), source: home.source === "default" ? "default" : `${home.source}/hub` };
}

/** `<cache>/models--org--name`: the folder of one model repository. */
export function repoFolder(cacheDir: string, repo: string): string {
  return join(cacheDir, `models--${repo.split("/").join("--")}`);
}

/** A revision looked up in the cache: its snapshot directory, or why there is none. */
export type CacheLookup =
  | { found: true; commit: string; dir: string }
  | { found: false; why: string; ambiguous?: boolean };

/**
 * The snapshot `id.revision` names in `cacheDir`: a full commit is used as is; a branch or tag
 * through refs/; a commit prefix when exactly one snapshot starts with it (refs win, as in git).
 */
export function lookUpSnapshot(cacheDir: string, id: HubId): CacheLookup {
  const folder = repoFolder(cacheDir, id.repo);
  if (!existsSync(folder)) return { found: false, why: `no ${folder}` };
  const snapshot = (commit: string): CacheLookup => {
    const dir = join(folder, "snapshots", commit);
    return existsSync(dir) ? { found: true, commit, dir } : { found: false, why: `no snapshot ${dir}` };
  };
  if (isCommit(id.revision)) return snapshot(id.revision);
  const ref = join(folder, "refs", id.revision);
  if (existsSync(ref)) {
    const commit = readFileSync(ref, "utf8").trim();
    return isCommit(commit) ? snapshot(commit) : { found: false, why: `${ref} holds no commit hash` };
  }
  if (COMMIT_PREFIX.test(id.revision)) {
    const snapshots = join(folder, "snapshots");
    const matches = existsSync(snapshots) ? readdirSync(snapshots).filter((c) => c.startsWith(id.revision)) : [];
    if (matches.length === 1) return snapshot(matches[0]!);
    if (matches.length > 1)
      return { found: false, ambiguous: true, why: `revision ${id.revision} matches ${matches.length} snapshots in ${snapshots} (${matches.join(", ")})` };
    return { found: false, why: `no ref ${ref} and no snapshot starting with ${id.revision}` };
  }
  return { found: false, why: `no ref ${ref}` };
}

/**
 * The files the engine needs that `dir` lacks: config.json, tokenizer.json, and the safetensors
 * weights (every shard its index names). A snapshot may be partial, e.g. only the config that
 * another tool fetched; the loader would then fail on the first missing file.
 */
export function missingModelFiles(dir: string): string[] {
  const missing = ["config.json", "tokenizer.json"].filter((f) => !existsSync(join(dir, f)));
  const index = join(dir, "model.safetensors.index.json");
  if (existsSync(index)) {
    let shards: string[] = [];
    try {
      shards = Object.values((JSON.parse(readFileSync(index, "utf8")) as { weight_map?: Record<string, string> }).weight_map ?? {});
    } catch {
      // A corrupt index is the loader's to report.
    }
    missing.push(...new Set(shards.filter((f) => !existsSync(join(dir, f)))));
  } else if (!readdirSync(dir).some((f) => f.endsWith(".safetensors"))) {
    missing.push("model.safetensors");
  }
  return missing;
}
