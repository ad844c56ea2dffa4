/**
 * StepBatchBuilder: a committed plan + the block tables → the StepBatch of one forward pass.
 * It runs every step, so its arrays are allocated once and grown (doubled) only when a pass
 * outgrows them; the batch holds views of them, valid until the next build().
 *
 * Sample rows (fg_batch's CSR per sequence): a sequence that asked for prompt logprobs gets a
 * scored row at each of its prompt tokens whose next prompt id is known (target = that id), and
 * a sequence whose pass reaches its last token gets a sampled row there (target -1), always its
 * last row. Recomputed chunks after a preemption score their prompt tokens again. A decode
 * carrying a speculative draft of k tokens (plan entry .draft) adds them after its token and
 * gets k + 1 sampled rows, one per position, each drawn by (seed, the position it predicts).
 * Rows differ only where the tokens before them do: the library counts a row's draft tokens into
 * its penalties (fastgen.h), and bad-word bans that depend on the output reach each row as a
 * mask (badWords.ts: BadWordMasks, so a draft of such a sequence needs the mask builder); the
 * logit bias and min_tokens bans are per sequence, alike for its rows (the speculator keeps a
 * draft on one side of min_tokens: speculative/eligibility.ts).
 *
 * Penalty and logit-bias CSRs are built only when some sequence with a sampled row uses them,
 * and list ids for those sequences only (other sequences sample nothing):
 *   penalties:  output ids (OpenAI presence/frequency), and prompt ids first too when the
 *               row has a repetition penalty (HF semantics); with penalty slots, only the ids
 *               the sequence's slot in the engine does not hold yet;
 *   logit bias: the request's logit_bias, plus -inf on EOS and stop ids below min_tokens.
 * penaltyPromptLens says how many leading ids of a row's list are prompt ids, so presence and
 * frequency count outputs only (vLLM semantics) while repetition sees both.
 */
import { alwaysBannedIds, bannedBadWordIds, hasPrefixedWord } from "./badWords";
import type { BlockTable } from "./kvCache/kvCacheManager";
import { BlockCsr } from "./blockCsr";
import type { PenaltySlots } from "./penaltySlots";
import type { RowMaskBuilder } from "./rowMasks";
import type { Plan } from "./scheduler/types";
import { usesPenalties } from "./samplingParams";
import type { StepBatch } from "./stepBatch";
import { bannedStopIds } from "./stop";
import type { LateMasks } from "../native/types";

/** The block tables a batch reads (KvCacheManager is one). */
export interface BlockTables {
  readonly blockSize: number;
  table(seqId: number): BlockTable | undefined;
}

type Typed = Int32Array | Float32Array | BigUint64Array;

/** Seeds are written as two uint32 halves, which is only right on a little-endian host. */
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** Returns `a` when it holds `n`, else a zeroed array of the same type at least twice as big. */
function fit<T extends Typed>(a: T, n: number): T {
  if (a.length >= n) return a;
  const Ctor = a.constructor as new (len: number) => T;
  return new Ctor(Math.max(n, a.length * 2));
}

/** Builds each step's StepBatch into buffers it keeps between steps. */
export class StepBatchBuilder {
  private tokenIds = new Int32Array(1024);
  private positions = new Int32Array(1024);
  private readonly csr = new BlockCsr();
  private cuSeqlens = new Int32Array(257);
  private contextLens = new Int32Array(256);
  private rowIndptr = new Int32Array(257);
  private rowTokens = new Int32Array(1024);
  private rowTargets = new Int32Array(1024);
  private temperature = new Float32Array(256);
  private topP = new Float32Array(256);
  private topK = new Int32Array(256);
  private minP = new Float32Array(256);
  private seed = new BigUint64Array(256);
  private seedWords = new Uint32Array(this.seed.buffer);
  private presence = new Float32Array(256);
  private frequency = new Float32Array(256);
  private repetition = new Float32Array(256);
  private penaltyIndptr = new Int32Array(257);
  private penaltyIds = new Int32Array(4096);
  private penaltyPromptLens = new Int32Array(256);
  private slot = new Int32Array(256);
  private slotKeep = new Int32Array(256);
  private biasIndptr = new Int32Array(257);
  private biasIds = new Int32Array(256);
  private biasValues = new Float32Array(256);

