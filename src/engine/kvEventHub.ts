/**
 * KvEventHub: the serving thread's end of an engine's KV events. The engine host sends one batch
 * per pass that changed the prefix cache (engineHost.ts); the hub keeps the cache's block index
 * from them, so that a new subscriber (a load balancer's KvEvents stream, grpc/kvEventsHandler.ts)
 * starts from a snapshot taken here, with no round trip to the engine, and then gets every batch.
 */
import type { KvEventBatch } from "./kvCache/kvEvents";
import { KvBlockIndex } from "./kvCache/kvBlockIndex";

/** An engine whose prefix-cache changes can be followed. */
export interface KvEventSource {
  /**
   * Starts following: `snapshot` is what the cache holds now (AllBlocksCleared + its blocks,
   * numbered as the last batch it includes); `listener` then gets every later batch, in order.
   */
  subscribeKvEvents(listener: (batch: KvEventBatch) => void): { snapshot: KvEventBatch; unsubscribe(): void };
}

/** True for engines that publish KV events (a replica's AsyncEngine with prefix caching on). */
export function hasKvEvents(engine: object): engine is KvEventSource {
  return typeof (engine as Partial<KvEventSource>).subscribeKvEvents === "function";
}

export class KvEventHub implements KvEventSource {
  readonly index = new KvBlockIndex();
  private readonly listeners = new Set<(batch: KvEventBatch) => void>();

  /** Takes the engine's next batch and passes it on. */
  publish(batch: KvEventBatch): void {
    // The host's messages arrive in order and none is lost, so a gap is a bug: say so, start over.
    if (this.index.apply(batch) === "gap") {
      console.error(`fastgen: KV event batch ${batch.seq} after ${this.index.seq}: the index starts over`);
      this.index.clear();
      this.index.apply({ ...batch, events: [{ type: "cleared" }, ...batch.events] });
    }
    for (const l of this.listeners) l(batch);
  }

  subscribeKvEvents(listener: (batch: KvEventBatch) => void): { snapshot: KvEventBatch; unsubscribe(): void } {
    this.listeners.add(listener);
    return { snapshot: this.index.snapshot(), unsubscribe: () => void this.listeners.delete(listener) };
  }

  /** Subscribers now. */
  get numSubscribers(): number {
    return this.listeners.size;
  }
}
