/**
 * A FakeEngine dressed as a replica the load balancer can probe, with scripted failures:
 * crash() drops its connection (running requests fail, new ones and probes are refused),
 * restart() brings it back, `hold` keeps new requests from being accepted (in transit: a crash
 * then fails them as not started), `hang` makes probes time out, `reportedTokens` is the load it
 * claims to carry. A request is accepted (onAccepted) as soon as it is not held.
 */
import type { GenerateRequest, GenerationDelta } from "../../src/engine/types";
import type { ReplicaHealth } from "../../src/grpc/remoteEngine";
import { ReplicaUnavailableError } from "../../src/engine/replicaErrors";
import type { ProbedEngine } from "../../src/lb/replica";
import type { FakeEngineOptions } from "../server/fakeEngine";
import { FakeEngine } from "../server/fakeEngine";

export class FakeReplica extends FakeEngine implements ProbedEngine {
  down = false;
  hold = false;
  hang = false;
  reportedTokens = 0;
  servedModel: string | null = null;
  private readonly dropConnections = new Map<(e: Error) => void, { accepted: boolean }>();

  constructor(
    readonly address: string,
    options: FakeEngineOptions = {},
  ) {
    super(options);
  }

  async probe(timeoutMs: number): Promise<ReplicaHealth> {
    if (this.hang) {
      await Bun.sleep(timeoutMs);
      throw new ReplicaUnavailableError(this.address, "DEADLINE_EXCEEDED: Deadline exceeded");
    }
    if (this.down) throw new ReplicaUnavailableError(this.address, "UNAVAILABLE: connect ECONNREFUSED");
    return { serving: true, modelName: this.servedModel ?? this.modelName, maxModelLen: this.maxModelLen, outstandingTokens: this.reportedTokens, metrics: this.metrics() };
  }

  crash(): void {
    this.down = true;
    for (const [drop, { accepted }] of this.dropConnections) drop(new ReplicaUnavailableError(this.address, "UNAVAILABLE: Connection dropped", accepted));
  }

  restart(): void {
    this.down = false;
    this.hold = false;
  }

  override async *generate(request: GenerateRequest, signal?: AbortSignal, onAccepted?: () => void): AsyncGenerator<GenerationDelta> {
    if (this.down) throw new ReplicaUnavailableError(this.address, "UNAVAILABLE: connect ECONNREFUSED");
    let drop!: (e: Error) => void;
    const dropped = new Promise<never>((_, reject) => (drop = reject));
    dropped.catch(() => {});
    const state = { accepted: false };
    this.dropConnections.set(drop, state);
    try {
      if (this.hold) await dropped;
      state.accepted = true;
      onAccepted?.();
      const it = super.generate(request, signal)[Symbol.asyncIterator]();
      try {
        for (;;) {
          const r = await Promise.race([it.next(), dropped]);
          if (r.done) return;
          yield r.value;
        }
      } finally {
        void it.return?.(undefined);
      }
    } finally {
      this.dropConnections.delete(drop);
    }
  }
}