  /**
   * @param eosTokenIds banned (with stop ids) while a sequence is below its min_tokens
   * @param masks the allowed-token masks of sampled rows (rowMasks.ts); null = none
   * @param penaltySlots the engine's penalty slots (penaltySlots.ts): a pass then sends only
   *   each list's new ids; null = every list whole, every pass
   */
  constructor(
    private readonly eosTokenIds: readonly number[] = [],
    private readonly masks: RowMaskBuilder | null = null,
    private readonly penaltySlots: PenaltySlots | null = null,
  ) {}

  /**
   * Builds the pass for `plan`; every row's table must already cover context + n tokens. Without
   * `withMasks` the batch carries no masks: lateMasks() gives them once the pass is launched.
   */
  build(plan: Plan, blocks: BlockTables, withMasks = true): StepBatch {
    const entries = plan.entries;
    const ns = entries.length;
    this.ensureRows(ns);
    this.tokenIds = fit(this.tokenIds, plan.numTokens);
    this.positions = fit(this.positions, plan.numTokens);
    this.rowTokens = fit(this.rowTokens, plan.numTokens); // at most one row per token
    this.rowTargets = fit(this.rowTargets, plan.numTokens);
    const { tokenIds, positions, cuSeqlens, contextLens, rowIndptr, rowTokens, rowTargets, temperature, topP, topK, minP, seedWords } = this;
    let t = 0;
    let r = 0;
    let numLogprobs = 0;
    let returnLogits = false;
    let anyPenalty = false;
    let anyBias = false;
    let anyScored = false;
    cuSeqlens[0] = 0;
    rowIndptr[0] = 0;
    for (let i = 0; i < ns; i++) {
      const e = entries[i]!;
      const seq = e.seq;
      const c = e.contextLen;
      const n = e.numTokens;
      const k = e.draft === undefined ? 0 : e.draft.length;
      if (n === 1) tokenIds[t] = seq.tokenAt(c);
      else seq.copyTokens(c, c + n - k, tokenIds, t);
      if (k > 0) tokenIds.set(e.draft!, t + n - k);
      for (let j = 0; j < n; j++) positions[t + j] = c + j;
      t += n;
      cuSeqlens[i + 1] = t;
      contextLens[i] = c;

      const p = seq.params;
      temperature[i] = p.temperature;
      topP[i] = p.topP;
      topK[i] = p.topK;
      minP[i] = p.minP;
      if (LITTLE_ENDIAN) {
        seedWords[2 * i] = p.seedLow;
        seedWords[2 * i + 1] = p.seedHigh;
      } else this.seed[i] = p.seed;
      if (p.promptLogprobs >= 0 && c + 1 < seq.numPromptTokens) {
        if (p.promptLogprobs > numLogprobs) numLogprobs = p.promptLogprobs;
        // scored rows: each token at position pos whose next prompt id (pos + 1) is known
        const end = Math.min(c + n, seq.numPromptTokens - 1);
        const promptIds = seq.promptIds;
        anyScored = true;
        for (let pos = c; pos < end; pos++) {
          rowTokens[r] = t - n + (pos - c);
          rowTargets[r++] = promptIds[pos + 1]!;
        }
      }
      if (e.wantsToken) {
        // Its last token, and before it each draft token: k + 1 sampled rows, in position order.
        for (let j = k; j >= 0; j--) {
          rowTokens[r] = t - 1 - j;
          rowTargets[r++] = -1;
        }
        if (p.logprobs > numLogprobs) numLogprobs = p.logprobs;
        if (p.returnLogits) returnLogits = true;
        if (!anyPenalty && usesPenalties(p)) anyPenalty = true;
        if (!anyBias && (p.hasBiasList || (p.minTokens > 0 && seq.numOutputTokens < p.minTokens))) anyBias = true;
        if (k > 0 && this.masks === null && p.badWords.length > 0 && hasPrefixedWord(p.badWords)) {
          throw new Error(`StepBatchBuilder: sequence ${seq.id}'s draft needs per-row bad_words masks, and this builder has no mask builder`);
        }
      }
      rowIndptr[i + 1] = r;
    }
    const nb = this.fillBlockTables(plan, blocks);
    const csr = this.csr;
    const batch: StepBatch = {
      tokenIds: tokenIds.subarray(0, t),
      positions: positions.subarray(0, t),
      cuSeqlens: cuSeqlens.subarray(0, ns + 1),
      contextLens: contextLens.subarray(0, ns),
      blockIndptr: csr.indptr.subarray(0, ns + 1),
      blockIndices: csr.indices(nb),
      rowIndptr: rowIndptr.subarray(0, ns + 1),
      rowTokens: rowTokens.subarray(0, r),
      temperature: temperature.subarray(0, ns),
      topP: topP.subarray(0, ns),
      topK: topK.subarray(0, ns),
      minP: minP.subarray(0, ns),
      seed: this.seed.subarray(0, ns),
      numLogprobs,
      returnLogits,
    };
    if (anyScored) batch.rowTargets = rowTargets.subarray(0, r); // absent: every row sampled
    if (anyPenalty) this.addPenalties(plan, batch);
    if (anyBias) this.addLogitBias(plan, batch);
    if (withMasks) this.masks?.apply(plan, batch);
    return batch;
  }

