// grpc.health.v1 and grpc.reflection.v1 against a real h2c server, exercised
// by connect-node gRPC clients (createGrpcTransport is always HTTP/2) and by
// the real `buf curl`.
import { execFile } from "node:child_process";
import http2 from "node:http2";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { promisify } from "node:util";
import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { ConnectRouter } from "@connectrpc/connect";
import { connectNodeAdapter, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  CompletionService,
  ListModelsResponseSchema,
  file_agentgate_v1_completion_service,
} from "../../gen/agentgate/v1/completion_service_pb.js";
import {
  Health,
  HealthCheckResponse_ServingStatus as ServingStatus,
  file_grpc_health_v1_health,
} from "../../gen/grpc/health/v1/health_pb.js";
import { ServerReflection, ServerReflectionRequestSchema } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { ServerReflectionRequest, ServerReflectionResponse } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import { HealthRegistry, registerHealth } from "../../src/rpc/health.js";
import { registerReflection } from "../../src/rpc/reflection.js";

const run = promisify(execFile);
const BUF = path.resolve(import.meta.dirname, "../../node_modules/.bin/buf");

let server: http2.Http2Server;
let baseUrl: string;
const sessions = new Set<http2.ServerHttp2Session>();
const registry = new HealthRegistry({ [CompletionService.typeName]: true });

function routes(router: ConnectRouter): void {
  router.service(CompletionService, {
    listModels: () => create(ListModelsResponseSchema, { models: [{ id: "test-model", backend: "fake" }] }),
  });
  registerHealth(router, registry);
  registerReflection(
    router,
    [file_agentgate_v1_completion_service, file_grpc_health_v1_health],
    [CompletionService.typeName, Health.typeName],
  );
}

