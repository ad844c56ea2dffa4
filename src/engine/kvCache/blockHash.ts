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

/** The bytes a chained block hashes: its parent's base64 (ASCII) then its tokens; grown as needed. */
let scratch = new Uint8Array(44 + 4 * 64);

/** Hashes of `tokens`' full blocks, chained from `parent` (null for the first block). */
export function hashBlock(parent: BlockHash | null, tokens: Int32Array, salt: string): BlockHash {
  if (parent === null) {
    // A tag keeps a first block with salt "x" apart from a later block whose parent hash is "x".
    const h = new Bun.CryptoHasher("sha256");
    h.update(`fastgen-block-v1\0${salt}\0`);
    h.update(tokens);
    return h.digest("base64");
  }
  // Every later block: one-shot over [parent | tokens] in a reused buffer, the same bytes as
  // update(parent) + update(tokens) (a base64 string is its ASCII bytes) at ~2/3 of the time.
  const need = parent.length + tokens.byteLength;
  if (scratch.length < need) scratch = new Uint8Array(need * 2);
  for (let i = 0; i < parent.length; i++) scratch[i] = parent.charCodeAt(i);
  scratch.set(new Uint8Array(tokens.buffer, tokens.byteOffset, tokens.byteLength), parent.length);
  return Bun.SHA256.hash(scratch.subarray(0, need), "base64");
}

/**
 * Extends `memo` (the hashes of `tokens`' first memo.length full blocks) to its first `numBlocks`
 * full blocks. The one definition of a prompt's chain: the engine hashes its sequences with it,
 * and the load balancer (cache-aware routing) hashes prompts with it to match replicas' caches.
 */
export function chainBlockHashes(tokens: Int32Array, blockSize: number, numBlocks: number, salt: string, memo: BlockHash[] = []): BlockHash[] {
  if (numBlocks * blockSize > tokens.length) throw new Error(`chainBlockHashes: ${tokens.length} tokens hold no full block ${numBlocks - 1}`);
  for (let i = memo.length; i < numBlocks; i++) {
    memo.push(hashBlock(i === 0 ? null : memo[i - 1]!, tokens.subarray(i * blockSize, (i + 1) * blockSize), salt));
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
  return chainBlockHashes(seq.tokenIds.subarray(0, seq.numTokens), blockSize, numBlocks, seq.params.cacheSalt, seq.blockHashes);
}
