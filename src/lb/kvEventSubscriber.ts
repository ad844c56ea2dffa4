/**
 * KvEventSubscriber: keeps one replica's block index (Replica.cache) in step with its prefix
 * cache through the KvEvents RPC. The stream's first batch is a snapshot; every later one must be
 * numbered one more than the last. Whenever that chain breaks the index is emptied at once (the
 * router then treats the replica as holding nothing, which is safe: it only loses hits) and the
 * subscriber calls again for a fresh snapshot:
 *   a gap in the numbers        at once
 *   the stream ends or fails    (replica restarted or gone, or it cut a slow subscriber off)
 *                               after a delay, 0.5 s doubling to 5 s while it keeps failing
 *   UNIMPLEMENTED               never again (a replica without events is routed on load alone)
 */
import { status } from "@grpc/grpc-js";
import { kvBatchFromWire } from "../grpc/kvEventsWire";
import type { RpcStream } from "../grpc/rpcClient";
import type { WireKvEventBatch } from "../grpc/kvEventsWire";
import { isServiceError } from "../grpc/rpcClient";
import type { KvBlockIndex } from "../engine/kvCache/kvBlockIndex";

const RETRY_MS = { first: 500, max: 5000 };

export class KvEventSubscriber {
  /** Times the index was emptied to start over (gaps, ends, failures). */
  resyncs = 0;
  /** Gaps seen (batches that did not follow the last one). */
  gaps = 0;
  private stream: RpcStream<WireKvEventBatch> | null = null;
  private stopped = false;
  private wake: (() => void) | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(
    private readonly index: KvBlockIndex,
    private readonly open: () => RpcStream<WireKvEventBatch>,
    private readonly log: (message: string) => void = () => {},
  ) {}

  start(): void {
    void this.run();
  }

  stop(): void {
    this.stopped = true;
    this.stream?.cancel();
    clearTimeout(this.timer);
    this.wake?.();
  }

  private async run(): Promise<void> {
    let delay = RETRY_MS.first;
    while (!this.stopped) {
      const why = await this.follow(() => (delay = RETRY_MS.first));
      this.index.clear();
      this.resyncs++;
      if (this.stopped) return;
      if (why === "unimplemented") return this.log("a replica publishes no KV events: it is routed on load alone");
      if (why === "gap") continue;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        this.timer = setTimeout(resolve, delay);
      });
      delay = Math.min(delay * 2, RETRY_MS.max);
    }
  }

  /** Reads one stream into the index until it breaks; says why it stopped. */
  private async follow(onBatch: () => void): Promise<"gap" | "ended" | "unimplemented"> {
    const stream = (this.stream = this.open());
    try {
      for await (const m of stream.messages) {
        if (this.index.apply(kvBatchFromWire(m)) === "gap") {
          this.gaps++;
          return "gap"; // leaving the loop cancels the call
        }
        onBatch();
      }
      return "ended";
    } catch (e) {
      return isServiceError(e) && e.code === status.UNIMPLEMENTED ? "unimplemented" : "ended";
    } finally {
      this.stream = null;
    }
  }
}
