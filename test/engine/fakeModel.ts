/**
 * A fake model for scheduler tests: deterministic, with a fake paged KV cache.
 *
 * step() writes every token of the pass into its slot (block table[p / bs], p % bs), then, for
 * each sampled row (a sequence's last, and the rows of a verified draft before it), reads the
 * context up to that row's token back THROUGH ITS BLOCK TABLE and hashes it. So the sampled id depends on what really sits in the cache: a wrong position,
 * context length, block table or a wrongly shared block changes the output. Rows may share
 * blocks (prefix caching) but never write the same one. A pass writes every row's tokens before
 * any row reads, as both backends do per layer.
 * The hash also mixes in the seed (temperature > 0) and the penalty ids, and honours logit
 * bias bans (<= -100) and each row's mask, so those arrays are checked too; penalty slots
 * (fg_batch penalty_slots) are kept as the library keeps them, so a list sent in pieces hashes
 * as the whole list, and a sampled row after its sequence's first counts the pass's tokens
 * between them (the drafts before it) as outputs, as the library does (fastgen.h).
 * reference() is the same model run one token at a time without any scheduler: the
 * unconstrained run every schedule must match.
 */
import type { StepBatch } from "../../src/engine/stepBatch";
import type { SampledRows } from "../../src/engine/stepper";

export const EOS = 0;
export const VOCAB = 64;
const MASK_WORDS = Math.ceil(VOCAB / 32);

export function mix(h: number, x: number): number {
  h ^= x + 0x9e3779b9 + (h << 6) + (h >>> 2);
  return Math.imul(h ^ (h >>> 15), 0x2c1b3c6d) >>> 0;
}

/** The token a row samples from hash `h`, skipping banned ids. */
export function sampleId(h: number, banned: (id: number) => boolean): number {
  let id = h % 37 === 0 ? EOS : 1 + (h % (VOCAB - 1));
  for (let tries = 0; tries < VOCAB && banned(id); tries++) id = (id + 1) % VOCAB;
  return id;
}

/** Hash of a context, plus seed and penalty ids when they apply. */
export function contextHash(tokens: ArrayLike<number>, seed: bigint, temperature: number, penaltyIds: ArrayLike<number> | null): number {
  let h = 2166136261;
  for (let i = 0; i < tokens.length; i++) h = mix(h, tokens[i]!);
  if (temperature > 0) h = mix(h, Number(seed & 0xffffffffn));
  if (penaltyIds !== null) {
    let sum = 0;
    for (let i = 0; i < penaltyIds.length; i++) sum = (sum + penaltyIds[i]! * 31 + 7) >>> 0;
    h = mix(mix(h, sum), penaltyIds.length);
  }
  return h;
}

export class FakeModel {
  private readonly kv: Int32Array;
  /** Penalty slots: each one's ids, as libfastgen keeps them between passes. */
  private readonly penaltySlots = new Map<number, number[]>();
  steps = 0;

  constructor(
    numBlocks: number,
    private readonly blockSize: number,
  ) {
    this.kv = new Int32Array(numBlocks * blockSize).fill(-1);
  }

  /** Token at position `p` of block `block` (-1 = never written): the harness checks rollback with it. */
  slot(block: number, p: number): number {
    return this.kv[block * this.blockSize + (p % this.blockSize)]!;
  }

