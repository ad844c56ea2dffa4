/**
 * vLLM's allowed_token_ids: a sequence samples only from a fixed set of ids. The set becomes one
 * allowed-token bitmask (rowMasks.ts), built on first use and shared by every sequence whose
 * params hold the same id list (the n samples of a request).
 */
import type { RowMaskSource } from "./rowMasks";
import { maskWords } from "./rowMasks";
import type { Sequence } from "./sequence";

/** The bitmask allowing exactly `ids` (ids at or past `vocab` are left out). */
export function allowedTokenMask(ids: readonly number[], vocab: number): Uint32Array {
  const mask = new Uint32Array(maskWords(vocab));
  for (const id of ids) if (id >= 0 && id < vocab) mask[id >>> 5] = mask[id >>> 5]! | (1 << (id & 31));
  return mask;
}

/** Why `ids` cannot be an allowed set over `vocab` ids, or null when it can. */
export function allowedTokenIdsProblem(ids: readonly number[], vocab: number): string | null {
  if (ids.length === 0) return "allowed_token_ids must not be empty";
  const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= vocab);
  return bad === undefined ? null : `allowed_token_ids holds ${bad}, outside the vocabulary (0..${vocab - 1})`;
}

/** The static allowed set of each sequence whose params have one. */
export class AllowedTokenMasks implements RowMaskSource {
  private readonly cache = new WeakMap<readonly number[], Uint32Array>();

  constructor(private readonly vocab: number) {}

  maskFor(seq: Sequence): Uint32Array | null {
    const ids = seq.params.allowedTokenIds;
    if (ids === null) return null;
    let mask = this.cache.get(ids);
    if (mask === undefined) {
      mask = allowedTokenMask(ids, this.vocab);
      this.cache.set(ids, mask);
    }
    return mask;
  }
}
