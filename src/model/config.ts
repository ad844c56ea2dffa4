/**
 * Hugging Face `config.json` -> normalized {@link ModelSpec}.
 *
 * Reads both the transformers v4 keys (`rope_theta`, `rope_scaling` with "type" or "rope_type")
 * and the v5 key `rope_parameters` (which carries `rope_theta` itself; ropeConfig.ts). Defaults follow the
 * transformers config classes of each architecture (src/model/arch/), so a sparse config means
 * what it means there.
 */
import { ARCHITECTURES } from "./arch";
import type { SpecOptions } from "./arch/types";
import { missing, ModelConfigError } from "./configFields";
import type { ModelSpec } from "../native/modelSpec";

export { ModelConfigError };
export type { SpecOptions };

/** model_type values {@link configToSpec} understands. */
export const SUPPORTED_MODEL_TYPES = Object.keys(ARCHITECTURES);

/**
 * Normalizes a parsed config.json into the spec libfastgen's generic decoder block runs.
 * @param opts what the engine knows beside the config (the context it will serve picks Phi-3's
 *   LongRoPE list).
 * @throws ModelConfigError naming the unsupported model_type/feature or the missing/bad field.
 */
export function configToSpec(config: object, opts: SpecOptions = {}): ModelSpec {
  if (config === null || typeof config !== "object" || Array.isArray(config)) {
    throw new ModelConfigError("config.json must hold a JSON object");
  }
  const cfg = config as Record<string, unknown>;
  const arch = cfg.model_type;
  if (arch === undefined || arch === null) throw missing("model_type");
  if (typeof arch !== "string" || !Object.hasOwn(ARCHITECTURES, arch)) {
    throw new ModelConfigError(
      `unsupported model_type ${JSON.stringify(arch)}; supported: ${SUPPORTED_MODEL_TYPES.join(", ")}`,
    );
  }
  return ARCHITECTURES[arch]!.toSpec(cfg, arch, opts);
}
