/**
 * LoadBalancer: an EngineClient over replicas, so the HTTP and gRPC servers serve it unchanged.
 * Every generate() call (one prompt) goes to the replica the router picks (least outstanding
 * tokens by default; cache-aware also weighs the prompt tokens each replica holds in its prefix
 * cache, followed through one KvEventSubscriber per replica). When the replica fails before it accepted the request (connection refused,
 * already down), the request moves to another replica (at most `maxReplicaFailures` replicas in
 * all). Once the replica had accepted it, a failure is one of a replica that died holding it: the
 * request fails with ReplicaFailedError and is NOT moved (a query of death would take the next
 * replica down too), and the requests it held are suspects for the poison quarantine
 * (engine/quarantine.ts), which then refuses identical requests for a while. A replica that
 * refuses for overload is skipped for that request; only when every replica refused or is down
 * does the caller get an error (NoHealthyReplicaError, or the overload itself). Client-facing
 * messages name replicas by index; their addresses go to the log.
 */
import type { HistogramSnapshot } from "../engine/histogram";
import type { EngineMetrics, GenerateRequest, GenerationDelta } from "../engine/types";
import { addSpecDecodeStats } from "../engine/speculative/speculator";
import { addGrammarMetrics } from "../grammar/grammarMetrics";
import { EngineOverloadedError } from "../engine/types";
import type { QuarantineOptions } from "../engine/quarantine";
import { PoisonQuarantine, requestFingerprint } from "../engine/quarantine";
import type { Tokenizer } from "../tokenizer/tokenizer";
import { NoHealthyReplicaError, ReplicaFailedError, ReplicaUnavailableError } from "../engine/replicaErrors";
import type { HealthCheckOptions } from "./healthChecker";
import { HealthChecker } from "./healthChecker";
import type { HeldRequest, ProbedEngine } from "./replica";
import { Replica } from "./replica";
import type { RoutingPolicy } from "./router";
import { Router } from "./router";
import type { RouteQuery } from "./promptChain";
import { KvEventSubscriber } from "./kvEventSubscriber";
import type { ReplicatedEngine, ReplicaStatus } from "../engine/replicated";

/** Options of {@link LoadBalancer}. */
export interface LoadBalancerOptions extends Omit<HealthCheckOptions, "modelName" | "maxModelLen"> {
  modelName: string;
  /** Longest prompt + generation accepted (at most every replica's). */
  maxModelLen: number;
  tokenizer: Tokenizer;
  policy?: RoutingPolicy;
  /**
   * Replicas one request may fail on before it fails (default 3): a request that brings its
   * replica down must not take every replica with it.
   */
  maxReplicaFailures?: number;
  /** The poison quarantine's window and size (default 60 s, 1024 fingerprints). */
  quarantine?: QuarantineOptions;
  /** Runs after the replicas' clients are closed (e.g. stops spawned replica processes). */
  onShutdown?: () => Promise<void>;
}

const COUNTERS = [
  "requestsWaiting", "requestsRunning", "kvBlocksTotal", "kvBlocksFree", "promptTokensTotal",
  "generationTokensTotal", "requestsFinishedTotal", "preemptionsTotal", "stepsTotal",
  "prefixCacheQueriesTotal", "prefixCacheHitsTotal",
] as const;

/** a + b (histograms with the same buckets); whichever exists when only one does. */
function addHistograms(a: HistogramSnapshot | undefined, b: HistogramSnapshot | undefined): HistogramSnapshot | undefined {
  if (!a || !b) return a ?? b;
  if (a.bounds.length !== b.bounds.length || a.bounds.some((x, i) => x !== b.bounds[i])) return a;
  return { bounds: a.bounds, counts: a.counts.map((c, i) => c + (b.counts[i] ?? 0)), sum: a.sum + b.sum, count: a.count + b.count };
}

