/**
 * The "accepted" signal of a GenerateStream call: the replica sends the call's initial metadata as
 * soon as it takes the request, before the engine sees it. A client (RemoteEngine) that has the
 * metadata and then loses the stream knows the replica died while holding the request, so the
 * load balancer does not re-send it to a second replica (a query of death would kill that one
 * too); a stream lost before the metadata came fails over as usual.
 *
 * Errors the service answers on purpose carry REPLIED_KEY in their trailers, so a client can tell
 * "the replica said no" (e.g. it is shutting down) from "the connection broke".
 */
import type { ServerWritableStream } from "@grpc/grpc-js";
import { Metadata } from "@grpc/grpc-js";

/** Trailer set on every error status the service sends itself (status.ts). */
export const REPLIED_KEY = "fastgen-replied";

/** Initial-metadata key that marks an accepted call. */
export const ACCEPTED_KEY = "fastgen-accepted";

/**
 * Sends the accepted signal and waits one turn of the event loop, so the headers are on the wire
 * before the engine starts (a native crash in the first pass would otherwise lose them with the
 * process).
 */
export async function signalAccepted(call: ServerWritableStream<unknown, unknown>): Promise<void> {
  const md = new Metadata();
  md.set(ACCEPTED_KEY, "1");
  call.sendMetadata(md);
  await new Promise<void>((resolve) => setImmediate(resolve));
}
