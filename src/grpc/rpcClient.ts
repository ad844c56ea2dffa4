/**
 * A thin promise / async-iterator face on a grpc-js client of the FastGen service (built from
 * proto.ts's definition): what RemoteEngine and the user-facing client() both speak through.
 * The channel reconnects within a couple of seconds once a restarted server is back.
 */
import type { ChannelOptions, Client, ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import { credentials, makeGenericClientConstructor, Metadata, status } from "@grpc/grpc-js";
import type { MethodName } from "./proto";
import { FASTGEN_SERVICE } from "./proto";

const FastGenClientCtor = makeGenericClientConstructor(FASTGEN_SERVICE, "FastGen");

type Method = (request: unknown, metadata: Metadata, options: object, callback?: (err: ServiceError | null, res: unknown) => void) => unknown;

/** Channel options: quick reconnects (grpc's default backoff grows to two minutes). */
const CHANNEL_OPTIONS: ChannelOptions = {
  "grpc.initial_reconnect_backoff_ms": 200,
  "grpc.max_reconnect_backoff_ms": 2000,
  "grpc.max_receive_message_length": 64 * 2 ** 20,
  "grpc.max_send_message_length": 64 * 2 ** 20,
};

/** A server stream being read: iterate `messages` once; `cancel()` ends the call. */
export interface RpcStream<T> {
  messages: AsyncIterable<T>;
  cancel(): void;
}

/** True for a ServiceError (the rejection of every call here). */
export function isServiceError(e: unknown): e is ServiceError {
  return e instanceof Error && typeof (e as Partial<ServiceError>).code === "number" && "details" in e;
}

/** The name of a status code ("UNAVAILABLE"). */
export function statusName(code: number): string {
  return status[code] ?? `status ${code}`;
}

/** Messages of a server stream as an async iterable; ends on OK, throws the ServiceError otherwise. */
function readMessages<T>(call: ClientReadableStream<T>): AsyncIterable<T> {
  const items: T[] = [];
  let error: ServiceError | null = null;
  let ended = false;
  let wake: (() => void) | null = null;
  const notify = () => {
    const w = wake;
    wake = null;
    w?.();
  };
  call.on("data", (m: T) => (items.push(m), notify()));
  call.on("error", (e: ServiceError) => ((error = e), notify()));
  call.on("end", () => ((ended = true), notify()));
  return {
    async *[Symbol.asyncIterator]() {
      try {
        for (;;) {
          while (items.length > 0) yield items.shift()!;
          if (error) throw error;
          if (ended) return;
          await new Promise<void>((r) => (wake = r));
        }
      } finally {
        if (!ended && !error) call.cancel();
      }
    },
  };
}

/** Options of {@link RpcClient}. */
export interface RpcClientOptions {
  /** Sent as metadata `authorization: Bearer <apiKey>` on every call. */
  apiKey?: string;
}

export class RpcClient {
  private readonly client: Client & Record<MethodName, Method>;
  private readonly metadata = new Metadata();

  constructor(
    readonly address: string,
    options: RpcClientOptions = {},
  ) {
    if (options.apiKey) this.metadata.set("authorization", `Bearer ${options.apiKey}`);
    this.client = new FastGenClientCtor(address, credentials.createInsecure(), CHANNEL_OPTIONS) as unknown as Client & Record<MethodName, Method>;
  }

  /** Calls a unary method; rejects with the ServiceError. `timeoutMs` sets a deadline. */
  unary<T>(method: MethodName, request: unknown, timeoutMs?: number): Promise<T> {
    const options = timeoutMs === undefined ? {} : { deadline: Date.now() + timeoutMs };
    return new Promise((resolve, reject) => {
      this.client[method](request, this.metadata, options, (err, res) => (err ? reject(err) : resolve(res as T)));
    });
  }

  /** Starts a server-streaming call; `onMetadata` gets the server's initial metadata when it comes. */
  stream<T>(method: MethodName, request: unknown, onMetadata?: (metadata: Metadata) => void): RpcStream<T> {
    const call = this.client[method](request, this.metadata, {}) as ClientReadableStream<T>;
    if (onMetadata) call.on("metadata", onMetadata);
    return { messages: readMessages(call), cancel: () => call.cancel() };
  }

  /** Resolves once the channel is connected; rejects after `timeoutMs`. */
  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) =>
      this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())),
    );
  }

  close(): void {
    this.client.close();
  }
}
