/**
 * Downloading a model from the Hugging Face hub into the hub cache (hubCache.ts's layout), through
 * @huggingface/hub: its listFiles and downloadFileToCacheDir write the same blobs/ and linked
 * snapshots/<commit>/ as every other HF tool, so a model fetched here is found by them and back.
 * Only what the engine reads is fetched (config, tokenizer, chat template, safetensors), not the
 * .bin / .pth / onnx / gguf copies many repositories also carry.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { formatBytes } from "./formatBytes";
import { isCommit, repoFolder } from "./hubCache";

/** What to fetch, from where, with what. */
export interface DownloadRequest {
  repo: string;
  revision: string;
  cacheDir: string;
  /** The hub token (hubEnv.ts's hubToken): for gated and private models. */
  token?: string;
  /** HF_ENDPOINT: a hub mirror (default https://huggingface.co). */
  hubUrl?: string;
  /** The fetch all requests go through (tests serve the hub from memory). */
  fetch?: typeof fetch;
  /** Progress lines. */
  log: (message: string) => void;
}

const ENGINE_FILES = new Set([
  "config.json", "generation_config.json", "model.safetensors.index.json",
  "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
  "chat_template.jinja", "chat_template.json",
]);

/** Whether the engine reads `path` (a file at the repository's top level). */
export function isEngineFile(path: string): boolean {
  return !path.includes("/") && (ENGINE_FILES.has(path) || path.endsWith(".safetensors"));
}

/**
 * Fetches the engine's files of `repo` at `revision` into the cache and returns the snapshot
 * directory. A branch or tag also gets its refs/ file, as the cache lookup reads it.
 * @throws the hub's error (HubApiError: 401, 404 for a missing or gated repository) or fetch's.
 */
export async function downloadSnapshot(r: DownloadRequest): Promise<string> {
  const hub = await import("@huggingface/hub"); // loaded only when a download happens
  const progress = new ByteProgress(r.log);
  const common = {
    repo: { type: "model" as const, name: r.repo },
    accessToken: r.token,
    hubUrl: r.hubUrl,
    fetch: progress.counting(r.fetch ?? fetch),
  };
  const { sha } = await hub.modelInfo({ ...common, name: r.repo, revision: r.revision, additionalFields: ["sha"] });
  if (!sha || !isCommit(sha)) throw new Error(`the hub gave no commit for ${r.repo}@${r.revision}`);
  const files: { path: string; size: number }[] = [];
  for await (const f of hub.listFiles({ ...common, revision: sha })) if (f.type === "file" && isEngineFile(f.path)) files.push(f);
  if (!files.some((f) => f.path.endsWith(".safetensors")))
    throw new Error(`${r.repo}@${r.revision} has no safetensors weights; .bin/.pth checkpoints are not supported`);

  const total = files.reduce((n, f) => n + f.size, 0);
  r.log(`downloading ${r.repo}@${r.revision} (commit ${sha.slice(0, 12)}) into ${r.cacheDir}: ${files.length} files, ${formatBytes(total)}`);
  progress.expect(total);
  const started = performance.now();
  for (const [i, f] of files.entries()) {
    r.log(`  [${i + 1}/${files.length}] ${f.path} (${formatBytes(f.size)})`);
    await quietly(() => hub.downloadFileToCacheDir({ ...common, path: f.path, revision: sha, cacheDir: r.cacheDir }));
  }
  if (!sha.startsWith(r.revision)) {
    const ref = join(repoFolder(r.cacheDir, r.repo), "refs", r.revision);
    mkdirSync(dirname(ref), { recursive: true });
    writeFileSync(ref, sha);
  }
  r.log(`downloaded ${r.repo} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return join(repoFolder(r.cacheDir, r.repo), "snapshots", sha);
}

/**
 * Runs `fn` with console.debug muted: downloadFileToCacheDir announces each file there, which
 * Bun writes to stdout, where `fastgen generate --json` prints its result. Our own lines say it.
 */
async function quietly<T>(fn: () => Promise<T>): Promise<T> {
  const debug = console.debug;
  console.debug = () => {};
  try {
    return await fn();
  } finally {
    console.debug = debug;
  }
}

/** Bytes received, logged at every tenth of the total (file bodies only, not API answers). */
class ByteProgress {
  private total = 0;
  private received = 0;
  private shown = 0;

  constructor(private readonly log: (message: string) => void) {}

  expect(total: number): void {
    this.total = total;
  }

  /** `inner` with every file body counted as it streams through. */
  counting(inner: typeof fetch): typeof fetch {
    const wrapped = async (input: Parameters<typeof fetch>[0], init?: Parameters<typeof fetch>[1]) => {
      const res = await inner(input, init);
      const url = typeof input === "string" ? input : input instanceof URL ? input.href : input.url;
      if (!res.body || this.total === 0 || new URL(url).pathname.startsWith("/api/")) return res;
      const counted = res.body.pipeThrough(new TransformStream<Uint8Array, Uint8Array>({
        transform: (chunk, out) => {
          this.add(chunk.byteLength);
          out.enqueue(chunk);
        },
      }));
      const copy = new Response(counted, { status: res.status, statusText: res.statusText, headers: res.headers });
      // The package reads the URL a redirect ended at.
      Object.defineProperty(copy, "url", { value: res.url });
      return copy;
    };
    return wrapped as typeof fetch;
  }

  private add(n: number): void {
    this.received += n;
    const tenth = Math.min(10, Math.floor((10 * this.received) / this.total));
    if (tenth <= this.shown) return;
    this.shown = tenth;
    this.log(`  ${tenth * 10}% (${formatBytes(this.received)} of ${formatBytes(this.total)})`);
  }
}
