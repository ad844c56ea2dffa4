/**
 * Routed experts shared by the MoE families (Mixtral, Qwen2-MoE, Qwen3-MoE): transformers 5
 * stores each layer's experts stacked in two bare parameters instead of one module per expert.
 *
 *   mlp.experts.gate_up_proj [E, 2 MI, H]  -> experts.{e}.gate (rows e*2MI ..+MI), .up (the next MI)
 *   mlp.experts.down_proj    [E, H, MI]    -> experts.{e}.down
 *
 * MI is the spec's moe_intermediate_size (intermediate_size when absent, as in Mixtral).
 */
import { ModelConfigError } from "../configFields";
import { ModelLoadError } from "../errors";
import type { ModelSpec } from "../../native/modelSpec";
import { checkShape } from "./split";
import type { Splitter, TensorPiece } from "./types";

const expertWidth = (spec: ModelSpec) => spec.moe_intermediate_size ?? spec.intermediate_size;

export const stackedGateUp: Splitter = {
  bare: true,
  stems: ["experts.{e}.gate", "experts.{e}.up"],
  split(spec, param, shape, prefix) {
    const E = spec.num_experts ?? 0, MI = expertWidth(spec), H = spec.hidden_size;
    if (param !== "weight") throw new ModelLoadError("has a bias, which stacked experts do not");
    checkShape(shape, [E, 2 * MI, H]);
    const out: TensorPiece[] = [];
    for (let e = 0; e < E; e++) {
      out.push({ name: `${prefix}experts.${e}.gate`, shape: [MI, H], rows: [[e * 2 * MI, MI]] });
      out.push({ name: `${prefix}experts.${e}.up`, shape: [MI, H], rows: [[e * 2 * MI + MI, MI]] });
    }
    return out;
  },
};

export const stackedDown: Splitter = {
  bare: true,
  stems: ["experts.{e}.down"],
  split(spec, param, shape, prefix) {
    const E = spec.num_experts ?? 0, MI = expertWidth(spec), H = spec.hidden_size;
    if (param !== "weight") throw new ModelLoadError("has a bias, which stacked experts do not");
    checkShape(shape, [E, H, MI]);
    return Array.from({ length: E }, (_, e) => ({ name: `${prefix}experts.${e}.down`, shape: [H, MI], rows: [[e * H, H]] }));
  },
};

/** Top-k must pick among the experts there are. */
export function checkTopK(topK: number, numExperts: number, field: string): void {
  if (topK > numExperts) {
    throw new ModelConfigError(`num_experts_per_tok (${topK}) must not exceed ${field} (${numExperts})`);
  }
}
