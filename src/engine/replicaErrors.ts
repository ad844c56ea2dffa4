/**
 * What the load balancer and the replicas' clients throw. Messages that reach clients
 * (NoHealthyReplicaError, ReplicaFailedError) name a replica by its index at most, never its
 * internal address: the address and the transport's own words are kept in fields for the front
 * end's log. ReplicaUnavailableError's message does name the address; it stays inside the front end.
 */
import { EngineOverloadedError } from "./types";

/**
 * No replica can take the request (all down, or all refused it). An EngineOverloadedError, so
 * HTTP answers 503 with Retry-After; gRPC answers UNAVAILABLE.
 */
export class NoHealthyReplicaError extends EngineOverloadedError {
  override name = "NoHealthyReplicaError";
}

/**
 * A replica could not be reached, or its connection broke, before or while it ran a request.
 * RemoteEngine throws it; the load balancer then takes the replica out, and moves the request to
 * another replica only when `started` is false.
 */
export class ReplicaUnavailableError extends Error {
  override name = "ReplicaUnavailableError";

  constructor(
    readonly address: string,
    readonly detail: string,
    /** The replica had accepted the request (it may have been running it when it failed). */
    readonly started = false,
  ) {
    super(`replica ${address} is unavailable: ${detail}`);
  }
}

/**
 * A request whose replica failed once it could no longer move: the replica had accepted it (a
 * replica that dies while running a request must not get the chance to take a second one down),
 * or it had already failed on as many replicas as it may.
 */
export class ReplicaFailedError extends Error {
  override name = "ReplicaFailedError";

  constructor(
    /** The replica's index in the front end's list (what clients are told). */
    readonly replicaIndex: number,
    /** host:port: for the log only. */
    readonly address: string,
    readonly requestId: string,
    override readonly cause: Error,
    /** Why it was not moved (client-facing: no address). */
    why: string,
  ) {
    super(`replica ${replicaIndex} failed while running this request; ${why}`);
  }
}
