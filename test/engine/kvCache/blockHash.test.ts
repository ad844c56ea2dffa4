// Block hashes (src/engine/kvCache/blockHash.ts): the chain is sha256(tag, salt, tokens) for the
// first block and sha256(parent's base64, tokens) after it, whatever way the bytes reach the
// hasher; a replica and the load balancer must agree on every value.
import { describe, expect, test } from "bun:test";
import { chainBlockHashes, hashBlock } from "../../../src/engine/kvCache/blockHash";

/** The definition, one incremental hasher a block. */
function reference(tokens: Int32Array, bs: number, salt: string): string[] {
  const out: string[] = [];
  for (let i = 0; (i + 1) * bs <= tokens.length; i++) {
    const h = new Bun.CryptoHasher("sha256");
    if (i === 0) h.update(`fastgen-block-v1\0${salt}\0`);
    else h.update(out[i - 1]!);
    h.update(tokens.subarray(i * bs, (i + 1) * bs));
    out.push(h.digest("base64"));
  }
  return out;
}

describe("block hashes", () => {
  test("the chain equals its definition at block sizes 1-64, with and without a salt, from any memo", () => {
    const tokens = Int32Array.from({ length: 700 }, (_, i) => (i * 2654435761) % 151936);
    for (const bs of [1, 4, 16, 64]) {
      for (const salt of ["", "tenant-a"]) {
        const want = reference(tokens, bs, salt);
        expect(chainBlockHashes(tokens, bs, want.length, salt)).toEqual(want);
        expect(chainBlockHashes(tokens, bs, want.length, salt, want.slice(0, 3))).toEqual(want);
      }
    }
  });

  test("different salts, parents or tokens give different hashes", () => {
    const t = Int32Array.from([1, 2, 3, 4]);
    const a = hashBlock(null, t, ""), b = hashBlock(null, t, "x");
    expect(a).not.toBe(b);
    expect(hashBlock(a, t, "")).not.toBe(hashBlock(b, t, ""));
    expect(hashBlock(a, t, "")).not.toBe(hashBlock(a, Int32Array.from([1, 2, 3, 5]), ""));
  });

  test("a parent that is not a 44-character hash is hashed the same way", () => {
    const t = Int32Array.from([7, 8, 9]);
    for (const parent of ["x", "a".repeat(45)]) {
      const h = new Bun.CryptoHasher("sha256");
      h.update(parent);
      h.update(t);
      expect(hashBlock(parent, t, "")).toBe(h.digest("base64"));
    }
  });
});