export class LoadBalancer implements ReplicatedEngine {
  readonly modelName: string;
  readonly maxModelLen: number;
  readonly tokenizer: Tokenizer;
  readonly replicas: readonly Replica[];
  readonly health: HealthChecker;
  readonly quarantine: PoisonQuarantine;
  private readonly router: Router;
  /** One per replica that publishes KV events, under the cache-aware policy. */
  readonly kvSubscribers: readonly (KvEventSubscriber | null)[];
  private readonly log: (message: string) => void;
  private closed = false;

  constructor(
    engines: readonly ProbedEngine[],
    private readonly options: LoadBalancerOptions,
  ) {
    this.modelName = options.modelName;
    this.maxModelLen = options.maxModelLen;
    this.tokenizer = options.tokenizer;
    this.replicas = engines.map((e) => new Replica(e));
    this.router = new Router(options.policy);
    this.health = new HealthChecker(this.replicas, options);
    this.quarantine = new PoisonQuarantine(options.quarantine);
    this.log = options.log ?? ((m) => console.error(`fastgen: ${m}`));
    this.kvSubscribers = this.replicas.map((r) => {
      const open = r.engine.kvEvents?.bind(r.engine);
      return this.router.policy === "cache-aware" && open ? new KvEventSubscriber(r.cache, open, this.log) : null;
    });
  }

  /** Probes every replica now, then keeps probing in the background. */
  async start(): Promise<void> {
    await this.health.checkAll();
    this.health.start();
    for (const s of this.kvSubscribers) s?.start();
  }

