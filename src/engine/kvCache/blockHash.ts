/**
 * Block hashes for prefix caching. A full block's hash chains on its parent's:
 *
 *   h(0) = sha256(salt-tag, salt, tokens[0, bs))        h(i) = sha256(h(i-1), tokens[i·bs, (i+1)·bs))
 *
 * so one hash names the whole prefix up to the end of its block, and equal hashes mean equal
 * prefixes. The request's cache salt (an extra key; an adapter id would join it) enters the first
 * block only: chaining carries it into every later one, so requests with different salts never
 * share a block.
 *
 * Why SHA-256 (Bun.CryptoHasher) and not a fast 64-bit hash (Bun.hash's wyhash/xxhash64):
 * a hit hands one request the KV another computed, so a collision is a correctness and isolation
 * bug, and with a non-cryptographic hash a client can construct one on purpose (vLLM moved its
 * default to SHA-256 for that reason). The price measured by bench/blockHash.ts: 30-60 ns per
 * token at block size 16 (xxHash64 ~5 ns), at most ~0.12 ms for a 2K-token prompt, once per
 * sequence, against a prefill of that prompt of tens of milliseconds or more.
 */
import type { Sequence } from "../sequence";

/** A block hash: base64 SHA-256 of the prefix through that block (Map keys compare by value). */
export type BlockHash = string;

/** Characters of a BlockHash: base64 of 32 bytes. */
const HASH_CHARS = 44;

/**
 * The bytes a chained block hashes, [parent's base64 (ASCII) | tokens], reused from block to
 * block; the tokens go in through an Int32Array view (44 is a multiple of 4), so hashing a block
 * makes no view of its own: with one per block (tokens, bytes, scratch) a chained hash cost
 * ~0.9 us, without ~0.35 us.
 */
let scratch = new Uint8Array(HASH_CHARS + 4 * 16);
let scratchTokens = new Int32Array(scratch.buffer, HASH_CHARS, 16);

/**
 * Copies tokens [start, start + blockSize) into the scratch (resized for blocks of that size) and
 * returns the scratch's token view: no view of the caller's buffer, which would be a new object.
 */
function blockToScratch(tokens: Int32Array, start: number, blockSize: number): Int32Array {
  if (scratchTokens.length !== blockSize) {
    scratch = new Uint8Array(HASH_CHARS + 4 * blockSize);
    scratchTokens = new Int32Array(scratch.buffer, HASH_CHARS, blockSize);
  }
  for (let j = 0; j < blockSize; j++) scratchTokens[j] = tokens[start + j]!;
  return scratchTokens;
}

/** The hash of the block `tokens`, chained from `parent` (null for the first block). */
export function hashBlock(parent: BlockHash | null, tokens: Int32Array, salt: string): BlockHash {
  if (parent === null) {
    // A tag keeps a first block with salt "x" apart from a later block whose parent hash is "x".
    const h = new Bun.CryptoHasher("sha256");
    h.update(`fastgen-block-v1\0${salt}\0`);
    h.update(tokens);
    return h.digest("base64");
  }
  return hashChained(parent, tokens, 0, tokens.length);
}

/**
 * A later block's hash: one shot over [parent | tokens[start, start + blockSize)], the same bytes
 * as update(parent) + update(tokens) (a base64 string is its ASCII bytes) at ~2/3 of the time.
 */
function hashChained(parent: BlockHash, tokens: Int32Array, start: number, blockSize: number): BlockHash {
  if (parent.length !== HASH_CHARS) {
    // Not one of ours (a caller's own string): the plain two-part hash.
    const h = new Bun.CryptoHasher("sha256");
    h.update(parent);
    h.update(tokens.subarray(start, start + blockSize));
    return h.digest("base64");
  }
  blockToScratch(tokens, start, blockSize);
  for (let i = 0; i < HASH_CHARS; i++) scratch[i] = parent.charCodeAt(i);
  return Bun.SHA256.hash(scratch, "base64");
}

/**
 * Extends `memo` (the hashes of `tokens`' first memo.length full blocks) to its first `numBlocks`
 * full blocks. The one definition of a prompt's chain: the engine hashes its sequences with it,
 * and the load balancer (cache-aware routing) hashes prompts with it to match replicas' caches.
 */
export function chainBlockHashes(tokens: Int32Array, blockSize: number, numBlocks: number, salt: string, memo: BlockHash[] = []): BlockHash[] {
  if (numBlocks * blockSize > tokens.length) throw new Error(`chainBlockHashes: ${tokens.length} tokens hold no full block ${numBlocks - 1}`);
  for (let i = memo.length; i < numBlocks; i++) {
    const start = i * blockSize;
    memo.push(i === 0 ? hashBlock(null, blockToScratch(tokens, 0, blockSize), salt) : hashChained(memo[i - 1]!, tokens, start, blockSize));
  }
  return memo;
}

/**
 * The hashes of `seq`'s first `numBlocks` full blocks (prompt + output tokens), extending the
 * sequence's memo: a sequence's tokens never change once written, so each block is hashed once
 * in its life, however often it is planned, preempted or readmitted.
 */
export function blockHashes(seq: Sequence, blockSize: number, numBlocks: number): readonly BlockHash[] {
  if (numBlocks * blockSize > seq.numTokens) throw new Error(`blockHashes: sequence ${seq.id} has no full block ${numBlocks - 1}`);
  if (seq.blockHashes.length >= numBlocks) return seq.blockHashes; // hashed before: no view, no call
  // Its buffer as is (no view): the chain reads only the first numBlocks blocks, all written.
  return chainBlockHashes(seq.tokenBuffer, blockSize, numBlocks, seq.params.cacheSalt, seq.blockHashes);
}
