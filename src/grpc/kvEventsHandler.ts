/**
 * The KvEvents RPC: a load balancer follows a replica's prefix cache. Each call gets the engine's
 * snapshot, then every batch the engine publishes (engine/kvEventHub.ts). A subscriber that does
 * not read is cut off with RESOURCE_EXHAUSTED once MAX_BACKLOG batches wait for it, so a stuck
 * front end costs a replica bounded memory; it calls again and starts from a fresh snapshot.
 */
import type { handleServerStreamingCall, ServerWritableStream } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { hasKvEvents } from "../engine/kvEventHub";
import type { KvEventBatch } from "../engine/kvCache/kvEvents";
import type { WireKvEventBatch } from "./kvEventsWire";
import { kvBatchToWire } from "./kvEventsWire";
import type { GrpcServiceState } from "./serviceState";
import { GrpcError, toServiceError } from "./status";

/** Batches queued for one subscriber before it is cut off (a pass makes at most one). */
export const MAX_BACKLOG = 1024;

type Call = ServerWritableStream<unknown, Partial<WireKvEventBatch>>;

/** The handler, and `endAll` for the server's stop (these calls never end on their own). */
export function kvEventsService(state: GrpcServiceState): { handler: handleServerStreamingCall<unknown, Partial<WireKvEventBatch>>; endAll(): void } {
  const open = new Map<Call, () => void>();
  const close = (call: Call, error?: GrpcError) => {
    const unsubscribe = open.get(call);
    if (!unsubscribe) return;
    open.delete(call);
    unsubscribe();
    if (call.cancelled) return;
    if (error) call.emit("error", toServiceError(error));
    else call.end();
  };
  const handler = (call: Call) => {
    try {
      state.authorize(call.metadata);
      if (state.stopping) throw new GrpcError(status.UNAVAILABLE, "the server is stopping");
      if (!hasKvEvents(state.engine)) throw new GrpcError(status.UNIMPLEMENTED, "this server's engine publishes no KV events");
    } catch (e) {
      call.emit("error", toServiceError(e));
      return;
    }
    const send = (batch: KvEventBatch) => {
      if (call.writableLength >= MAX_BACKLOG) return close(call, new GrpcError(status.RESOURCE_EXHAUSTED, `KV event subscriber ${MAX_BACKLOG} batches behind`));
      call.write(kvBatchToWire(batch));
    };
    const { snapshot, unsubscribe } = state.engine.subscribeKvEvents(send);
    open.set(call, unsubscribe);
    call.on("cancelled", () => close(call));
    call.write(kvBatchToWire(snapshot));
  };
  return {
    handler,
    endAll() {
      for (const call of [...open.keys()]) close(call);
    },
  };
}
