/**
 * SpecGovernor: speculation only where it pays, by measurement. Whether drafting k tokens and
 * verifying them beats one token a pass depends on what a draft pass costs next to a target pass
 * (a 0.4M-parameter draft of a 2M-parameter target costs about as much as the target on the CPU,
 * where per-pass overhead dominates; a draft that size next to a 7B target would be nearly free), on the
 * acceptance rate (workload-dependent) and on the batch. None of these is known in advance, so
 * the governor times the engine's own passes and compares decode tokens per millisecond with
 * speculation on and off, per batch size (decodes in the pass, in power-of-two buckets):
 *
 *   mode     each bucket starts on; a pass of that bucket speculates when its mode is on
 *   probe    every `interval` passes in its mode, the bucket runs PROBE_PASSES in the other
 *            mode (the first is not counted: a draft model catching up on tokens generated while
 *            off, or a cache warming, is not the steady state)
 *   decide   the other mode wins when its decode tokens/ms over the probe beat the mode's since
 *            the last probe by MARGIN; then the mode flips and the interval restarts at
 *            BASE_INTERVAL, else the interval doubles up to MAX_INTERVAL. Either way the next
 *            interval is at least what keeps a probe's measured cost (its passes times how much
 *            slower the losing mode ran) under PROBE_BUDGET of the passes between probes: a
 *            draft that runs 3x slower than plain decoding is probed a few times in thousands
 *            of passes, one within a few percent every few dozen
 *
 * Only pure-decode passes are timed (a prompt chunk's cost says nothing about speculation); a
 * pass's time runs from its planning (drafting included) to its results. Outputs do not depend on
 * the decision: a verified draft yields the tokens decoding would (the Speculator's contract).
 */

/** Passes of the other mode per probe; the first warms up and is not counted. */
export const PROBE_PASSES = 4;
/** Passes in the mode before the first probe, and after a flip. */
export const BASE_INTERVAL = 16;
export const MAX_INTERVAL = 4096;
/** Share of a bucket's time its probes may lose, at most (sets the interval's floor). */
export const PROBE_BUDGET = 0.01;
/** The other mode must be this much faster to take over (measurement noise). */
export const MARGIN = 0.03;

interface Bucket {
  on: boolean;
  /** Passes left in the mode before the next probe. */
  left: number;
  interval: number;
  /** Probe passes left (0: not probing). */
  probe: number;
  /** Decode tokens and ms of the mode's passes since the last probe, and of the current probe. */
  modeTokens: number;
  modeMs: number;
  probeTokens: number;
  probeMs: number;
}

export interface GovernorBucketState {
  /** Largest batch (decodes) of the bucket: 1, 2, 4, 8... */
  decodes: number;
  speculating: boolean;
  interval: number;
}

export class SpecGovernor {
  private readonly buckets: Bucket[] = [];
  /** Probes that flipped a bucket's mode, and all probes. */
  flips = 0;
  probes = 0;

  /** Whether a pass of `decodes` running decodes speculates. */
  wants(decodes: number): boolean {
    const b = this.bucket(decodes);
    return b.probe > 0 ? !b.on : b.on;
  }

  /**
   * A pure-decode pass of `decodes` decodes ran in `ms` and gave `tokens` decode tokens;
   * `speculated` is what wants() said for it.
   */
  record(decodes: number, speculated: boolean, tokens: number, ms: number): void {
    if (!(ms > 0)) return;
    const b = this.bucket(decodes);
    if (b.probe > 0 && speculated !== b.on) {
      if (b.probe < PROBE_PASSES) {
        b.probeTokens += tokens;
        b.probeMs += ms;
      }
      if (--b.probe === 0) this.decide(b);
      return;
    }
    if (speculated !== b.on) return; // planned before a decision flipped the mode
    b.modeTokens += tokens;
    b.modeMs += ms;
    if (--b.left <= 0) b.probe = PROBE_PASSES;
  }

  /** Each bucket's mode (buckets seen so far), for metrics and tests. */
  state(): GovernorBucketState[] {
    const out: GovernorBucketState[] = [];
    this.buckets.forEach((b, i) => {
      if (b) out.push({ decodes: 2 ** i, speculating: b.on, interval: b.interval });
    });
    return out;
  }

  /** [i]: 1 where the bucket of up to 2^i decodes has speculation off now, else 0 (metrics). */
  offByBatch(): number[] {
    return Array.from(this.buckets, (b) => (b && !b.on ? 1 : 0));
  }

  private decide(b: Bucket): void {
    this.probes++;
    const mode = b.modeTokens / b.modeMs;
    const other = b.probeTokens / b.probeMs;
    const measured = b.modeMs > 0 && b.probeMs > 0;
    if (measured && other > mode * (1 + MARGIN)) {
      this.flips++;
      b.on = !b.on;
      b.interval = BASE_INTERVAL;
    } else {
      b.interval = Math.min(MAX_INTERVAL, b.interval * 2);
    }
    if (measured) {
      // a probe pass of the losing mode costs (winner's rate / loser's rate - 1) passes
      const loss = Math.max(mode, other) / Math.min(mode, other) - 1;
      b.interval = Math.min(MAX_INTERVAL, Math.max(b.interval, Math.ceil((PROBE_PASSES * loss) / PROBE_BUDGET)));
    }
    b.left = b.interval;
    b.modeTokens = b.modeMs = b.probeTokens = b.probeMs = 0;
  }

  private bucket(decodes: number): Bucket {
    const i = decodes <= 1 ? 0 : Math.ceil(Math.log2(decodes));
    return (this.buckets[i] ??= {
      on: true, left: BASE_INTERVAL, interval: BASE_INTERVAL, probe: 0, modeTokens: 0, modeMs: 0, probeTokens: 0, probeMs: 0,
    });
  }
}