beforeAll(async () => {
  server = http2.createServer(connectNodeAdapter({ routes }));
  server.on("session", (s) => {
    sessions.add(s);
    s.on("close", () => sessions.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sessions) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const transport = () => createGrpcTransport({ baseUrl });

async function buf(...args: string[]): Promise<string> {
  const { stdout } = await run(BUF, ["curl", "--http2-prior-knowledge", ...args], { timeout: 10_000 });
  return stdout;
}

describe("grpc.health.v1.Health", () => {
  it("Check answers known services and NOT_FOUND for unknown ones", async () => {
    const client = createClient(Health, transport());
    expect((await client.check({ service: "" })).status).toBe(ServingStatus.SERVING);
    expect((await client.check({ service: CompletionService.typeName })).status).toBe(ServingStatus.SERVING);
    const err = await client.check({ service: "no.such.Service" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.NotFound);
  });

  it("List returns every status", async () => {
    registry.set("test.Down", false);
    try {
      const res = await createClient(Health, transport()).list({});
      const statuses = Object.fromEntries(Object.entries(res.statuses).map(([k, v]) => [k, v.status]));
      expect(statuses).toEqual({
        "": ServingStatus.SERVING,
        [CompletionService.typeName]: ServingStatus.SERVING,
        "test.Down": ServingStatus.NOT_SERVING,
      });
    } finally {
      registry.remove("test.Down");
    }
  });

  it("Watch streams the current status and each change; cancelling frees the listener", async () => {
    expect(registry.listenerCount).toBe(0);
    const client = createClient(Health, transport());
    const ac = new AbortController();
    const stream = client.watch({ service: "test.Watched" }, { signal: ac.signal })[Symbol.asyncIterator]();
    const next = async () => (await stream.next()).value?.status;

    expect(await next()).toBe(ServingStatus.SERVICE_UNKNOWN);
    expect(registry.listenerCount).toBe(1);
    registry.set("test.Watched", true);
    expect(await next()).toBe(ServingStatus.SERVING);
    registry.set("other.Service", true); // unrelated change: no message
    registry.set("test.Watched", false);
    expect(await next()).toBe(ServingStatus.NOT_SERVING);
    registry.remove("test.Watched");
    expect(await next()).toBe(ServingStatus.SERVICE_UNKNOWN);

    ac.abort();
    await expect(stream.next()).rejects.toMatchObject({ code: Code.Canceled });
    await vi.waitFor(() => expect(registry.listenerCount).toBe(0), { timeout: 2_000 });
    registry.remove("other.Service");
  });
});

describe("grpc.reflection.v1.ServerReflection", () => {
  async function reflect(
    ...requests: ServerReflectionRequest["messageRequest"][]
  ): Promise<ServerReflectionResponse["messageResponse"][]> {
    const client = createClient(ServerReflection, transport());
    async function* input() {
      for (const messageRequest of requests) yield create(ServerReflectionRequestSchema, { messageRequest });
    }
    const out: ServerReflectionResponse["messageResponse"][] = [];
    for await (const res of client.serverReflectionInfo(input())) out.push(res.messageResponse);
    return out;
  }
  const fileNames = (r: ServerReflectionResponse["messageResponse"]) =>
    r.case === "fileDescriptorResponse"
      ? r.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name)
      : r;

  it("lists services and resolves files with their dependencies once per stream", async () => {
    const [list, first, again] = await reflect(
      { case: "listServices", value: "" },
      { case: "fileByFilename", value: "agentgate/v1/completion_service.proto" },
      { case: "fileContainingSymbol", value: "agentgate.v1.CompletionService" },
    );
    expect(list.case === "listServicesResponse" && list.value.service.map((s) => s.name).sort()).toEqual([
      "agentgate.v1.CompletionService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
    ]);
    expect(fileNames(first)).toEqual([
      "agentgate/v1/completion_service.proto",
      "google/protobuf/struct.proto",
      "google/protobuf/timestamp.proto",
    ]);
    // The requested file is always sent; its dependencies only once per stream.
    expect(fileNames(again)).toEqual(["agentgate/v1/completion_service.proto"]);
  });

  it("finds the file of methods, messages, nested types, fields, oneofs and enum values", async () => {
    const symbols = [
      "agentgate.v1.CompletionService.ListModels",
      "agentgate.v1.ChatMessage",
      ".agentgate.v1.ChatMessage.tool_calls",
      "agentgate.v1.ToolChoice.choice",
      "agentgate.v1.Role",
      "agentgate.v1.ROLE_USER",
      "grpc.health.v1.HealthCheckResponse.ServingStatus",
      "grpc.health.v1.HealthCheckResponse.SERVING",
      "grpc.reflection.v1.ServerReflection.ServerReflectionInfo",
      "google.protobuf.Struct.FieldsEntry",
    ];
    const res = await reflect(...symbols.map((value) => ({ case: "fileContainingSymbol" as const, value })));
    expect(res.map((r) => (fileNames(r) as string[])[0])).toEqual([
      "agentgate/v1/completion_service.proto",
      "agentgate/v1/completion_service.proto",
      "agentgate/v1/completion_service.proto",
      "agentgate/v1/completion_service.proto",
      "agentgate/v1/completion_service.proto",
      "agentgate/v1/completion_service.proto",
      "grpc/health/v1/health.proto",
      "grpc/health/v1/health.proto",
      "grpc/reflection/v1/reflection.proto",
      "google/protobuf/struct.proto",
    ]);
  });

  it("answers unknown names with error_response NOT_FOUND and keeps the stream open", async () => {
    const res = await reflect(
      { case: "fileContainingSymbol", value: "agentgate.v1.Nope" },
      { case: "fileByFilename", value: "nope.proto" },
      {
        case: "fileContainingExtension",
        value: {
          $typeName: "grpc.reflection.v1.ExtensionRequest",
          containingType: "agentgate.v1.ChatMessage",
          extensionNumber: 100,
        },
      },
      { case: "allExtensionNumbersOfType", value: "agentgate.v1.Nope" },
      { case: "allExtensionNumbersOfType", value: "agentgate.v1.ChatMessage" },
    );
    for (const r of res.slice(0, 4)) {
      expect(r.case).toBe("errorResponse");
      expect(r.case === "errorResponse" && r.value.errorCode).toBe(5);
    }
    expect(res[4]).toMatchObject({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "agentgate.v1.ChatMessage", extensionNumber: [] },
    });
  });
});

describe("buf curl via reflection", () => {
  it("lists services and methods", async () => {
    const services = (await buf("--list-services", baseUrl)).trim().split("\n");
    expect(services).toEqual(
      expect.arrayContaining([
        "agentgate.v1.CompletionService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
      ]),
    );
    const methods = (await buf("--list-methods", baseUrl)).trim().split("\n");
    expect(methods).toEqual(
      expect.arrayContaining([
        "agentgate.v1.CompletionService/ListModels",
        "grpc.health.v1.Health/Watch",
        "grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
      ]),
    );
  });

  it("calls ListModels and Health/Check without local schemas", async () => {
    const [models, health] = await Promise.all([
      buf("--protocol", "grpc", "-d", "{}", `${baseUrl}/agentgate.v1.CompletionService/ListModels`),
      buf("--protocol", "grpc", "-d", "{}", `${baseUrl}/grpc.health.v1.Health/Check`),
    ]);
    expect(JSON.parse(models)).toEqual({ models: [{ id: "test-model", backend: "fake" }] });
    expect(JSON.parse(health)).toEqual({ status: "SERVING" });
  });
});
