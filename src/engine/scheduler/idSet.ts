/**
 * IdSet: a set of integer ids for the per-step hot paths. A JS Set costs ~50 ns per add here;
 * this open-addressing table with epoch-stamped slots costs a few ns, and clear() is O(1).
 */
export class IdSet {
  private keys = new Float64Array(1024);
  private stamps = new Uint32Array(1024);
  private epoch = 1;
  private count = 0;

  /** Empties the set in O(1) (the stamps of older epochs no longer count). */
  clear(): void {
    this.count = 0;
    if (++this.epoch === 0xffffffff) {
      this.stamps.fill(0);
      this.epoch = 1;
    }
  }

  get size(): number {
    return this.count;
  }

  /** Adds `id`; returns false when it was already there. */
  add(id: number): boolean {
    if ((this.count + 1) * 2 > this.keys.length) this.grow();
    const mask = this.keys.length - 1;
    let i = hash(id) & mask;
    while (this.stamps[i] === this.epoch) {
      if (this.keys[i] === id) return false;
      i = (i + 1) & mask;
    }
    this.stamps[i] = this.epoch;
    this.keys[i] = id;
    this.count++;
    return true;
  }

  has(id: number): boolean {
    const mask = this.keys.length - 1;
    let i = hash(id) & mask;
    while (this.stamps[i] === this.epoch) {
      if (this.keys[i] === id) return true;
      i = (i + 1) & mask;
    }
    return false;
  }

  private grow(): void {
    const keys = this.keys;
    const stamps = this.stamps;
    const epoch = this.epoch;
    this.keys = new Float64Array(keys.length * 2);
    this.stamps = new Uint32Array(keys.length * 2);
    this.epoch = 1;
    this.count = 0;
    for (let i = 0; i < keys.length; i++) if (stamps[i] === epoch) this.add(keys[i]!);
  }
}

function hash(id: number): number {
  return Math.imul(id | 0, 0x9e3779b1) ^ ((id / 4294967296) | 0);
}
