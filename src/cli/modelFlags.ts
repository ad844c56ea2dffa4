/**
 * `--model` and `--download-dir` of `fastgen serve`, `generate` and `replica`: a model directory
 * or a Hugging Face id (`org/name[@revision]`, found in the hub cache or downloaded into it,
 * model/hub.ts), resolved with the draft model before the engine starts.
 */
import type { EngineOptions } from "../engine/options";
import { type ResolvedModel, resolveModels } from "../engine/resolveModels";

export const MODEL_FLAG_SPEC = {
  model: { type: "string" },
  "download-dir": { type: "string" },
} as const;

/**
 * The model (and draft model) of parsed `values`, as directories.
 * @param log download progress (stderr).
 * @throws ModelNotFoundError naming every place looked in.
 */
export function modelsFrom<O extends Partial<EngineOptions>>(
  values: { model?: string; "download-dir"?: string },
  engineOptions: O,
  log: (message: string) => void,
): Promise<{ model: ResolvedModel; options: O }> {
  return resolveModels(values.model, engineOptions, { cacheDir: values["download-dir"], log });
}
