// grpc.reflection.v1.ServerReflection for Connect-ES (no official
// implementation exists: connectrpc/connect-es#507). Lets `buf curl` and
// `grpcurl` list services and call methods without local .proto files.
//
// Behaviour follows grpc-go's reflection server: a file is answered with its
// serialized FileDescriptorProto followed by those of its transitive
// dependencies that were not yet sent on this stream; unknown names get an
// error_response with code NOT_FOUND (5) and the stream stays open.
// The older grpc.reflection.v1alpha name is not served (see
// docs/grpc-reflection-health.md).
import { create, createRegistry, toBinary } from "@bufbuild/protobuf";
import type { DescFile } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import type { DescriptorProto, EnumDescriptorProto } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { ConnectRouter, ServiceImpl } from "@connectrpc/connect";
import {
  ErrorResponseSchema,
  ExtensionNumberResponseSchema,
  FileDescriptorResponseSchema,
  ListServiceResponseSchema,
  ServerReflection,
  ServerReflectionResponseSchema,
  file_grpc_reflection_v1_reflection,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { ServerReflectionRequest, ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";

type MessageResponse = ServerReflectionResponse["messageResponse"];

/** Every file reachable from `roots` through imports, keyed by file name. */
function collectFiles(roots: readonly DescFile[]): Map<string, DescFile> {
  const files = new Map<string, DescFile>();
  const visit = (file: DescFile): void => {
    const name = file.proto.name;
    if (files.has(name)) return;
    files.set(name, file);
    file.dependencies.forEach(visit);
  };
  roots.forEach(visit);
  return files;
}

/**
 * Index every fully-qualified symbol a file declares: messages (map entries
 * included), fields, oneofs, enums, enum values, extensions, services and
 * methods. Built from the FileDescriptorProtos, because protobuf-es' registry
 * holds only types and services, not members or synthetic map entries.
 */
function indexSymbols(files: Iterable<DescFile>): Map<string, DescFile> {
  const index = new Map<string, DescFile>();
  for (const file of files) {
    const add = (name: string) => {
      if (!index.has(name)) index.set(name, file);
    };
    const pkg = file.proto.package;
    const qualify = (scope: string, name: string) => (scope ? `${scope}.${name}` : name);
    const addEnums = (scope: string, enums: readonly EnumDescriptorProto[]) => {
      for (const e of enums) {
        add(qualify(scope, e.name));
        // Enum values are scoped as siblings of their enum.
        for (const v of e.value) add(qualify(scope, v.name));
      }
    };
    const addMessages = (scope: string, messages: readonly DescriptorProto[]) => {
      for (const m of messages) {
        const name = qualify(scope, m.name);
        add(name);
        for (const f of m.field) add(`${name}.${f.name}`);
        for (const o of m.oneofDecl) add(`${name}.${o.name}`);
        for (const x of m.extension) add(`${name}.${x.name}`);
        addEnums(name, m.enumType);
        addMessages(name, m.nestedType);
      }
    };
    addMessages(pkg, file.proto.messageType);
    addEnums(pkg, file.proto.enumType);
    for (const x of file.proto.extension) add(qualify(pkg, x.name));
    for (const svc of file.proto.service) {
      const name = qualify(pkg, svc.name);
      add(name);
      for (const m of svc.method) add(`${name}.${m.name}`);
    }
  }
  return index;
}

/**
 * The grpc.reflection.v1.ServerReflection implementation describing `files`
 * (and their imports) and listing `serviceNames`. ServerReflection itself is
 * always described and listed.
 */
export function reflectionService(
  files: readonly DescFile[],
  serviceNames: readonly string[],
): ServiceImpl<typeof ServerReflection> {
  const byName = collectFiles([...files, file_grpc_reflection_v1_reflection]);
  const registry = createRegistry(...byName.values());
  const symbols = indexSymbols(byName.values());
  const services = [...new Set([...serviceNames, ServerReflection.typeName])];
  for (const name of services) {
    if (!registry.getService(name)) {
      throw new Error(`reflection: service ${name} is not declared in the given files`);
    }
  }

  const encoded = new Map<string, Uint8Array>();
  const encode = (file: DescFile): Uint8Array => {
    let bytes = encoded.get(file.proto.name);
    if (!bytes) {
      bytes = toBinary(FileDescriptorProtoSchema, file.proto);
      encoded.set(file.proto.name, bytes);
    }
    return bytes;
  };

  /** `file` first (always), then its transitive imports not yet sent on this stream. */
  const withDependencies = (file: DescFile, sent: Set<string>): MessageResponse => {
    const out: Uint8Array[] = [];
    const queue = [file];
    for (let next = queue.shift(); next; next = queue.shift()) {
      const name = next.proto.name;
      if (out.length === 0 || !sent.has(name)) {
        sent.add(name);
        out.push(encode(next));
      }
      queue.push(...next.dependencies);
    }
    return {
      case: "fileDescriptorResponse",
      value: create(FileDescriptorResponseSchema, { fileDescriptorProto: out }),
    };
  };

  const notFound = (message: string): MessageResponse => error(Code.NotFound, message);

  const answer = (req: ServerReflectionRequest, sent: Set<string>): MessageResponse => {
    const r = req.messageRequest;
    switch (r.case) {
      case "listServices":
        return {
          case: "listServicesResponse",
          value: create(ListServiceResponseSchema, { service: services.map((name) => ({ name })) }),
        };
      case "fileByFilename": {
        const file = byName.get(r.value);
        return file ? withDependencies(file, sent) : notFound(`file not found: ${r.value}`);
      }
      case "fileContainingSymbol": {
        const file = symbols.get(r.value.replace(/^\./, ""));
        return file ? withDependencies(file, sent) : notFound(`symbol not found: ${r.value}`);
      }
      case "fileContainingExtension": {
        const { containingType, extensionNumber } = r.value;
        const extendee = registry.getMessage(containingType.replace(/^\./, ""));
        const ext = extendee && registry.getExtensionFor(extendee, extensionNumber);
        return ext
          ? withDependencies(ext.file, sent)
          : notFound(`extension not found: ${containingType} #${extensionNumber}`);
      }
      case "allExtensionNumbersOfType": {
        const typeName = r.value.replace(/^\./, "");
        if (!registry.getMessage(typeName)) return notFound(`type not found: ${r.value}`);
        const numbers: number[] = [];
        for (const desc of registry) {
          if (desc.kind === "extension" && desc.extendee.typeName === typeName) numbers.push(desc.number);
        }
        return {
          case: "allExtensionNumbersResponse",
          value: create(ExtensionNumberResponseSchema, {
            baseTypeName: typeName,
            extensionNumber: numbers.sort((a, b) => a - b),
          }),
        };
      }
      default:
        return error(Code.InvalidArgument, "empty or unsupported message_request");
    }
  };

  return {
    async *serverReflectionInfo(requests) {
      const sent = new Set<string>();
      for await (const req of requests) {
        yield create(ServerReflectionResponseSchema, {
          validHost: req.host,
          originalRequest: req,
          messageResponse: answer(req, sent),
        });
      }
    },
  };
}

function error(code: Code, message: string): MessageResponse {
  return {
    case: "errorResponse",
    value: create(ErrorResponseSchema, { errorCode: code, errorMessage: message }),
  };
}

/**
 * Register grpc.reflection.v1.ServerReflection on `router`. `files` are the
 * generated file descriptors (`file_*` exports of gen/**), imports are found
 * automatically; `serviceNames` are the fully-qualified services to list,
 * e.g. `[CompletionService.typeName, Health.typeName]`.
 */
export function registerReflection(
  router: ConnectRouter,
  files: readonly DescFile[],
  serviceNames: readonly string[],
): void {
  router.service(ServerReflection, reflectionService(files, serviceNames));
}
