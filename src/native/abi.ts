/**
 * The ABI contract between this binding and libfastgen: the version it was written for, and the
 * fields it writes into each struct of fastgen.h. Byte offsets are never written here: the
 * library reports them (fg_abi_layout, built from one list in libfastgen/src/core/abi_layout.cpp
 * that static_asserts tie to the structs), and lib.ts refuses a library whose version or field
 * list differs from this file's, naming both.
 */
import { FastgenError, Status } from "./errors";

/** FG_ABI_VERSION of the fastgen.h this binding is written against. */
export const ABI_VERSION = 10;

export type FieldType = "i32" | "u64" | "f32" | "ptr";

/** Per struct, its fields in declaration order with their types: what structs.ts writes. */
export const BINDING_STRUCTS = {
  fg_batch: {
    num_tokens: "i32", num_seqs: "i32", token_ids: "ptr", positions: "ptr", cu_seqlens: "ptr",
    context_lens: "ptr", block_indptr: "ptr", block_indices: "ptr", num_rows: "i32",
    num_masks: "i32", row_indptr: "ptr", row_tokens: "ptr", row_targets: "ptr", row_masks: "ptr",
    masks: "ptr", temperature: "ptr", top_p: "ptr", top_k: "ptr", min_p: "ptr", seed: "ptr",
    presence_penalty: "ptr", frequency_penalty: "ptr", repetition_penalty: "ptr",
    penalty_indptr: "ptr", penalty_ids: "ptr", penalty_prompt_lens: "ptr", penalty_slots: "ptr",
    penalty_slot_keep: "ptr", logit_bias_indptr: "ptr", logit_bias_ids: "ptr", logit_bias_values: "ptr", num_logprobs: "i32",
    _reserved: "i32",
  },
  fg_step_output: { ids: "ptr", logprobs: "ptr", top_ids: "ptr", top_logprobs: "ptr", logits: "ptr" },
  fg_step_late: { num_masks: "i32", _reserved: "i32", row_masks: "ptr", masks: "ptr" },
  fg_kv_config: {
    block_size: "i32", num_blocks: "i32", memory_fraction: "f32", max_kv_bytes: "u64", kv_dtype: "i32",
    _reserved: "i32", k_scales: "ptr", v_scales: "ptr",
  },
  fg_engine_info: {
    num_blocks: "i32", block_size: "i32", vocab_size: "i32", max_position_embeddings: "i32",
    backend: "i32", num_threads: "i32", weight_bytes: "u64", kv_bytes: "u64",
  },
} as const satisfies Record<string, Record<string, FieldType>>;

export type StructName = keyof typeof BINDING_STRUCTS;
export type FieldOf<S extends StructName> = keyof (typeof BINDING_STRUCTS)[S];

/** One struct as the library lays it out: sizeof and each field's byte offset. */
export interface StructLayout<S extends StructName> {
  size: number;
  offset: Record<FieldOf<S>, number>;
}
export type AbiLayout = { [S in StructName]: StructLayout<S> };

function mismatch(path: string, what: string): never {
  throw new FastgenError(Status.UNSUPPORTED,
    `libfastgen at ${path} does not match this binding: ${what} (rebuild it with \`bun run build\`, or point FASTGEN_LIB at a build of this checkout)`);
}

/** Throws unless the library's FG_ABI_VERSION is this binding's. */
export function checkAbiVersion(found: number, path: string, expected = ABI_VERSION): void {
  if (found !== expected) mismatch(path, `its ABI version is ${found}, this binding needs ${expected}`);
}

/**
 * Parses fg_abi_layout()'s JSON and checks it against `binding` (BINDING_STRUCTS): the same
 * structs, the same field names in the same order, the same types. Returns the offsets.
 */
export function parseAbiLayout(json: string, path: string,
  binding: Record<string, Record<string, FieldType>> = BINDING_STRUCTS): AbiLayout {
  const lib = JSON.parse(json) as Record<string, { size: number; fields: [string, number, FieldType][] }>;
  const out: Record<string, { size: number; offset: Record<string, number> }> = {};
  for (const [name, fields] of Object.entries(binding)) {
    const s = lib[name];
    if (!s) mismatch(path, `it has no struct ${name}`);
    const want = Object.entries(fields);
    const have = s.fields;
    for (let i = 0; i < Math.max(want.length, have.length); i++) {
      const w = want[i], h = have[i];
      if (!h) mismatch(path, `its ${name} has no field ${w![0]} (${w![1]})`);
      if (!w) mismatch(path, `its ${name} has field ${h[0]} (${h[2]}) that this binding does not write`);
      if (w[0] !== h[0] || w[1] !== h[2])
        mismatch(path, `field ${i} of ${name} is ${h[0]} (${h[2]}) in the library, ${w[0]} (${w[1]}) in this binding`);
    }
    out[name] = { size: s.size, offset: Object.fromEntries(have.map(([f, off]) => [f, off])) };
  }
  return out as unknown as AbiLayout;
}
