/**
 * The FastGen gRPC service as @grpc/grpc-js sees it, built at load time from proto/fastgen.proto
 * with protobufjs: no generated code and no proto-loader. The .proto text is imported as text, so
 * `bun build --compile` embeds it and a compiled binary needs no file beside it.
 *
 * Messages cross as plain objects with the .proto's snake_case names (see wire.ts): 64-bit
 * integers as numbers, enums as their names, unset scalars as their zero value, unset `optional`
 * scalars and messages absent (null), a oneof's chosen field named in the oneof's own key.
 */
import type { MethodDefinition, ServiceDefinition } from "@grpc/grpc-js";
import protobuf from "protobufjs";
import protoText from "../../proto/fastgen.proto" with { type: "text" };

/** The package-qualified service name (the path prefix of every method). */
export const SERVICE_NAME = "fastgen.v1.FastGen";

/** The method names of the service, as written in the .proto. */
export type MethodName = "Generate" | "GenerateStream" | "ListModels" | "Health" | "Abort" | "KvEvents";

const root = protobuf.parse(protoText, { keepCase: true }).root;
root.resolveAll();

/** `bytes` fields (KV block hashes) cross as base64 strings, as the engine keys its hashes. */
const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, bytes: String, defaults: true, arrays: true, objects: true, oneofs: true };

/** Encodes a plain object as `type` (unknown keys are ignored, enums may be names or numbers). */
function serializer(type: protobuf.Type): (value: unknown) => Buffer {
  return (value) => {
    const bytes = type.encode(type.fromObject(value as Record<string, unknown>)).finish();
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  };
}

function deserializer(type: protobuf.Type): (bytes: Buffer) => unknown {
  return (bytes) => type.toObject(type.decode(bytes), TO_OBJECT);
}

function methodDefinition(method: protobuf.Method): MethodDefinition<unknown, unknown> {
  const req = method.resolvedRequestType!;
  const res = method.resolvedResponseType!;
  return {
    path: `/${SERVICE_NAME}/${method.name}`,
    requestStream: method.requestStream === true,
    responseStream: method.responseStream === true,
    requestSerialize: serializer(req),
    requestDeserialize: deserializer(req),
    responseSerialize: serializer(res),
    responseDeserialize: deserializer(res),
    originalName: method.name[0]!.toLowerCase() + method.name.slice(1),
  };
}

const service = root.lookupService(SERVICE_NAME);

/** The service definition for `server.addService` and `makeGenericClientConstructor`. */
export const FASTGEN_SERVICE: ServiceDefinition<Record<MethodName, unknown>> = Object.fromEntries(
  service.methodsArray.map((m) => [m.name, methodDefinition(m)]),
) as ServiceDefinition<Record<MethodName, unknown>>;

/** The .proto source, for clients that want to generate their own stubs. */
export const FASTGEN_PROTO_TEXT: string = protoText;
