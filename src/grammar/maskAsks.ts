/**
 * MaskAsks: the engine thread's side of the mask rounds (maskRound.ts), for EngineGrammars. A
 * round holds one row per state no cached or shared mask serves (samples of one grammar in one
 * state share a row); it goes to every Worker holding a replica of some row, each claims rows and
 * writes their masks into the round's shared memory, and this side takes the results (harvest):
 * masks to the samples and the mask cache, each row's claimer noted as its leader's replica that
 * moved. Nothing here blocks on a Worker:
 *
 *   ask         requestMasks: one round for every live sample lacking a mask and in no row
 *   wait        masksFor: until the given samples have masks, at most maskTimeoutMs a try; then
 *               each Worker the round went to that has not answered is taken for stuck and ended
 *   a Worker    its replicas are forgotten (a sample with none left fails); its rows that no live
 *   is gone     Worker can finish are closed, and their samples asked for again with what is left
 */
import type { GrammarClient } from "./grammarClient";
import { GrammarWorkerError } from "./grammarErrors";
import type { GrammarPool } from "./grammarPool";
import { MaskCache, type GrammarRef } from "./maskCache";
import { ROW_PENDING, ROW_REFUSED, RoundState, createRoundShared, packRows } from "./maskRound";
import type { SequenceGrammar } from "./sequenceGrammar";
import { epochMs } from "./worker/protocol";

/**
 * Most ids a replica other than the nearest may lag a row's state by and still be offered it
 * (accepting one costs XGrammar ~2 us; a mask 5 us to 10 ms: grammar-profile-cpu.md).
 */
export const MAX_REPLICA_LAG = 128;

/** The mask counters EngineGrammars.timing holds (see there). */
export interface MaskTiming {
  maskMs: number;
  askMs: number;
  receiveMs: number;
  waitMs: number;
  workerMs: number;
  syncMs: number;
  fillMs: number;
  busiestMs: number;
  toWorkerMs: number;
  wakeMs: number;
  masks: number;
  computed: number;
}

/** One row of a round: the sample whose replicas compute it, the samples sharing its state. */
interface Row {
  round: Round;
  leader: SequenceGrammar;
  key: string | null;
  sharing: SequenceGrammar[];
  /** Workers holding a replica of the leader, the nearest first. */
  holders: number[];
}

type RowAsk = Omit<Row, "round">;

/** A round in flight: its shared state, its rows, and the Workers it went to. */
interface Round {
  state: RoundState;
  rows: Row[];
  sent: Map<number, { client: GrammarClient; clientId: number; answered: boolean }>;
  /** Rows whose result was taken (or that were closed). */
  taken: Uint8Array;
  left: number;
  busiestMs: number;
}

export class MaskAsks {
  private readonly rounds = new Set<Round>();
  /** Since when (epoch ms) a pass waits for masks; Infinity while none does (wakeMs counts only waits). */
  private waitingSince = Infinity;
  maskTimeoutMs: number;

  constructor(
    private readonly pool: GrammarPool,
    private readonly live: ReadonlySet<SequenceGrammar>,
    private readonly cache: MaskCache,
    private readonly timing: MaskTiming,
    /** Words of a mask: ceil(vocab / 32). */
    private readonly words: number,
    private readonly fail: (g: SequenceGrammar, e: Error) => void,
    maskTimeoutMs: number,
  ) {
    this.maskTimeoutMs = maskTimeoutMs;
  }

  /**
   * Asks for the masks every live sample lacks (those that accepted a token since): a state seen
   * before takes its cached mask, samples of one grammar in one state share a row, and the rest
   * go out as one round to the Workers holding their replicas.
   */
  requestMasks(): void {
    if (this.live.size === 0 || !this.pool.started) return;
    const t0 = performance.now();
    const rows: RowAsk[] = [];
    const byKey = new Map<GrammarRef, Map<string, RowAsk>>();
    for (const g of this.live) {
      if (g.hasMask || g.inRow !== null || g.broken || g.failure || g.isTerminated) continue;
      const key = MaskCache.keyOf(g.acceptedIds);
      if (key !== null) {
        const cached = this.cache.get(g.grammar, key);
        if (cached !== undefined) {
          g.useMask(cached);
          this.timing.masks++;
          continue;
        }
        let inGrammar = byKey.get(g.grammar);
        if (inGrammar === undefined) byKey.set(g.grammar, (inGrammar = new Map()));
        const leading = inGrammar.get(key);
        if (leading !== undefined) {
          leading.sharing.push(g);
          continue;
        }
      }
      const holders = g.workers.filter((w) => this.pool.workers[w]?.client != null).sort((a, b) => g.distance(a) - g.distance(b));
      // A replica far behind is left out (but the nearest, always): its catch-up would cost more
      // than the mask, and its ids would travel to every Worker each pass.
      while (holders.length > 1 && g.distance(holders[holders.length - 1]!) > MAX_REPLICA_LAG) holders.pop();
      if (holders.length === 0) {
        this.fail(g, new GrammarWorkerError("the grammar worker is gone"));
        continue;
      }
      const row = { leader: g, key, sharing: [], holders };
      if (key !== null) byKey.get(g.grammar)!.set(key, row);
      rows.push(row);
    }
    if (rows.length > 0) this.send(rows);
    const ms = performance.now() - t0;
    this.timing.maskMs += ms;
    this.timing.askMs += ms;
  }

