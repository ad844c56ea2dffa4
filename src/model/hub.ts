/**
 * What `--model` names, as a directory: a local path, or a Hugging Face model id
 * (`org/name[@revision]`) found in the hub cache or, where the network is allowed, downloaded into
 * it. Every entry point (serve, generate, replica, pipeline(), serve()) resolves through here.
 *
 *   /abs, ./dir, ../dir, ~/dir     always a path
 *   a path that exists              a path: a folder named like an id wins over the hub
 *   org/name[@revision]             the cache's snapshot of that revision (default main) when it
 *                                   holds the model; else a download, unless HF_HUB_OFFLINE
 *                                   (or TRANSFORMERS_OFFLINE) is on
 *
 * A cached model is used without asking the hub whether `main` moved on: a server starts the same
 * with or without the network. Pin a commit (`@<hash>`) to say which one; delete refs/main to refetch.
 */
import { existsSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { ModelNotFoundError } from "./errors";
import { hubCacheDir, lookUpSnapshot, missingModelFiles, parseHubId } from "./hubCache";
import { downloadSnapshot } from "./hubDownload";
import { type Env, hubToken, offlineSwitch } from "./hubEnv";
import { modelNameOf } from "./modelName";

/** Where and how models named by hub id are found. */
export interface HubOptions {
  /** The hub cache (--download-dir); default HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub. */
  cacheDir?: string;
  /** Where the offline switches, the token, HF_ENDPOINT, the cache variables and HOME are read (default process.env). */
  env?: Env;
  /** The fetch downloads go through (default the global one; tests serve the hub from memory). */
  fetch?: typeof fetch;
  /** Download progress, a line each (default stderr). */
  log?: (message: string) => void;
}

/** A model directory and the name it is served under. */
export interface ResolvedModel {
  dir: string;
  /**
   * A hub id as typed without its @revision, else the folder's name. The snapshot's path spells
   * the id (models--org--name), so modelNameOf(dir), which engines and replicas report, agrees.
   */
  name: string;
}

const DEFAULT_HUB_URL = "https://huggingface.co";

/**
 * The directory `model` names (see the file comment).
 * @throws ModelNotFoundError for a hub id neither cached nor downloaded, saying where it looked.
 */
export async function resolveModel(model: string, options: HubOptions = {}): Promise<ResolvedModel> {
  const env = options.env ?? process.env;
  const path = asPath(model, env);
  if (path !== null) return { dir: path, name: modelNameOf(path) };
  const id = parseHubId(model)!;

  const cache = hubCacheDir(env, options.cacheDir);
  const where = `hub cache ${cache.dir} (${cache.source})`;
  const searched = [`local directory ${resolve(model)}: none`];
  const cached = lookUpSnapshot(cache.dir, id);
  if (cached.found) {
    const missing = missingModelFiles(cached.dir);
    if (missing.length === 0) return { dir: cached.dir, name: id.repo };
    searched.push(`${where}: snapshot ${cached.dir} lacks ${missing.join(", ")}`);
  } else {
    searched.push(`${where}: ${cached.why}`);
  }

  const notAttempted = (why: string) => new ModelNotFoundError(model, [...searched, `download not attempted (${why})`]);
  if (!cached.found && cached.ambiguous) throw notAttempted("give more of the commit hash");
  const offline = offlineSwitch(env);
  if (offline !== null) throw notAttempted(offline);
  const hubUrl = (env.HF_ENDPOINT || DEFAULT_HUB_URL).replace(/\/+$/, "");
  try {
    const dir = await downloadSnapshot({
      ...id,
      cacheDir: cache.dir,
      token: hubToken(env),
      hubUrl,
      fetch: options.fetch,
      log: options.log ?? ((m) => console.error(`fastgen: ${m}`)),
    });
    return { dir, name: id.repo };
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new ModelNotFoundError(model, [...searched, `download from ${hubUrl} failed: ${why}`], { cause: e });
  }
}

/** `model` as an absolute path when it is one (see the file comment), null for a hub id. */
function asPath(model: string, env: Env): string | null {
  if (model === "~" || model.startsWith("~/")) return join(env.HOME || homedir(), model.slice(1));
  if (/^(\/|~|\.\.?(\/|$))/.test(model) || existsSync(model)) return resolve(model);
  // Neither a path that exists nor an id: the loader says the directory does not exist.
  return parseHubId(model) === null ? resolve(model) : null;
}
