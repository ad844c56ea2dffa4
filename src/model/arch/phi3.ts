/**
 * Phi-3 / Phi-3.5 / Phi-4 / Phi-4-mini (model_type "phi3"): the Llama block with fused q/k/v and
 * gate/up projections, no biases, LongRoPE for the 128k-context models, partial rotary in
 * Phi-4-mini (0.75).
 *
 *   model.layers.{i}.self_attn.qkv_proj [QD + 2 KVD, H]  -> layers.{i}.q (rows 0..QD), .k (next KVD), .v (last KVD)
 *   model.layers.{i}.mlp.gate_up_proj   [2 I, H]         -> layers.{i}.gate (rows 0..I), .up (next I)
 *   everything else as llama.ts (o_proj, down_proj, input/post_attention_layernorm, model.norm, lm_head)
 *
 * Phi3Attention slices q | k | v in that order; Phi3MLP chunks gate_up in two, gate first.
 */
import { checkKvHeads, gatedMlp, headDimOf, type Json, optionalBool, optionalInt, optionalNumber, requireInt } from "../configFields";
import type { ModelSpec } from "../../native/modelSpec";
import { readRope } from "../ropeConfig";
import { LLAMA_WEIGHTS } from "./llama";
import { checkShape } from "./split";
import { readWindow } from "./slidingLayers";
import { rmsRopeDecoder } from "./decoderBase";
import type { Architecture, SpecOptions, Splitter, TensorPiece } from "./types";

function toSpec(cfg: Json, arch: string, opts: SpecOptions): ModelSpec {
  const hidden = requireInt(cfg, "hidden_size");
  const heads = requireInt(cfg, "num_attention_heads");
  const kvHeads = optionalInt(cfg, "num_key_value_heads") ?? heads;
  checkKvHeads(heads, kvHeads);
  const headDim = headDimOf(cfg, hidden, heads);
  const rope = readRope(cfg, {
    maxPositions: optionalInt(cfg, "max_position_embeddings") ?? 4096,
    headDim,
    servedLength: opts.maxModelLen,
    longropeAliases: true,
  });
  return {
    ...rmsRopeDecoder(arch, {
      vocab: requireInt(cfg, "vocab_size"), hidden, intermediate: requireInt(cfg, "intermediate_size"),
      layers: requireInt(cfg, "num_hidden_layers"), heads, kvHeads, headDim,
    }, rope, optionalNumber(cfg, "rms_norm_eps") ?? 1e-5),
    sliding_window: readWindow(cfg, 0),
    qkv_bias: false,
    o_bias: false,
    mlp_bias: false,
    lm_head_bias: false,
    mlp: gatedMlp(cfg.hidden_act ?? "silu", "hidden_act"),
    layout: "sequential",
    tie_word_embeddings: optionalBool(cfg, "tie_word_embeddings") ?? false,
    num_experts: 0,
    num_experts_per_tok: 0,
  };
}

/** Consecutive row blocks of one fused tensor, named stems[j] with rows[j] rows each. */
function rowBlocks(stems: string[], rows: (spec: ModelSpec) => number[]): Splitter {
  return {
    stems,
    split(spec, param, shape, prefix) {
      const counts = rows(spec);
      const total = counts.reduce((a, b) => a + b, 0);
      checkShape(shape, param === "weight" ? [total, spec.hidden_size] : [total]);
      const suffix = param === "bias" ? "_bias" : "";
      let at = 0;
      return stems.map((stem, j): TensorPiece => {
        const n = counts[j]!;
        const piece: TensorPiece = { name: `${prefix}${stem}${suffix}`, shape: param === "weight" ? [n, spec.hidden_size] : [n], rows: [[at, n]] };
        at += n;
        return piece;
      });
    },
  };
}

const qkvProj = rowBlocks(["q", "k", "v"], (s) => [s.num_heads * s.head_dim, s.num_kv_heads * s.head_dim, s.num_kv_heads * s.head_dim]);
const gateUpProj = rowBlocks(["gate", "up"], (s) => [s.intermediate_size, s.intermediate_size]);

export const phi3: Architecture = {
  toSpec,
  weights: () => {
    const { "self_attn.q_proj": _q, "self_attn.k_proj": _k, "self_attn.v_proj": _v, "mlp.gate_proj": _g, "mlp.up_proj": _u, ...rest } =
      LLAMA_WEIGHTS.layer;
    return { ...LLAMA_WEIGHTS, layer: { ...rest, "self_attn.qkv_proj": qkvProj, "mlp.gate_up_proj": gateUpProj } };
  },
};