  /** One forward pass; returns the sampled id of each sample row (-1 for scored rows). */
  step(b: StepBatch): SampledRows {
    this.steps++;
    const ns = b.contextLens.length;
    const bs = this.blockSize;
    const out = new Int32Array(b.rowIndptr[ns]!).fill(-1);
    const fail = (m: string) => {
      throw new Error(`fake model, pass ${this.steps}: ${m}`);
    };
    if (b.cuSeqlens[0] !== 0 || b.cuSeqlens[ns] !== b.tokenIds.length) fail("cuSeqlens do not span the tokens");
    if (b.positions.length !== b.tokenIds.length || b.blockIndptr[ns] !== b.blockIndices.length) fail("array lengths");
    const lists = this.penaltyLists(b, fail);
    // Rows may share blocks (prefix caching) but no two rows may write one.
    const written = new Set<number>();
    for (let s = 0; s < ns; s++) {
      const t0 = b.cuSeqlens[s]!;
      const n = b.cuSeqlens[s + 1]! - t0;
      const c = b.contextLens[s]!;
      const table = b.blockIndices.subarray(b.blockIndptr[s]!, b.blockIndptr[s + 1]!);
      if (n < 1) fail(`row ${s} has ${n} tokens`);
      if (table.length * bs < c + n) fail(`row ${s}: ${table.length} blocks for ${c + n} tokens`);
      for (let k = Math.floor(c / bs); k < Math.ceil((c + n) / bs); k++) {
        if (written.has(table[k]!)) fail(`block ${table[k]} is written by two rows`);
        written.add(table[k]!);
      }
      for (let j = 0; j < n; j++) {
        const p = c + j;
        if (b.positions[t0 + j] !== p) fail(`row ${s} token ${j}: position ${b.positions[t0 + j]} != ${p}`);
        this.kv[table[Math.floor(p / bs)]! * bs + (p % bs)] = b.tokenIds[t0 + j]!;
      }
      const last = b.rowIndptr[s + 1]! - 1;
      if (last < b.rowIndptr[s]! || (b.rowTargets && b.rowTargets[last]! >= 0)) continue;
      if (b.rowTokens[last] !== t0 + n - 1) fail(`row ${s}: its sampled row is not at its last token`);
      const pen = lists[s] ?? null;
      const usesPen = b.penaltyIndptr !== undefined &&
        (b.presencePenalty![s] !== 0 || b.frequencyPenalty![s] !== 0 || b.repetitionPenalty![s] !== 1);
      const banned = new Set<number>();
      if (b.logitBiasIndptr) {
        for (let k = b.logitBiasIndptr[s]!; k < b.logitBiasIndptr[s + 1]!; k++) {
          if (b.logitBiasValues![k]! <= -100) banned.add(b.logitBiasIds![k]!);
        }
      }
      // Every sampled row (several when a draft is verified) reads its context up to its own
      // token through the block table: the draw depends on the tokens before the position it predicts.
      let first = -1; // the token of the sequence's first sampled row
      for (let r = b.rowIndptr[s]!; r <= last; r++) {
        if (b.rowTargets && b.rowTargets[r]! >= 0) continue;
        const tok = b.rowTokens[r]!;
        if (first < 0) first = tok;
        if (tok < t0 || tok >= t0 + n) fail(`row ${s}: sample row ${r} is outside its tokens`);
        const end = c + (tok - t0) + 1;
        const ctx = new Int32Array(end);
        for (let p = 0; p < end; p++) {
          const v = this.kv[table[Math.floor(p / bs)]! * bs + (p % bs)]!;
          if (v < 0) fail(`row ${s} reads position ${p}, never written`);
          ctx[p] = v;
        }
        const rowPen = usesPen && tok > first ? [...Array.from(pen ?? []), ...b.tokenIds.subarray(first + 1, tok + 1)] : pen;
        const m = b.rowMasks?.[r] ?? -1;
        const allowed = (id: number) => m < 0 || ((b.masks![m * MASK_WORDS + (id >>> 5)]! >>> (id & 31)) & 1) === 1;
        out[r] = sampleId(contextHash(ctx, b.seed[s]!, b.temperature[s]!, usesPen ? rowPen : null), (id) => banned.has(id) || !allowed(id));
      }
    }
    return { rowIndptr: b.rowIndptr, ids: out };
  }

  /** Each sequence's whole penalty list: its CSR range, or its slot after keep + append. */
  private penaltyLists(b: StepBatch, fail: (m: string) => never): (ArrayLike<number> | undefined)[] {
    const ns = b.contextLens.length;
    const lists: (ArrayLike<number> | undefined)[] = [];
    if (!b.penaltyIndptr) return lists;
    const used = new Set<number>();
    for (let s = 0; s < ns; s++) {
      const sent = b.penaltyIds!.subarray(b.penaltyIndptr[s]!, b.penaltyIndptr[s + 1]!);
      const k = b.penaltySlots?.[s] ?? -1;
      if (k < 0) {
        lists.push(sent);
        continue;
      }
      if (used.has(k)) fail(`penalty slot ${k} used twice in one pass`);
      used.add(k);
      const held = this.penaltySlots.get(k) ?? [];
      const keep = b.penaltySlotKeep![s]!;
      if (keep > held.length) fail(`penalty slot ${k} keeps ${keep} of ${held.length} ids`);
      const list = [...held.slice(0, keep), ...sent];
      this.penaltySlots.set(k, list);
      lists.push(list);
    }
    return lists;
  }
}
