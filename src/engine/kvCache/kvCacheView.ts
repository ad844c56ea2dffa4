/**
 * What the rest of the engine sees of the KV pool: a sequence's block table, and the read-only
 * view the (pure) scheduler plans with. KvCacheManager (kvCacheManager.ts) implements both.
 */
import type { Sequence } from "../sequence";
import type { BlockHash } from "./blockHash";

/** A sequence's blocks, in position order; ids[0, length) are valid. */
export interface BlockTable {
  readonly ids: Int32Array;
  readonly length: number;
  /** Tokens the table was sized for (<= length * blockSize); the engine grows it at block edges. */
  readonly numTokens: number;
}

/** What the (pure) scheduler may read of the pool. */
export interface KvCacheView {
  readonly blockSize: number;
  readonly numBlocks: number;
  /** Blocks no sequence references (cached ones included: they are evictable). */
  readonly numFreeBlocks: number;
  /** Prefix caching on: full computed blocks are registered and may be hit. */
  readonly cachingEnabled: boolean;
  /** Blocks in the sequence's table (0 when it has none). */
  numBlocksHeld(seqId: number): number;
  table(seqId: number): BlockTable | undefined;
  /** Blocks needed to hold `numTokens` tokens. */
  blocksFor(numTokens: number): number;
  refCount(block: number): number;
  /** The cached block with this hash, or -1. */
  lookup(hash: BlockHash): number;
  /**
   * How many leading full blocks of `seq` a cache hit may cover: 0 with caching off or when it
   * asks for prompt logprobs (those positions must be computed, as vLLM does), else the blocks
   * before its last token (at least that token is recomputed, so the pass has a logit to sample).
   */
  cacheableBlocks(seq: Sequence): number;
  /** The hashes of `seq`'s first `numBlocks` full blocks. */
  hashes(seq: Sequence, numBlocks: number): readonly BlockHash[];
}