  /** The rows' masks of a batch built without them (null: none constrained). */
  lateMasks(plan: Plan, batch: StepBatch): LateMasks | null {
    return this.masks?.masksOf(plan, batch) ?? null;
  }

  /** The CSR of the blocks covering each row's context + n tokens. */
  private fillBlockTables(plan: Plan, blocks: BlockTables): number {
    const entries = plan.entries;
    const bs = blocks.blockSize;
    const csr = this.csr;
    csr.begin(entries.length);
    let nb = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const table = blocks.table(e.seq.id);
      const need = Math.ceil((e.contextLen + e.numTokens) / bs);
      if (table === undefined || table.length < need) {
        throw new Error(`StepBatchBuilder: sequence ${e.seq.id} has ${table?.length ?? 0} blocks, needs ${need}`);
      }
      nb = csr.addRow(i, table, need, nb);
    }
    csr.end();
    return nb;
  }

  private ensureRows(ns: number): void {
    this.cuSeqlens = fit(this.cuSeqlens, ns + 1);
    this.penaltyIndptr = fit(this.penaltyIndptr, ns + 1);
    this.biasIndptr = fit(this.biasIndptr, ns + 1);
    this.contextLens = fit(this.contextLens, ns);
    this.rowIndptr = fit(this.rowIndptr, ns + 1);
    this.temperature = fit(this.temperature, ns);
    this.topP = fit(this.topP, ns);
    this.topK = fit(this.topK, ns);
    this.minP = fit(this.minP, ns);
    if (this.seed.length < ns) {
      this.seed = fit(this.seed, ns);
      this.seedWords = new Uint32Array(this.seed.buffer);
    }
    this.presence = fit(this.presence, ns);
    this.frequency = fit(this.frequency, ns);
    this.repetition = fit(this.repetition, ns);
    this.penaltyPromptLens = fit(this.penaltyPromptLens, ns);
    this.slot = fit(this.slot, ns);
    this.slotKeep = fit(this.slotKeep, ns);
  }

  private addPenalties(plan: Plan, batch: StepBatch): void {
    const entries = plan.entries;
    const slots = this.penaltySlots;
    const { presence, frequency, repetition, penaltyPromptLens, slot, slotKeep, penaltyIndptr: indptr } = this;
    let ids = this.penaltyIds;
    let k = 0;
    indptr[0] = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      const seq = e.seq;
      const p = seq.params;
      presence[i] = p.presencePenalty;
      frequency[i] = p.frequencyPenalty;
      repetition[i] = p.repetitionPenalty;
      penaltyPromptLens[i] = 0;
      slot[i] = -1;
      slotKeep[i] = 0;
      if (e.wantsToken && usesPenalties(p)) {
        // Its list's first token, or with a slot the first one the slot does not hold yet.
        let from = p.repetitionPenalty !== 1 ? 0 : seq.numPromptTokens;
        if (slots !== null) {
          const sync = slots.sync(seq.id, from, seq.numTokens);
          slot[i] = sync.slot;
          slotKeep[i] = sync.keep;
          from = sync.start;
        }
        const n = seq.numTokens - from;
        if (k + n > ids.length) ids = this.penaltyIds = grow(ids, k, k + n);
        seq.copyTokens(from, seq.numTokens, ids, k);
        k += n;
        penaltyPromptLens[i] = Math.max(0, seq.numPromptTokens - from);
      }
      indptr[i + 1] = k;
    }
    const ns = entries.length;
    batch.presencePenalty = this.presence.subarray(0, ns);
    batch.frequencyPenalty = this.frequency.subarray(0, ns);
    batch.repetitionPenalty = this.repetition.subarray(0, ns);
    batch.penaltyIndptr = indptr.subarray(0, ns + 1);
    batch.penaltyIds = ids.subarray(0, k);
    batch.penaltyPromptLens = this.penaltyPromptLens.subarray(0, ns);
    if (slots !== null) {
      batch.penaltySlots = this.slot.subarray(0, ns);
      batch.penaltySlotKeep = this.slotKeep.subarray(0, ns);
    }
  }

  private addLogitBias(plan: Plan, batch: StepBatch): void {
    const entries = plan.entries;
    const indptr = this.biasIndptr;
    let ids = this.biasIds;
    let values = this.biasValues;
    let k = 0;
    indptr[0] = 0;
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.wantsToken) {
        const p = e.seq.params;
        const stopBans = bannedStopIds(e.seq, this.eosTokenIds);
        // With a draft, only the bans alike for every row; the others are its rows' masks.
        const wordBans = e.draft === undefined ? bannedBadWordIds(p.badWords, e.seq.outputIds) : alwaysBannedIds(p.badWords);
        const banned = wordBans.length === 0 ? stopBans : [...stopBans, ...wordBans];
        const n = p.logitBiasIds.length + banned.length;
        if (k + n > ids.length) {
          ids = this.biasIds = grow(ids, k, k + n);
          values = this.biasValues = grow(values, k, k + n);
        }
        // Bias lists are short: a loop beats set()'s per-call cost.
        const bIds = p.logitBiasIds;
        const bValues = p.logitBiasValues;
        for (let j = 0; j < bIds.length; j++) {
          ids[k] = bIds[j]!;
          values[k++] = bValues[j]!;
        }
        for (let j = 0; j < banned.length; j++) {
          ids[k] = banned[j]!;
          values[k++] = -Infinity;
        }
      }
      indptr[i + 1] = k;
    }
    batch.logitBiasIndptr = indptr.subarray(0, entries.length + 1);
    batch.logitBiasIds = ids.subarray(0, k);
    batch.logitBiasValues = values.subarray(0, k);
  }
}

/** A bigger copy of `a` keeping its first `keep` elements. */
function grow<T extends Int32Array | Float32Array>(a: T, keep: number, n: number): T {
  const Ctor = a.constructor as new (len: number) => T;
  const b = new Ctor(Math.max(n, a.length * 2));
  b.set(a.subarray(0, keep));
  return b;
}

