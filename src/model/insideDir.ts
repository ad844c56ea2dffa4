/**
 * Whether a file a model directory names stays inside it once links are followed: a shard name
 * from the index, or a tokenizer file that is a symlink. The Hugging Face hub cache keeps
 * snapshots/<rev>/<file> as links into the repo's blobs/, so that folder counts as inside too.
 */
import { realpathSync } from "node:fs";
import { basename, dirname, join, sep } from "node:path";

/** The real path of `file` when it lies under `dir` (or its hub cache blobs/), else null. */
export function realPathInside(dir: string, file: string): string | null {
  const root = realpathSync(dir);
  const real = realpathSync(file);
  const roots = [root];
  if (basename(dirname(root)) === "snapshots") roots.push(join(dirname(dirname(root)), "blobs"));
  return roots.some((r) => real.startsWith(r + sep)) ? real : null;
}
