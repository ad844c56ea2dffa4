/** Helpers for the splitters of fused HF tensors (types.ts). */
import { ModelLoadError } from "../errors";

/** Throws ModelLoadError unless `shape` equals `want`; mapWeights prefixes the tensor's name. */
export function checkShape(shape: number[], want: number[]): void {
  if (shape.length !== want.length || shape.some((d, i) => d !== want[i])) {
    throw new ModelLoadError(`has shape [${shape.join(", ")}], config.json implies [${want.join(", ")}]`);
  }
}