  async *generate(request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<GenerationDelta> {
    if (this.closed) throw new Error("engine is shut down");
    const fingerprint = requestFingerprint(request);
    this.quarantine.check(fingerprint);
    const tried = new Set<Replica>();
    const route: RouteQuery = {
      promptIds: request.promptIds,
      cacheSalt: request.sampling.cacheSalt ?? "",
      cacheable: (request.sampling.promptLogprobs ?? -1) < 0,
    };
    let lastError: Error | null = null;
    let failures = 0;
    for (;;) {
      if (signal?.aborted) return;
      const picked = this.router.pick(this.replicas.filter((r) => r.healthy && !tried.has(r)), route);
      if (!picked) throw this.noReplica(lastError);
      const replica = picked.replica;
      tried.add(replica);
      const held: HeldRequest = { fingerprint, blamed: false };
      let seen = false;
      try {
        for await (const delta of this.runOn(replica, request, signal, held, picked.cachedTokens)) {
          seen = true;
          yield delta;
        }
        return;
      } catch (e) {
        if (e instanceof EngineOverloadedError) {
          lastError = e;
          continue;
        }
        if (!(e instanceof ReplicaUnavailableError)) throw e;
        this.health.markDown(replica, e.message);
        failures++;
        const index = this.replicas.indexOf(replica);
        if (e.started) throw this.diedHolding(replica, held, request.requestId, e, seen);
        if (seen) throw new ReplicaFailedError(index, replica.address, request.requestId, e, "its partial output is lost");
        const cap = this.options.maxReplicaFailures ?? 3;
        if (failures >= cap) throw new ReplicaFailedError(index, replica.address, request.requestId, e, `it failed on ${failures} replicas, so it is not moved again`);
        lastError = e; // the replica never took it: try the next one
      } finally {
        replica.held.delete(held);
      }
    }
  }

  /**
   * The error of a request whose replica died holding it. The first such request of a crash
   * blames every request the replica held (its siblings fail right after, already blamed).
   */
  private diedHolding(replica: Replica, held: HeldRequest, requestId: string, cause: ReplicaUnavailableError, seen: boolean): ReplicaFailedError {
    const index = this.replicas.indexOf(replica);
    if (!held.blamed) {
      const suspects = [...new Set([...replica.held, held])].filter((h) => !h.blamed);
      for (const h of suspects) h.blamed = true;
      const quarantined = this.quarantine.noteCrash(suspects.map((h) => h.fingerprint));
      this.log(
        `replica ${index} (${replica.address}) died holding ${suspects.length} request(s) (${cause.detail}); ` +
          `${quarantined.length} request fingerprint(s) quarantined`,
      );
    }
    const why = seen ? "its partial output is lost" : "it is not sent to another replica, since it may be what brought this one down";
    return new ReplicaFailedError(index, replica.address, requestId, cause, why);
  }

  /**
   * One attempt on one replica: counts its work, and fails it if health checks evict the replica.
   * The prompt tokens it is expected to find cached are not counted: they are no work there.
   */
  private async *runOn(
    replica: Replica, request: GenerateRequest, signal: AbortSignal | undefined, held: HeldRequest, cachedTokens: number,
  ): AsyncGenerator<GenerationDelta> {
    const attempt = new AbortController();
    const forward = () => attempt.abort(signal?.reason);
    signal?.addEventListener("abort", forward, { once: true });
    const untrack = replica.track(attempt);
    const ticket = replica.work.start(request.promptIds.length - cachedTokens, request.sampling.maxTokens, request.sampling.n ?? 1);
    replica.routed++;
    const evicted = () => attempt.signal.aborted && !signal?.aborted;
    const accepted = () => replica.held.add(held);
    try {
      for await (const delta of replica.engine.generate(request, attempt.signal, accepted)) {
        if (evicted()) break;
        ticket.consume(delta.tokenIds.length);
        yield delta;
      }
      if (evicted()) {
        // A replica that hangs holding a request is treated as one that died holding it.
        const reason = attempt.signal.reason as ReplicaUnavailableError;
        throw replica.held.has(held) ? new ReplicaUnavailableError(reason.address, reason.detail, true) : reason;
      }
    } finally {
      ticket.finish();
      untrack();
      signal?.removeEventListener("abort", forward);
    }
  }

  /** The error when no replica is left to try (why each is down is in the log, with its address). */
  private noReplica(lastError: Error | null): Error {
    if (lastError instanceof EngineOverloadedError) return lastError;
    const down = this.replicas.filter((r) => !r.healthy).map((r) => this.replicas.indexOf(r));
    const which = down.length > 0 ? `; down: replica ${down.join(", ")}` : "";
    return new NoHealthyReplicaError(`no healthy replica can take the request (${down.length} of ${this.replicas.length} down${which})`);
  }

  /** True while at least one replica takes work (the HTTP /health and gRPC Health read it). */
  healthy(): boolean {
    return !this.closed && this.replicas.some((r) => r.healthy);
  }

  replicaStatus(): ReplicaStatus[] {
    return this.replicas.map((r) => r.status());
  }

  /** Queue lengths, counters and histograms summed over the replicas (as of their last probe). */
  metrics(): EngineMetrics {
    const sum = Object.fromEntries(COUNTERS.map((k) => [k, 0])) as unknown as EngineMetrics;
    for (const r of this.replicas) {
      const m = r.engine.metrics();
      for (const k of COUNTERS) sum[k] = (sum[k] ?? 0) + (m[k] ?? 0);
      sum.queueTimeSeconds = addHistograms(sum.queueTimeSeconds, m.queueTimeSeconds);
      sum.iterationTokens = addHistograms(sum.iterationTokens, m.iterationTokens);
      sum.specDecode = addSpecDecodeStats(sum.specDecode, m.specDecode);
      sum.grammar = addGrammarMetrics(sum.grammar, m.grammar);
    }
    if (!sum.specDecode) delete sum.specDecode;
    if (!sum.grammar) delete sum.grammar;
    if (!sum.queueTimeSeconds) delete sum.queueTimeSeconds;
    if (!sum.iterationTokens) delete sum.iterationTokens;
    return sum;
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.health.stop();
    for (const s of this.kvSubscribers) s?.stop();
    await Promise.all(this.replicas.map((r) => r.engine.shutdown()));
    await this.options.onShutdown?.();
  }
}
