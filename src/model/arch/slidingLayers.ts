/**
 * Which layers attend through a sliding window -> the spec's sliding_window and layer_types.
 *
 * Configs say it three ways: one window for every layer (Mistral), a window from layer
 * max_window_layers on (Qwen, behind use_sliding_window), or a pattern of sliding and full layers
 * (Gemma 2 alternates, Gemma 3 has five sliding per full). transformers 4.53+ also writes the
 * result out as config.layer_types, which wins wherever it is present.
 */
import { type Json, ModelConfigError, optionalInt } from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";

export type LayerKind = "full" | "sliding";

/** config.sliding_window: absent -> `dflt` (the config class's default), null or 0 -> no window. */
export function readWindow(cfg: Json, dflt: number): number {
  const raw = "sliding_window" in cfg ? cfg.sliding_window : dflt;
  if (raw === null || raw === undefined || raw === 0) return 0;
  return optionalInt({ sliding_window: raw }, "sliding_window")!;
}

/** config.layer_types ("full_attention" | "sliding_attention" per layer), else `dflt(i)` per layer. */
export function readLayerTypes(cfg: Json, numLayers: number, dflt: (i: number) => LayerKind): LayerKind[] {
  const types = cfg.layer_types;
  if (types === undefined || types === null) return Array.from({ length: numLayers }, (_, i) => dflt(i));
  if (!Array.isArray(types) || types.length !== numLayers) {
    throw new ModelConfigError(`config.json field layer_types must be a list of num_hidden_layers (${numLayers}) layer types`);
  }
  return types.map((t, i) => {
    if (t === "full_attention") return "full";
    if (t === "sliding_attention") return "sliding";
    throw new ModelConfigError(
      `unsupported layer_types[${i}] ${JSON.stringify(t)}; supported: full_attention, sliding_attention`,
    );
  });
}

/** The spec's fields: no window when no layer slides; layer_types only when the layers differ. */
export function windowFields(window: number, types: LayerKind[]): Pick<ModelSpec, "sliding_window" | "layer_types"> {
  if (window === 0 || !types.includes("sliding")) return { sliding_window: 0 };
  if (!types.includes("full")) return { sliding_window: window };
  return { sliding_window: window, layer_types: types };
}

/**
 * Qwen2 / Qwen2-MoE / Qwen3 / Qwen3-MoE: a window only with use_sliding_window, on layers
 * i >= max_window_layers (as Qwen2Config builds layer_types).
 */
export function qwenWindow(cfg: Json, numLayers: number): Pick<ModelSpec, "sliding_window" | "layer_types"> {
  if (cfg.use_sliding_window !== true) return { sliding_window: 0 };
  const firstSliding = optionalInt(cfg, "max_window_layers", 0) ?? 28;
  return windowFields(readWindow(cfg, 4096), readLayerTypes(cfg, numLayers, (i) => (i >= firstSliding ? "sliding" : "full")));
}
