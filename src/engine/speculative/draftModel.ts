/**
 * Draft-model proposals: a small model of the same vocabulary, run by the same native engine
 * type on its own KV pool. One proposal of up to k tokens per sequence per target pass, made in
 * k draft passes over all the sequences at once:
 *
 *   pass 0:    each sequence's tokens the draft has not computed yet (the last accepted tokens
 *              and the target's corrected one; a whole prompt the first time) → draft token 0
 *   pass j>0:  draft token j-1 of every sequence still drafting → draft token j
 *
 * The draft samples with the request's own parameters, seed and penalties (its list: the
 * sequence's, then the tokens drafted so far, as the target's verification rows count them), and
 * the contract seeds a draw by (seed, the position it predicts): where the draft's distribution
 * equals the target's, its draw IS the target's, so a draft equal to the target is accepted 100%
 * (greedy or sampled, penalized or not) — the device bench's ceiling. The draft also samples
 * under the request's constraints, as the target's rows do: the logit bias, the -inf bans of EOS
 * and stop ids below min_tokens, bad_words (a row's bans after the output and the tokens drafted
 * before it) and allowed_token_ids (a static allowed-token mask); without them a draft equal to
 * the target would propose tokens the target can never sample, and be cut there.
 * Penalty lists go whole each draft pass (no penalty slots on the draft's engine): O(list) host
 * work per penalized sequence per drafted token. Its KV is private and needs no rollback of blocks: at the next
 * proposal its valid prefix is where its drafted tokens stop being the sequence's, and the
 * passes from there overwrite the rest.
 */
import { AllowedTokenMasks } from "../allowedTokens";
import { bannedBadWordIds } from "../badWords";
import type { EngineOptions } from "../options";
import { KvCacheManager } from "../kvCache/kvCacheManager";
import type { Sequence } from "../sequence";
import { NativeEngine } from "../../native";
import { usesPenalties } from "../samplingParams";
import type { StepBatch } from "../stepBatch";
import { bannedStopIds } from "../stop";
import { loadWeights, openModelDir } from "../../model/load";
import type { ProposalRequest, Proposer } from "./proposer";
import { NO_PROPOSAL } from "./proposer";
import { envVar } from "../../envVars";

/** The draft's view of one target sequence. */
interface DraftState {
  /** Positions [0, computed) hold draft KV: the sequence's tokens before `base`, `drafted` after. */
  computed: number;
  base: number;
  drafted: number[];
}

/** One row of a draft pass. */
interface Row {
  readonly seq: Sequence;
  readonly index: number;
  readonly context: number;
  readonly tokens: ArrayLike<number>;
  /** The tokens drafted for it so far in this proposal (its row follows them). */
  readonly drafted: readonly number[];
}

export class DraftModelProposer implements Proposer {
  readonly method = "draft";
  private readonly state = new Map<number, DraftState>();
  private readonly kv: KvCacheManager;
  private readonly allowed: AllowedTokenMasks;

  private constructor(private readonly native: NativeEngine, private readonly eosTokenIds: readonly number[]) {
    const info = native.info();
    this.kv = new KvCacheManager(info.numBlocks, info.blockSize, false);
    this.allowed = new AllowedTokenMasks(info.vocabSize);
  }

  /** Loads the draft model in `dir`; its vocabulary must be the target's (eosTokenIds: the target tokenizer's). */
  static load(dir: string, engine: EngineOptions, targetVocab: number, eosTokenIds: readonly number[] = []): DraftModelProposer {
    const model = openModelDir(dir, { maxModelLen: engine.maxModelLen });
    const native = NativeEngine.create(model.spec, engine.backend ?? (envVar("FASTGEN_BACKEND") === "cuda" ? "cuda" : "cpu"));
    try {
      loadWeights(model, native);
      // The target sized its pool first; the draft takes a share of what is left.
      native.finalize({ blockSize: engine.blockSize, maxKvBytes: (engine.kvMemoryMiB * 2 ** 20) / 4, memoryFraction: engine.memoryFraction });
      const vocab = native.info().vocabSize;
      if (vocab !== targetVocab) throw new Error(`draft model ${dir} has a vocabulary of ${vocab}, the target ${targetVocab}`);
      return new DraftModelProposer(native, eosTokenIds);
    } catch (e) {
      native.destroy();
      throw e;
    } finally {
      model.close();
    }
  }

