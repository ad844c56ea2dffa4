/**
 * gRPC status codes for what the service throws: a GrpcError carries its own; the engine's and
 * the load balancer's errors map to the nearest code (a crashed engine or replica is UNAVAILABLE,
 * a quarantined poison request FAILED_PRECONDITION); anything else is INTERNAL with a generic
 * message (the cause is logged, never sent), and no message names an internal replica address.
 */
import type { ServiceError } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import { EngineOverloadedError, EngineStepError, RequestRejectedError } from "../engine/types";
import { REPLIED_KEY } from "./acceptSignal";
import { EngineCrashedError, RequestQuarantinedError } from "../engine/engineErrors";
import { NoHealthyReplicaError, ReplicaFailedError, ReplicaUnavailableError } from "../engine/replicaErrors";

/** An error a handler throws to answer with a given status code and message. */
export class GrpcError extends Error {
  override name = "GrpcError";

  constructor(
    readonly code: status,
    message: string,
  ) {
    super(message);
  }
}

/** INVALID_ARGUMENT naming the field, the way the client wrote it. */
export function invalidArgument(field: string, message: string): GrpcError {
  return new GrpcError(status.INVALID_ARGUMENT, `${field}: ${message}`);
}

/** The status code and client-facing message of a thrown value. */
export function statusOf(e: unknown): { code: status; details: string } {
  if (e instanceof GrpcError) return { code: e.code, details: e.message };
  if (e instanceof NoHealthyReplicaError) return { code: status.UNAVAILABLE, details: e.message };
  if (e instanceof EngineOverloadedError) return { code: status.RESOURCE_EXHAUSTED, details: `the server is overloaded: ${e.message}; retry later` };
  if (e instanceof RequestRejectedError) return { code: status.INVALID_ARGUMENT, details: `the engine rejected the request: ${e.message}` };
  // These messages name no replica address (engine/replicaErrors.ts); a bare ReplicaUnavailableError's does, so it gets a generic one.
  if (e instanceof ReplicaFailedError || e instanceof EngineCrashedError) return { code: status.UNAVAILABLE, details: e.message };
  if (e instanceof ReplicaUnavailableError) return { code: status.UNAVAILABLE, details: "a replica became unavailable while serving the request" };
  // Not retried by gRPC clients' default policies (only UNAVAILABLE is); the message says when it ends.
  if (e instanceof RequestQuarantinedError) return { code: status.FAILED_PRECONDITION, details: e.message };
  if (e instanceof EngineStepError) return { code: status.INTERNAL, details: `the engine failed: ${e.message}` };
  if (e instanceof Error && /engine (is )?shut down/.test(e.message)) return { code: status.UNAVAILABLE, details: "the server is shutting down" };
  console.error("fastgen: gRPC request failed:", e);
  return { code: status.INTERNAL, details: "the server had an error while processing the request" };
}

/**
 * A ServiceError for `callback(err)` / `call.emit("error", err)`; its trailers say the service
 * answered it on purpose (acceptSignal.ts), unlike a status made up for a broken connection.
 */
export function toServiceError(e: unknown): Partial<ServiceError> {
  const { code, details } = statusOf(e);
  const metadata = new Metadata();
  metadata.set(REPLIED_KEY, "1");
  return { code, details, message: details, metadata };
}
