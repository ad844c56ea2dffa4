/**
 * Errors of a crashed engine and of the poison-request quarantine (quarantine.ts). The HTTP and
 * gRPC servers map them to statuses: EngineCrashedError is 503 / UNAVAILABLE (the request may be
 * innocent: another try, on a restarted engine, may succeed); RequestQuarantinedError is 422 /
 * FAILED_PRECONDITION, which OpenAI's SDKs do not retry (they retry 408, 409, 429 and >= 500).
 */

/** The engine process died (a native crash) while the request ran, or is restarting after one. */
export class EngineCrashedError extends Error {
  override name = "EngineCrashedError";

  constructor(
    message: string,
    /** Seconds after which a retry may find the engine back (Retry-After). */
    readonly retryAfterSeconds = 1,
  ) {
    super(message);
  }
}

/** An identical request was running when an engine crashed; it is refused until `until`. */
export class RequestQuarantinedError extends Error {
  override name = "RequestQuarantinedError";

  constructor(
    /** Date.now() at which the quarantine ends. */
    readonly until: number,
  ) {
    const seconds = Math.max(1, Math.ceil((until - Date.now()) / 1000));
    super(
      `An identical request (same prompt and sampling parameters) was running when the engine crashed, so it is refused for ` +
        `another ${seconds} s to protect the service. Change the request or try again later.`,
    );
  }
}
