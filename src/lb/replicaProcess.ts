/**
 * A `fastgen replica` child process, supervised: started on a free port (the child binds port 0
 * and prints the port it got), restarted on the same port with backoff when it dies, stopped with
 * SIGTERM (then SIGKILL). The child exits by itself when this process goes away (its stdin closes).
 * Its output is forwarded to stderr, each line prefixed with the replica's name.
 */
import { fastgenCommand } from "../engine/fastgenCommand";
import { RestartBackoff } from "../engine/restartBackoff";

export { fastgenCommand };

/** Options of {@link ReplicaProcess}. */
export interface ReplicaProcessOptions {
  /** Shown in log lines ("replica 0"). */
  name: string;
  /** Arguments after `fastgen replica` (model, engine flags); --host and --port are added here. */
  args: string[];
  /** Extra environment (CUDA_VISIBLE_DEVICES). */
  env?: Record<string, string>;
  /** Restart the child when it dies (default true). */
  restart?: boolean;
  /** How long a start may take before it is a failure (default 300 s: large models load slowly). */
  startTimeoutMs?: number;
  log?: (message: string) => void;
  /** Where the child's output lines go (default: stderr, prefixed "[name] "). */
  output?: (line: string) => void;
}

const READY_LINE = /replica serving .* at grpc:\/\/\S+:(\d+)/;
const HOST = "127.0.0.1";

export class ReplicaProcess {
  private child: ReturnType<typeof Bun.spawn> | null = null;
  private alive = false;
  private port = 0;
  private stopping = false;
  private readonly backoff = new RestartBackoff();
  private restartTimer: ReturnType<typeof setTimeout> | null = null;
  /** Times the child was restarted after dying. */
  restarts = 0;
  private readonly log: (message: string) => void;

  constructor(private readonly options: ReplicaProcessOptions) {
    this.log = options.log ?? ((m) => console.error(`fastgen: ${m}`));
  }

  /** host:port of the replica's gRPC server (known once started). */
  get address(): string {
    return `${HOST}:${this.port}`;
  }

  /** Pid of the running child (undefined while none runs). */
  get pid(): number | undefined {
    return this.alive ? this.child?.pid : undefined;
  }

  /** Starts the child and resolves with its address once it serves; rejects with its last output. */
  async start(): Promise<string> {
    await this.spawn();
    return this.address;
  }

  private spawn(): Promise<void> {
    const { name, args, env } = this.options;
    const child = Bun.spawn([...fastgenCommand(), "replica", ...args, "--host", HOST, "--port", String(this.port)], {
      env: { ...process.env, ...env, FASTGEN_EXIT_WITH_PARENT: "1" },
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    this.child = child;
    this.alive = true;
    const output = this.options.output ?? ((line: string) => console.error(`[${name}] ${line}`));
    const startedAt = Date.now();
    const tail: string[] = [];
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      const onLine = (line: string) => {
        tail.push(line);
        if (tail.length > 20) tail.shift();
        const m = !ready && line.match(READY_LINE);
        if (m) {
          ready = true;
          this.port = Number(m[1]);
          clearTimeout(timer);
          resolve();
        }
        output(line);
      };
      const timer = setTimeout(() => {
        if (ready) return;
        child.kill("SIGKILL");
        reject(new Error(`${name} did not start within ${(this.options.startTimeoutMs ?? 300_000) / 1000} s:\n${tail.join("\n")}`));
      }, this.options.startTimeoutMs ?? 300_000);
      void forwardLines(child.stdout as ReadableStream<Uint8Array>, onLine);
      void forwardLines(child.stderr as ReadableStream<Uint8Array>, onLine);
      void child.exited.then((code) => {
        this.alive = false;
        clearTimeout(timer);
        if (!ready) return reject(new Error(`${name} exited with status ${code} before serving:\n${tail.join("\n")}`));
        this.onExit(code, Date.now() - startedAt);
      });
    });
  }

  private onExit(code: number, ranMs: number): void {
    if (this.stopping) return;
    if (this.options.restart === false) return this.log(`${this.options.name} (${this.address}) exited with status ${code}`);
    const delay = this.backoff.next(ranMs);
    this.log(`${this.options.name} (${this.address}) exited with status ${code}; restarting in ${delay} ms`);
    this.restartTimer = setTimeout(() => {
      this.restartTimer = null;
      if (this.stopping) return;
      this.restarts++;
      this.spawn().catch((e) => {
        this.log(`${this.options.name} failed to restart: ${(e as Error).message}`);
        this.onExit(-1, 0);
      });
    }, delay);
  }

  /** Stops the child (SIGTERM, SIGKILL after `graceMs`) and does not restart it. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    if (!child || !this.alive) return;
    child.kill("SIGTERM");
    const killer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    await child.exited;
    clearTimeout(killer);
  }
}

/** Calls `onLine` for every line of `stream` until it ends. */
async function forwardLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let buffered = "";
  for await (const chunk of stream) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl: number;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      onLine(buffered.slice(0, nl));
      buffered = buffered.slice(nl + 1);
    }
  }
  if (buffered) onLine(buffered);
}
