/**
 * SupervisedEngine: the engine of `fastgen serve` (without replicas) in a child process, restarted
 * when it dies. A native crash (a segfault in a kernel or sampler) then costs the requests in
 * flight, never the server:
 *   - in-flight requests fail with EngineCrashedError (HTTP 503 with Retry-After, gRPC UNAVAILABLE);
 *   - healthy() is false until the new child has loaded the model (GET /health answers 503);
 *   - the child is restarted with backoff (RestartBackoff, as replicas are);
 *   - the requests in flight at the crash are its suspects for the poison quarantine
 *     (quarantine.ts: one suspect is refused at once, several get a strike each).
 */
import type { StartEngineHooks } from "./asyncEngine";
import { AsyncEngine, connectEngine } from "./asyncEngine";
import { EngineCrashedError } from "./engineErrors";
import type { EngineTransport } from "./engineTransport";
import { processTransport } from "./engineTransport";
import type { EngineOptions } from "./options";
import type { QuarantineOptions } from "./quarantine";
import { PoisonQuarantine, requestFingerprint } from "./quarantine";
import { RestartBackoff } from "./restartBackoff";
import type { EngineClient, EngineMetrics, GenerateRequest, GenerationDelta } from "./types";

/** Options of {@link startSupervisedEngine}. */
export interface SupervisedEngineOptions {
  /** Where restarts are told (default stderr). */
  log?: (message: string) => void;
  quarantine?: QuarantineOptions;
  /** Starts one engine host (default: a `fastgen engine-process` child); tests hand in others. */
  transport?: () => EngineTransport;
  /** Restart delays (default 0.5 s doubling to 10 s). */
  backoff?: RestartBackoff;
}

/** Starts the engine child on `modelDir`; resolves once the model is loaded. */
export async function startSupervisedEngine(
  modelDir: string,
  options: Partial<EngineOptions> = {},
  hooks: StartEngineHooks = {},
  supervision: SupervisedEngineOptions = {},
): Promise<SupervisedEngine> {
  const engine = new SupervisedEngine(modelDir, options, supervision);
  await engine.start(hooks);
  return engine;
}

export class SupervisedEngine implements EngineClient {
  readonly quarantine: PoisonQuarantine;
  /** Times the child was restarted after dying. */
  restarts = 0;
  private current: AsyncEngine | null = null;
  private first: AsyncEngine | null = null;
  private lastMetrics: EngineMetrics | null = null;
  private currentPid: number | undefined;
  private startedAt = 0;
  private closed = false;
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  private readonly backoff: RestartBackoff;
  private readonly log: (message: string) => void;

  constructor(
    private readonly modelDir: string,
    private readonly options: Partial<EngineOptions>,
    private readonly supervision: SupervisedEngineOptions = {},
  ) {
    this.quarantine = new PoisonQuarantine(supervision.quarantine);
    this.backoff = supervision.backoff ?? new RestartBackoff();
    this.log = supervision.log ?? ((m) => console.error(`fastgen: ${m}`));
  }

  private get loaded(): AsyncEngine {
    if (!this.first) throw new Error("SupervisedEngine: start() first");
    return this.first;
  }

  get modelName(): string {
    return this.loaded.modelName;
  }

  get maxModelLen(): number {
    return this.loaded.maxModelLen;
  }

  get kvCacheTokens(): number {
    return this.loaded.kvCacheTokens;
  }

  get tokenizer() {
    return this.loaded.tokenizer;
  }

  /** Pid of the running engine child (undefined while it restarts). */
  get pid(): number | undefined {
    return this.current ? this.currentPid : undefined;
  }

  /** Starts a child and waits until it has loaded the model. */
  async start(hooks: StartEngineHooks = {}): Promise<void> {
    const transport = (this.supervision.transport ?? processTransport)();
    let engine: AsyncEngine | null = null;
    engine = await connectEngine(transport, this.modelDir, this.options, {
      ...hooks,
      onCrash: (reason, inFlight) => this.onCrash(engine, reason, inFlight),
    });
    if (this.closed) return void (await engine.shutdown());
    this.currentPid = transport.pid;
    this.startedAt = Date.now();
    this.first ??= engine;
    this.current = engine;
  }

  /** The child died: blame its in-flight requests, fail them, and restart it after a backoff. */
  private onCrash(engine: AsyncEngine | null, reason: string, inFlight: GenerateRequest[]): Error {
    if (this.current === engine) this.current = null;
    const quarantined = this.quarantine.noteCrash(inFlight.map(requestFingerprint));
    const delay = this.backoff.next(Date.now() - this.startedAt);
    this.log(
      `engine crashed (${reason}) with ${inFlight.length} requests in flight` +
        (inFlight.length ? ` [${inFlight.slice(0, 8).map((r) => r.requestId).join(", ")}${inFlight.length > 8 ? ", ..." : ""}]` : "") +
        `; ${quarantined.length} request fingerprint(s) quarantined; restarting in ${delay} ms`,
    );
    this.scheduleRestart(delay);
    const more = quarantined.length > 0 ? " An identical request will be refused for a while." : "";
    return new EngineCrashedError(`The engine crashed while running this request and is restarting.${more}`, Math.ceil(delay / 1000) + 1);
  }

  private scheduleRestart(delay: number): void {
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.closed) return;
      this.restarts++;
      this.start().then(
        () => this.log(`engine restarted (restart ${this.restarts})`),
        (e) => {
          this.log(`engine failed to restart: ${(e as Error).message}`);
          if (!this.closed) this.scheduleRestart(this.backoff.next(0));
        },
      );
    }, delay);
  }

  async *generate(request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<GenerationDelta> {
    if (this.closed) throw new Error("engine is shut down");
    this.quarantine.check(requestFingerprint(request));
    const engine = this.current;
    if (!engine) throw new EngineCrashedError("The engine is restarting after a crash; retry shortly.");
    yield* engine.generate(request, signal);
  }

  /** False while the child restarts, and once shut down (/health answers 503). */
  healthy(): boolean {
    return !this.closed && this.current !== null && this.current.healthy();
  }

  /** Why it is not healthy (null when it is). */
  unhealthyReason(): string | null {
    if (this.closed) return "engine shut down";
    if (!this.current) return "the engine is restarting after a crash";
    if (!this.current.healthy()) return "the engine failed and is not running";
    return null;
  }

  /** The running child's counters; while it restarts, the last ones it reported. */
  metrics(): EngineMetrics {
    if (this.current) this.lastMetrics = this.current.metrics();
    return { ...(this.lastMetrics ?? this.loaded.metrics()) };
  }

  async shutdown(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    await this.current?.shutdown();
    this.current = null;
  }
}