  /** Sends a round of `rows` to every Worker holding a replica of one. */
  private send(rowsIn: RowAsk[]): void {
    const shared = createRoundShared(rowsIn.length, this.words);
    const round: Round = { state: new RoundState(shared), rows: [], sent: new Map(), taken: new Uint8Array(rowsIn.length), left: rowsIn.length, busiestMs: 0 };
    const packed = packRows(rowsIn.map((r) => r.holders.map((w) => ({ worker: w, ...r.leader.syncFor(w) }))));
    const workers = new Set(rowsIn.flatMap((r) => r.holders));
    this.rounds.add(round);
    // Posted first: the Workers start while this thread notes the rows (their answers are read later).
    for (const w of workers) {
      const client = this.pool.workers[w]!.client!;
      const postedAt = epochMs();
      const { id, reply } = client.round(packed, shared, w);
      const sent = { client, clientId: id, answered: false };
      round.sent.set(w, sent);
      reply.then((m) => {
        sent.answered = true;
        const t = this.timing;
        t.toWorkerMs += m.startedAt - postedAt;
        t.workerMs += m.ms;
        t.syncMs += m.syncMs;
        t.fillMs += m.fillMs;
        // The busiest Worker of a round: what it costs in wall time on K threads.
        if (m.ms > round.busiestMs) {
          t.busiestMs += m.ms - round.busiestMs;
          round.busiestMs = m.ms;
        }
      }, (e: Error) => {
        // A Worker that failed is handled by pool.onFailure -> workerFailed; one that answered an
        // error left its claimed row pending for good: it is ended the same way.
        client.fail(e instanceof GrammarWorkerError ? e : new GrammarWorkerError(e.message));
      });
    }
    for (const r of rowsIn) {
      const row: Row = { ...r, round };
      round.rows.push(row);
      const len = r.leader.numAccepted;
      for (const g of [r.leader, ...r.sharing]) {
        g.inRow = { row, len, kept: len };
        g.requested = row;
      }
    }
  }

  /** Takes the results of every finished row. */
  harvest(): void {
    const t0 = performance.now();
    for (const round of this.rounds) {
      for (let r = 0; r < round.rows.length; r++) {
        if (round.taken[r]) continue;
        const state = round.state.state(r);
        if (state !== ROW_PENDING) this.take(round, r, state);
      }
    }
    const ms = performance.now() - t0;
    this.timing.maskMs += ms;
    this.timing.receiveMs += ms;
  }

  /** Row `r` finished: its claimer moved, its mask goes to whoever still wants it (and the cache). */
  private take(round: Round, r: number, state: number): void {
    const row = round.rows[r]!;
    const { leader, key } = row;
    const members = [leader, ...row.sharing];
    const wanting = members.filter((g) => g.requested === row);
    if (leader.inRow?.row === row) leader.applied(round.state.claimedBy(r), leader.inRow);
    this.close(round, r);
    if (state === ROW_REFUSED) {
      for (const g of members) this.fail(g, new GrammarWorkerError(`the grammar matcher refused a token its mask allowed (after ${g.numAccepted} tokens)`));
      return;
    }
    // A view of the round's shared masks; a cached mask is copied out, so the cache never pins a
    // whole round (up to 4 MB at 256 rows and 128K vocab) for one mask.
    const view = round.state.mask(r);
    const mask = key === null ? view : view.slice();
    if (key !== null) this.cache.set(leader.grammar, key, mask);
    for (const g of wanting) g.useMask(mask);
    this.timing.computed++;
    this.timing.masks += members.length;
  }

  /** Ends row `r` (taken, or lost): its samples are in no row any more. */
  private close(round: Round, r: number): void {
    const row = round.rows[r]!;
    round.taken[r] = 1;
    for (const g of [row.leader, ...row.sharing]) {
      if (g.inRow?.row !== row) continue;
      g.inRow = null;
      if (g.requested === row) g.requested = null;
    }
    if (--round.left > 0) return;
    this.rounds.delete(round);
    // The engine's wake latency: from the last row written (or the wait's start, if later) to here.
    const last = round.state.lastRowAt; // NaN when a row was lost
    if (last === last && this.waitingSince !== Infinity) this.timing.wakeMs += Math.max(0, epochMs() - Math.max(last, this.waitingSince));
  }