  propose(requests: readonly ProposalRequest[]): Int32Array[] {
    const out = requests.map(() => [] as number[]);
    let rows: Row[] = [];
    requests.forEach(({ seq }, index) => {
      const st = this.state.get(seq.id) ?? { computed: 0, base: 0, drafted: [] };
      this.state.set(seq.id, st);
      // Draft KV stays valid where its tokens are the sequence's (accepted drafts); the rest is
      // recomputed. Whether the last draft was verified, cut by the budget or preempted, this holds.
      let from = Math.min(st.computed, st.base);
      while (from < st.computed && from < seq.numTokens && seq.tokenAt(from) === st.drafted[from - st.base]) from++;
      from = Math.min(from, seq.numTokens - 1);
      st.base = seq.numTokens;
      st.drafted = [];
      rows.push({ seq, index, context: from, tokens: seq.tokenIds.subarray(from), drafted: out[index]! });
    });
    for (let j = 0; rows.length > 0; j++) {
      rows = rows.filter((r) => this.reserve(r));
      if (rows.length === 0) break;
      const ids = this.native.step(this.batch(rows)).ids;
      const next: Row[] = [];
      rows.forEach((r, i) => {
        const st = this.state.get(r.seq.id)!;
        st.computed = r.context + r.tokens.length;
        st.drafted.push(ids[i]!);
        out[r.index]!.push(ids[i]!);
        if (out[r.index]!.length < requests[r.index]!.maxTokens) next.push({ ...r, context: r.context + r.tokens.length, tokens: [ids[i]!] });
      });
      rows = next;
    }
    return out.map((d) => (d.length > 0 ? Int32Array.from(d) : NO_PROPOSAL));
  }

  release(seqId: number): void {
    this.state.delete(seqId);
    this.kv.free(seqId);
  }

  destroy(): void {
    this.native.destroy();
  }

  /** Grows the row's table to cover its tokens; false (and the sequence's draft state dropped) when the pool is full. */
  private reserve(r: Row): boolean {
    const need = r.context + r.tokens.length;
    const t = this.kv.table(r.seq.id);
    const more = need - (t?.numTokens ?? 0);
    if (more <= 0) return true;
    const blocks = this.kv.blocksFor(need) - (t?.length ?? 0);
    if (blocks > this.kv.numFreeBlocks) {
      this.release(r.seq.id);
      return false;
    }
    if (t === undefined) this.kv.allocate(r.seq.id, need);
    else this.kv.append(r.seq.id, more);
    return true;
  }

  /** One draft pass: each row's tokens, sampled at its last one with its request's parameters. */
  private batch(rows: readonly Row[]): StepBatch {
    const n = rows.length;
    let total = 0;
    for (const r of rows) total += r.tokens.length;
    const b: StepBatch = {
      tokenIds: new Int32Array(total), positions: new Int32Array(total), cuSeqlens: new Int32Array(n + 1),
      contextLens: new Int32Array(n), blockIndptr: new Int32Array(n + 1), blockIndices: new Int32Array(0),
      rowIndptr: new Int32Array(n + 1), rowTokens: new Int32Array(n),
      temperature: new Float32Array(n), topP: new Float32Array(n), topK: new Int32Array(n), minP: new Float32Array(n),
      seed: new BigUint64Array(n), numLogprobs: 0, returnLogits: false,
    };
    const indices: number[] = [];
    let t = 0;
    rows.forEach((r, i) => {
      for (let j = 0; j < r.tokens.length; j++) {
        b.tokenIds[t] = r.tokens[j]!;
        b.positions[t++] = r.context + j;
      }
      b.cuSeqlens[i + 1] = t;
      b.contextLens[i] = r.context;
      const table = this.kv.table(r.seq.id)!;
      for (let k = 0; k < this.kv.blocksFor(r.context + r.tokens.length); k++) indices.push(table.ids[k]!);
      b.blockIndptr[i + 1] = indices.length;
      b.rowIndptr[i + 1] = i + 1;
      b.rowTokens[i] = t - 1;
      const p = r.seq.params;
      b.temperature[i] = p.temperature;
      b.topP[i] = p.topP;
      b.topK[i] = p.topK;
      b.minP[i] = p.minP;
      b.seed[i] = p.seed;
    });
    b.blockIndices = Int32Array.from(indices);
    if (rows.some((r) => usesPenalties(r.seq.params))) addPenalties(b, rows);
    this.addConstraints(b, rows);
    return b;
  }

