/**
 * BlockCsr: the block-table CSR of a pass (block_indptr + block_indices), rebuilt every step
 * mostly by copying the previous step's.
 *
 * Step to step the rows are nearly the same sequences in the same order and their tables only
 * grow, so row r's ids are usually the previous step's ids of the same table plus, every
 * blockSize decodes, one new block. The builder keeps the previous CSR (double-buffered),
 * finds each table's previous row by identity (a BlockTable object lives as long as its
 * allocation) and copies runs of rows that sit back to back in both with one memcpy each;
 * new ids and unmatched rows are copied from the tables. Copying 256 rows × 64 ids one by one
 * costs ~27 µs here, the runs ~5 µs.
 *
 *   ids:  | this pass's indices (one half) | the previous pass's (the other) |   swapped each pass
 *
 * Both passes' ids live in one array so that a run is one copyWithin (set() needs a view, a
 * new object per run); the previous indptr says where each previous row sits.
 */
import type { BlockTable } from "./kvCache/kvCacheManager";

/** How far ahead in the previous rows a table is looked for (finished rows leave gaps). */
const LOOKAHEAD = 4;

/** The block-table CSR of a pass, rebuilt incrementally from the previous one. */
export class BlockCsr {
  indptr = new Int32Array(257);
  private prevIndptr = new Int32Array(257);
  /** Ids of each half. */
  private half = 4096;
  private ids = new Int32Array(2 * 4096);
  /** Where this pass's half and the previous pass's start in `ids`. */
  private cur = 0;
  private prev = 4096;
  private curTables: (BlockTable | undefined)[] = [];
  private prevTables: (BlockTable | undefined)[] = [];
  private numRows = 0;
  private prevRows = 0;
  /** Previous rows before this index are matched or skipped. */
  private scanFrom = 0;
  /** Pending run: previous ids [runSrc, runSrc + runLen) go to this pass's [runDst...). */
  private runSrc = 0;
  private runDst = 0;
  private runLen = 0;

  /** This pass's first `n` block ids. */
  indices(n: number): Int32Array {
    return this.ids.subarray(this.cur, this.cur + n);
  }

  /** Starts a pass of `numRows` rows. */
  begin(numRows: number): void {
    // The previous pass's output becomes the source.
    [this.prev, this.cur] = [this.cur, this.prev];
    [this.prevIndptr, this.indptr] = [this.indptr, this.prevIndptr];
    [this.prevTables, this.curTables] = [this.curTables, this.prevTables];
    this.scanFrom = 0;
    this.prevRows = this.numRows;
    this.numRows = numRows;
    if (this.indptr.length < numRows + 1) this.indptr = new Int32Array((numRows + 1) * 2);
    this.curTables.length = numRows;
    this.indptr[0] = 0;
    this.runLen = 0;
  }

  /** Appends row `row`: the first `need` blocks of `table`, written at offset `nb`. */
  addRow(row: number, table: BlockTable, need: number, nb: number): number {
    if (nb + need > this.half) this.grow(nb + need);
    const j = this.findPrev(table);
    let copied = 0;
    if (j >= 0) {
      const src = this.prevIndptr[j]!;
      const count = this.prevIndptr[j + 1]! - src;
      if (count <= need) {
        copied = count;
        if (this.runLen > 0 && this.runSrc + this.runLen === src && this.runDst + this.runLen === nb) this.runLen += copied;
        else {
          this.flush();
          this.runSrc = src;
          this.runDst = nb;
          this.runLen = copied;
        }
      }
    }
    if (copied < need) {
      this.flush();
      const ids = table.ids;
      const dst = this.ids;
      const at = this.cur + nb;
      for (let k = copied; k < need; k++) dst[at + k] = ids[k]!;
    }
    this.curTables[row] = table;
    this.indptr[row + 1] = nb + need;
    return nb + need;
  }

  /** Ends the pass: writes the last pending run. */
  end(): void {
    this.flush();
  }

  private flush(): void {
    if (this.runLen === 0) return;
    const from = this.prev + this.runSrc;
    this.ids.copyWithin(this.cur + this.runDst, from, from + this.runLen);
    this.runLen = 0;
  }

  /** Doubles the halves (at least to `n` ids each), keeping both passes' ids. */
  private grow(n: number): void {
    this.flush();
    const half = Math.max(n, this.half * 2);
    const ids = new Int32Array(2 * half);
    ids.set(this.ids.subarray(this.cur, this.cur + this.half), 0);
    ids.set(this.ids.subarray(this.prev, this.prev + this.half), half);
    this.ids = ids;
    this.half = half;
    this.cur = 0;
    this.prev = half;
  }

  private findPrev(table: BlockTable): number {
    const end = Math.min(this.prevRows, this.scanFrom + LOOKAHEAD);
    for (let j = this.scanFrom; j < end; j++) {
      if (this.prevTables[j] === table) {
        this.scanFrom = j + 1;
        return j;
      }
    }
    return -1;
  }
}
