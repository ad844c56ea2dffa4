/**
 * The embedded default model: `fastgen-demo-tiny`, a small demo model this project makes itself
 * (models/make_demo_model.py) and commits, so `serve` and `generate` run on a fresh machine with
 * no download. It writes plausible-looking English at best; it is not for real work.
 */
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { envVar } from "../envVars";

export const DEFAULT_MODEL_NAME = "fastgen-demo-tiny";

/** Directory of the embedded model: $FASTGEN_DEFAULT_MODEL, beside the executable, or in the repo. */
export function defaultModelDir(): string {
  const candidates = [
    envVar("FASTGEN_DEFAULT_MODEL"),
    join(dirname(process.execPath), "models", DEFAULT_MODEL_NAME),
    join(import.meta.dir, "..", "..", "models", DEFAULT_MODEL_NAME),
  ];
  for (const c of candidates) if (c && existsSync(join(c, "config.json"))) return c;
  throw new Error(`the embedded model ${DEFAULT_MODEL_NAME} was not found (looked in ${candidates.filter(Boolean).join(", ")})`);
}
