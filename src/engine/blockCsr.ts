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
 */
import type { BlockTable } from "./kvCache/kvCacheManager";

/** How far ahead in the previous rows a table is looked for (finished rows leave gaps). */
const LOOKAHEAD = 4;

/** The block-table CSR of a pass, rebuilt incrementally from the previous one. */
export class BlockCsr {
  indptr = new Int32Array(257);
  indices = new Int32Array(4096);
  private prev = new Int32Array(4096);
  private prevTables: (BlockTable | undefined)[] = [];
  private prevOff = new Int32Array(256);
  private prevCount = new Int32Array(256);
  private curTables: (BlockTable | undefined)[] = [];
  private curOff = new Int32Array(256);
  private curCount = new Int32Array(256);
  private numRows = 0;
  private prevRows = 0;
  /** Previous rows before this index are matched or skipped. */
  private scanFrom = 0;
  /** Pending run: prev[runSrc, runSrc + runLen) goes to indices[runDst...). */
  private runSrc = 0;
  private runDst = 0;
  private runLen = 0;

  /** Starts a pass of `numRows` rows. */
  begin(numRows: number): void {
    // The previous pass's output becomes the source.
    [this.prev, this.indices] = [this.indices, this.prev];
    [this.prevTables, this.curTables] = [this.curTables, this.prevTables];
    [this.prevOff, this.curOff] = [this.curOff, this.prevOff];
    [this.prevCount, this.curCount] = [this.curCount, this.prevCount];
    this.scanFrom = 0;
    this.prevRows = this.numRows;
    this.numRows = numRows;
    if (this.indptr.length < numRows + 1) this.indptr = new Int32Array((numRows + 1) * 2);
    if (this.curOff.length < numRows) {
      this.curOff = new Int32Array(numRows * 2);
      this.curCount = new Int32Array(numRows * 2);
    }
    this.curTables.length = numRows;
    this.indptr[0] = 0;
    this.runLen = 0;
  }

  /** Appends row `row`: the first `need` blocks of `table`, written at offset `nb`. */
  addRow(row: number, table: BlockTable, need: number, nb: number): number {
    if (nb + need > this.indices.length) {
      this.flush();
      const grown = new Int32Array(Math.max(nb + need, this.indices.length * 2));
      grown.set(this.indices.subarray(0, nb));
      this.indices = grown;
    }
    const j = this.findPrev(table);
    let copied = 0;
    if (j >= 0 && this.prevCount[j]! <= need) {
      copied = this.prevCount[j]!;
      const src = this.prevOff[j]!;
      if (this.runLen > 0 && this.runSrc + this.runLen === src && this.runDst + this.runLen === nb) this.runLen += copied;
      else {
        this.flush();
        this.runSrc = src;
        this.runDst = nb;
        this.runLen = copied;
      }
    }
    if (copied < need) {
      this.flush();
      const ids = table.ids;
      const dst = this.indices;
      for (let k = copied; k < need; k++) dst[nb + k] = ids[k]!;
    }
    this.curTables[row] = table;
    this.curOff[row] = nb;
    this.curCount[row] = need;
    this.indptr[row + 1] = nb + need;
    return nb + need;
  }

  /** Ends the pass: writes the last pending run. */
  end(): void {
    this.flush();
  }

  private flush(): void {
    if (this.runLen === 0) return;
    this.indices.set(this.prev.subarray(this.runSrc, this.runSrc + this.runLen), this.runDst);
    this.runLen = 0;
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
