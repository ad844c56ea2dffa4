/**
 * A gRPC client generated from proto/fastgen.proto the standard way (@grpc/proto-loader +
 * grpc.loadPackageDefinition), sharing no code with the server: what a third-party client does.
 * Unary methods are promisified; GenerateStream returns the raw grpc-js stream.
 */
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";

const PROTO = join(import.meta.dir, "..", "..", "proto", "fastgen.proto");
const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const pkg = grpc.loadPackageDefinition(definition) as any;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Msg = any;

export interface ProtoClient {
  raw: grpc.Client & Record<string, Function>;
  Generate(req: Msg, deadlineMs?: number): Promise<Msg>;
  GenerateStream(req: Msg): grpc.ClientReadableStream<Msg>;
  ListModels(req?: Msg, deadlineMs?: number): Promise<Msg>;
  Health(req?: Msg, deadlineMs?: number): Promise<Msg>;
  Abort(req: Msg, deadlineMs?: number): Promise<Msg>;
  close(): void;
}

export function protoClient(address: string): ProtoClient {
  const raw = new pkg.fastgen.v1.FastGen(address, grpc.credentials.createInsecure());
  const unary = (name: string) => (req: Msg = {}, deadlineMs = 30_000) =>
    new Promise<Msg>((resolve, reject) =>
      raw[name](req, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: Msg) => (err ? reject(err) : resolve(res))),
    );
  return {
    raw,
    Generate: unary("Generate"),
    GenerateStream: (req) => raw.GenerateStream(req),
    ListModels: unary("ListModels"),
    Health: unary("Health"),
    Abort: unary("Abort"),
    close: () => raw.close(),
  };
}

/** Reads a server stream to its end: the messages, or the ServiceError it ended with. */
export async function readStream(call: grpc.ClientReadableStream<Msg>): Promise<{ messages: Msg[]; error?: grpc.ServiceError }> {
  const messages: Msg[] = [];
  return new Promise((resolve) => {
    call.on("data", (m: Msg) => messages.push(m));
    call.on("error", (error: grpc.ServiceError) => resolve({ messages, error }));
    call.on("end", () => resolve({ messages }));
  });
}