  /**
   * The logit bias CSR (the request's bias, min_tokens' stop bans, the bad words the row's output
   * and drafted tokens complete) and the allowed-token masks, where some row has any.
   */
  private addConstraints(b: StepBatch, rows: readonly Row[]): void {
    const n = rows.length;
    const indptr = new Int32Array(n + 1), ids: number[] = [], values: number[] = [];
    rows.forEach((r, i) => {
      const p = r.seq.params;
      for (let j = 0; j < p.logitBiasIds.length; j++) ids.push(p.logitBiasIds[j]!), values.push(p.logitBiasValues[j]!);
      // The eligibility keeps a draft below min_tokens or at/after it as a whole: the bans of its first row hold for all.
      for (const id of bannedStopIds(r.seq, this.eosTokenIds)) ids.push(id), values.push(-Infinity);
      for (const id of bannedBadWordIds(p.badWords, r.seq.outputIds, r.drafted, r.drafted.length)) ids.push(id), values.push(-Infinity);
      indptr[i + 1] = ids.length;
    });
    if (ids.length > 0) {
      b.logitBiasIndptr = indptr;
      b.logitBiasIds = Int32Array.from(ids);
      b.logitBiasValues = Float32Array.from(values);
    }
    const masks = rows.map((r) => this.allowed.maskFor(r.seq));
    if (masks.every((m) => m === null)) return;
    const distinct = [...new Set(masks.filter((m): m is Uint32Array => m !== null))];
    const words = distinct[0]!.length;
    const all = new Uint32Array(distinct.length * words);
    distinct.forEach((m, k) => all.set(m, k * words));
    b.rowMasks = Int32Array.from(masks, (m) => (m === null ? -1 : distinct.indexOf(m)));
    b.masks = all;
  }
}

/**
 * Whole penalty lists of a draft pass: a penalized row's sequence's list (prompt ids first with a
 * repetition penalty), then the tokens drafted before its row.
 */
function addPenalties(b: StepBatch, rows: readonly Row[]): void {
  const n = rows.length;
  const indptr = new Int32Array(n + 1), promptLens = new Int32Array(n);
  const presence = new Float32Array(n), frequency = new Float32Array(n), repetition = new Float32Array(n).fill(1);
  const from = rows.map((r) => (r.seq.params.repetitionPenalty !== 1 ? 0 : r.seq.numPromptTokens));
  rows.forEach((r, i) => {
    const len = usesPenalties(r.seq.params) ? r.seq.numTokens - from[i]! + r.drafted.length : 0;
    indptr[i + 1] = indptr[i]! + len;
  });
  const ids = new Int32Array(indptr[n]!);
  rows.forEach((r, i) => {
    const p = r.seq.params;
    if (!usesPenalties(p)) return;
    presence[i] = p.presencePenalty;
    frequency[i] = p.frequencyPenalty;
    repetition[i] = p.repetitionPenalty;
    promptLens[i] = r.seq.numPromptTokens - from[i]!;
    r.seq.copyTokens(from[i]!, r.seq.numTokens, ids, indptr[i]!);
    ids.set(r.drafted, indptr[i]! + r.seq.numTokens - from[i]!);
  });
  b.presencePenalty = presence;
  b.frequencyPenalty = frequency;
  b.repetitionPenalty = repetition;
  b.penaltyIndptr = indptr;
  b.penaltyIds = ids;
  b.penaltyPromptLens = promptLens;
}
