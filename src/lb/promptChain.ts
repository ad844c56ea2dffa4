/**
 * PromptChain: one prompt's block hashes as the replicas would compute them, made lazily and only
 * as far as some replica's cache matches (+1 block), per block size. The hashing is the engine's
 * own (engine/kvCache/blockHash.ts): one definition, so a front end and a replica agree on every
 * hash, cache salt included. Cost: 30-60 ns per token hashed (bench/results/block-hash.json).
 */
import type { BlockHash } from "../engine/kvCache/blockHash";
import { chainBlockHashes } from "../engine/kvCache/blockHash";
import type { KvBlockIndex } from "../engine/kvCache/kvBlockIndex";

/** What routing needs of a request to match it against replicas' caches. */
export interface RouteQuery {
  promptIds: readonly number[];
  /** The request's cache salt ("" = none): it enters the first block's hash. */
  cacheSalt: string;
  /** False when the replica would not look the prompt up (it asks for prompt logprobs). */
  cacheable: boolean;
}

export class PromptChain {
  private readonly tokens: Int32Array;
  private readonly memo = new Map<number, BlockHash[]>();

  constructor(private readonly query: RouteQuery) {
    this.tokens = Int32Array.from(query.promptIds);
  }

  /**
   * Prompt tokens `index`'s replica would find cached: its longest run of leading full blocks, of
   * those a hit may cover (the engine recomputes at least the last prompt token).
   */
  cachedTokens(index: KvBlockIndex): number {
    const bs = index.blockSize;
    if (!this.query.cacheable || index.size === 0 || bs === 0) return 0;
    const max = Math.floor((this.tokens.length - 1) / bs);
    let memo = this.memo.get(bs);
    if (!memo) this.memo.set(bs, (memo = []));
    let k = 0;
    while (k < max) {
      if (k === memo.length) chainBlockHashes(this.tokens, bs, k + 1, this.query.cacheSalt, memo);
      if (!index.has(memo[k]!)) break;
      k++;
    }
    return k * bs;
  }
}