  /**
   * Worker `w` failed: the samples forget its replicas (one with none left fails with `e`), and
   * rows no live Worker can finish any more are closed (their samples are asked for again).
   */
  workerFailed(w: number, e: Error): void {
    for (const g of this.live) if (g.workers.includes(w) && !g.dropReplica(w)) this.fail(g, e);
    for (const round of this.rounds) {
      round.sent.delete(w);
      for (let r = 0; r < round.rows.length; r++) {
        if (round.taken[r] || round.state.state(r) !== ROW_PENDING) continue;
        let by = round.state.claimedBy(r);
        // An unclaimed row no live Worker can take is closed to the Workers (a late claim by the
        // dying one fails then); if it claimed first after all, it is closed below.
        if (by < 0 && !round.rows[r]!.holders.some((h) => round.sent.has(h))) {
          if (round.state.close(r)) {
            this.close(round, r);
            continue;
          }
          by = round.state.claimedBy(r);
        }
        if (by === w) this.close(round, r);
      }
    }
  }

  /**
   * Waits until every sample of `gs` has its mask or failed: asks for the missing ones first.
   * Null when all are here (no await). A try lasts at most maskTimeoutMs; then each Worker owing
   * an answer to a round with a row of theirs is ended (its samples' rows go to the others, or
   * fail); the promise never rejects.
   */
  masksFor(gs: Iterable<SequenceGrammar>): Promise<void> | null {
    this.requestMasks();
    const list = [...gs];
    if (this.waiting(list).length === 0) return null;
    return this.wait(list);
  }

  private async wait(gs: SequenceGrammar[]): Promise<void> {
    const t0 = performance.now();
    this.waitingSince = epochMs();
    let deadline = t0 + this.maskTimeoutMs;
    try {
      for (;;) {
        this.harvest();
        this.requestMasks(); // rows closed by a failure
        const waiting = this.waiting(gs);
        if (waiting.length === 0) return;
        const rounds = new Set(waiting.map((g) => (g.inRow!.row as Row).round));
        const left = deadline - performance.now();
        if (left <= 0) {
          this.timeOut(waiting);
          deadline = performance.now() + this.maskTimeoutMs;
          continue;
        }
        // Wakes: a round's last row (Atomics), any Worker's answer or failure, or the deadline.
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([
          ...[...rounds].map((r) => r.state.changed(r.state.finished, left)),
          this.pool.nextEvent(),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, left))),
        ]);
        clearTimeout(timer);
      }
    } finally {
      this.waitingSince = Infinity;
      this.timing.waitMs += performance.now() - t0;
    }
  }

  /** Samples of `gs` still waiting for a row in flight (theirs, or an old one to end before they are asked again). */
  private waiting(gs: SequenceGrammar[]): SequenceGrammar[] {
    return gs.filter((g) => !g.hasMask && g.failure === null && g.inRow !== null);
  }

  /** The wait for `waiting`'s rounds ran out: each Worker they went to that has not answered is ended. */
  private timeOut(waiting: SequenceGrammar[]): void {
    const error = new GrammarWorkerError(`the grammar worker computed no masks in ${this.maskTimeoutMs} ms`);
    const stuck = new Set<GrammarClient>();
    for (const g of waiting) for (const s of (g.inRow!.row as Row).round.sent.values()) if (!s.answered) stuck.add(s.client);
    for (const client of stuck) client.fail(error);
    if (stuck.size === 0) for (const g of waiting) this.fail(g, error); // nobody to blame: never left waiting
  }

  /**
   * Whether `g`'s next mask would come only after a compile in flight: in each Worker its row
   * went to (asked for after that compile), or, with no row, in each Worker holding its replica.
   */
  waitsForCompile(g: SequenceGrammar): boolean {
    if (g.hasMask || g.failure) return false;
    const row = g.inRow?.row as Row | undefined;
    if (row !== undefined) {
      // Not "claimed, so coming": a Worker claims after its compile, but the compile is over for
      // this side only once the Worker's answer is read (the pass waits for the next one).
      for (const h of row.holders) {
        const s = row.round.sent.get(h);
        if (s !== undefined && s.clientId < s.client.firstSlow) return false;
      }
      return true;
    }
    const clients = g.workers.map((w) => this.pool.workers[w]?.client ?? null).filter((c) => c !== null);
    return clients.length > 0 && clients.every((c) => c.firstSlow !== Infinity);
  }
}
