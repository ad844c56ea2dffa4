/**
 * What the load balancer and the replicas' clients throw. Each message names the replica, so a
 * client learns which one failed without reading the front end's log.
 */
import { EngineOverloadedError } from "../engine/types";

/**
 * No replica can take the request (all down, or all refused it). An EngineOverloadedError, so
 * HTTP answers 503 with Retry-After; gRPC answers UNAVAILABLE.
 */
export class NoHealthyReplicaError extends EngineOverloadedError {
  override name = "NoHealthyReplicaError";
}

/**
 * A replica could not be reached, or its connection broke, before or while it ran a request.
 * RemoteEngine throws it; the load balancer then takes the replica out.
 */
export class ReplicaUnavailableError extends Error {
  override name = "ReplicaUnavailableError";

  constructor(
    readonly address: string,
    detail: string,
  ) {
    super(`replica ${address} is unavailable: ${detail}`);
  }
}

/**
 * A request whose replica failed once it could no longer move: it had produced output, or it had
 * already failed on as many replicas as it may.
 */
export class ReplicaFailedError extends Error {
  override name = "ReplicaFailedError";

  constructor(
    readonly address: string,
    requestId: string,
    cause: Error,
    /** Why it was not moved. */
    why: string,
  ) {
    super(`replica ${address} failed while running request ${requestId}; ${why} (${cause.message})`);
  }
}
