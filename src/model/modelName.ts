/**
 * The name a model directory is served under: its folder's name, except for a Hugging Face hub
 * cache snapshot, which is named by its repository, as vLLM names it:
 *   ~/.cache/huggingface/hub/models--Qwen--Qwen2.5-0.5B/snapshots/<revision hash>  →  Qwen/Qwen2.5-0.5B
 */
import { basename, resolve, sep } from "node:path";

const CACHE_PREFIX = "models--";

/** The served name of the model in `dir`. */
export function modelNameOf(dir: string): string {
  const parts = resolve(dir).split(sep).filter((p) => p !== "");
  const repo = parts[parts.length - 3];
  if (parts[parts.length - 2] === "snapshots" && repo?.startsWith(CACHE_PREFIX) && repo.length > CACHE_PREFIX.length)
    return repo.slice(CACHE_PREFIX.length).split("--").join("/");
  return basename(resolve(dir));
}
