// One running gateway, one port: the openai SDK, plain curl (HTTP/1.1 and h2c prior knowledge),
// connect-node over HTTP/1.1 and over h2c with the Connect, gRPC and gRPC-Web protocols, a bidi
// RPC (reflection) over h2c, the same bidi failing cleanly over HTTP/1.1, and `buf curl` without
// a schema. Every request is also observed on the server to prove which HTTP version carried it.
import { execFile } from "node:child_process";
import type http from "node:http";
import type http2 from "node:http2";
import path from "node:path";
import { promisify } from "node:util";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createAgentgateClients,
  createAgentgateTransport,
  FinishReason,
  HealthCheckResponse_ServingStatus,
  Role,
  type AgentgateClients,
} from "../../clients/index.js";
import {
  ServerReflection,
  ServerReflectionRequestSchema,
  type ServerReflectionRequest,
  type ServerReflectionResponse,
} from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { PolyglotServer } from "../../src/server/polyglot-server.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

const run = promisify(execFile);
const BUF = path.resolve(import.meta.dirname, "../../node_modules/.bin/buf");

const TOKEN = "one-port-test-token";
const AUTH = `authorization: Bearer ${TOKEN}`;

let h: GatewayHarness;
/** Every request the gateway received: HTTP version, path, content type. */
const seen: { version: string; path: string; contentType: string }[] = [];

beforeAll(async () => {
  // With AUTH_TOKEN set, as in production: every client below must present the token.
  h = await startGateway({ env: { AUTH_TOKEN: TOKEN } });
  const server = h.gate.app.server as unknown as PolyglotServer;
  const record = (req: http.IncomingMessage | http2.Http2ServerRequest) =>
    seen.push({
      version: req.httpVersion,
      path: (req.url ?? "").split("?")[0]!,
      contentType: String(req.headers["content-type"] ?? ""),
    });
  server.h1.on("request", record);
  server.h2.on("request", record);
  // With a WebSocket route, every Upgrade request (also curl --http2's `Upgrade: h2c`) arrives as
  // 'upgrade'; Fastify still routes it and answers it over 1.1.
  server.h1.on("upgrade", record);
});
afterAll(() => h?.close());
beforeEach(() => {
  seen.length = 0;
});

const CHAT_PATH = "/agentgate.v1.CompletionService/Chat";
const STREAM_PATH = "/agentgate.v1.CompletionService/ChatStream";
const userSays = (content: string) => ({ model: "qwen3:8b", messages: [{ role: Role.USER, content }] });

async function curl(...args: string[]): Promise<{ body: string; httpVersion: string; status: number }> {
  const { stdout } = await run(
    "curl",
    ["-sS", "--max-time", "10", "-H", AUTH, "-w", "\n%{http_version} %{http_code}", ...args],
    { timeout: 15_000 },
  );
  const cut = stdout.lastIndexOf("\n");
  const [httpVersion, status] = stdout.slice(cut + 1).split(" ");
  return { body: stdout.slice(0, cut), httpVersion: httpVersion!, status: Number(status) };
}

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

/** Unary Chat + ListModels and server-streaming ChatStream through `ag`; asserts the answers. */
async function exerciseCompletion(ag: AgentgateClients, tag: string): Promise<void> {
  const models = await ag.completion.listModels({});
  expect(models.models.map((m) => m.id)).toContain("qwen3:8b");
  const chat = await ag.completion.chat(userSays(`unary over ${tag}`));
  expect(chat.message?.content).toBe(`You said: unary over ${tag}`);
  expect(chat.finishReason).toBe(FinishReason.STOP);
  const frames = await collect(ag.completion.chatStream(userSays(`stream over ${tag}`)));
  expect(frames.map((f) => f.contentDelta).join("")).toBe(`You said: stream over ${tag}`);
  expect(frames.at(-1)?.finishReason).toBe(FinishReason.STOP);
  expect(frames.length).toBeGreaterThan(2);
}

describe("one port, every client", () => {
  it("serves the official openai SDK (chat, streaming chat, completions, embeddings, models)", async () => {
    const openai = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: TOKEN, maxRetries: 0 });
    const res = await openai.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "hello sdk" }],
    });
    expect(res.object).toBe("chat.completion");
    expect(res.choices[0]?.message.content).toBe("You said: hello sdk");
    expect(res.choices[0]?.finish_reason).toBe("stop");
    const stream = await openai.chat.completions.create({
      model: "qwen3:8b",
      stream: true,
      messages: [{ role: "user", content: "hello stream" }],
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("You said: hello stream");
    const completion = await openai.completions.create({ model: "llama3.2:3b", prompt: "hello legacy" });
    expect(completion.choices[0]?.text).toBe("You said: hello legacy");
    const embeddings = await openai.embeddings.create({ model: "nomic-embed-text", input: ["a", "b"] });
    expect(embeddings.data.map((e) => e.embedding.length)).toEqual([768, 768]);
    const models = await openai.models.list();
    expect(models.data.map((m) => m.id)).toContain("qwen3:8b");
    const anonymous = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: "wrong", maxRetries: 0 });
    await expect(anonymous.models.list()).rejects.toMatchObject({ status: 401 });
    expect(seen.filter((s) => s.path.startsWith("/v1/")).every((s) => s.version === "1.1")).toBe(true);
  });

  it("serves plain curl over HTTP/1.1, with --http2-prior-knowledge, and answers --http2 (Upgrade: h2c) over 1.1", async () => {
    const h1 = await curl(`${h.url}/v1/models`);
    expect([h1.httpVersion, h1.status]).toEqual(["1.1", 200]);
    expect((JSON.parse(h1.body) as { object: string }).object).toBe("list");

    const h2 = await curl("--http2-prior-knowledge", `${h.url}/v1/models`);
    expect([h2.httpVersion, h2.status]).toEqual(["2", 200]);
    expect(JSON.parse(h2.body)).toEqual(JSON.parse(h1.body));

    const chat = await curl(
      "--http2-prior-knowledge",
      "-H",
      "content-type: application/json",
      "-d",
      JSON.stringify({ model: "qwen3:8b", messages: [{ role: "user", content: "curl h2" }] }),
      `${h.url}/v1/chat/completions`,
    );
    expect([chat.httpVersion, chat.status]).toEqual(["2", 200]);
    expect((JSON.parse(chat.body) as { choices: { message: { content: string } }[] }).choices[0]!.message.content).toBe(
      "You said: curl h2",
    );

    // `--http2` on http:// asks for an h2c upgrade; the gateway declines it and answers over 1.1.
    const upgrade = await curl("--http2", `${h.url}/healthz`);
    expect([upgrade.httpVersion, upgrade.status]).toEqual(["1.1", 200]);

    // Connect unary with JSON is plain HTTP: curl can call RPCs over 1.1 and h2c too.
    for (const flags of [[], ["--http2-prior-knowledge"]]) {
      const rpc = await curl(
        ...flags,
        "-H",
        "content-type: application/json",
        "-d",
        "{}",
        `${h.url}/agentgate.v1.CompletionService/ListModels`,
      );
      expect(rpc.status).toBe(200);
      expect((JSON.parse(rpc.body) as { models: { id: string }[] }).models.map((m) => m.id)).toContain("qwen3:8b");
    }
    expect(seen.map((s) => s.version)).toEqual(["1.1", "2.0", "2.0", "1.1", "1.1", "2.0"]);
  });

  it.each(["connect", "grpc-web"] as const)(
    "serves connect-node over HTTP/1.1 with protocol %s: unary ListModels and Chat, server-streaming ChatStream",
    async (protocol) => {
      await exerciseCompletion(
        createAgentgateClients({ baseUrl: h.url, token: TOKEN, httpVersion: "1.1", protocol }),
        `http/1.1 ${protocol}`,
      );
      const rpcs = seen.filter((s) => s.path.startsWith("/agentgate."));
      expect(rpcs.map((s) => s.path)).toEqual(["/agentgate.v1.CompletionService/ListModels", CHAT_PATH, STREAM_PATH]);
      expect(
        rpcs.every(
          (s) =>
            s.version === "1.1" &&
            s.contentType.startsWith(protocol === "grpc-web" ? "application/grpc-web" : "application/"),
        ),
      ).toBe(true);
    },
  );

  it("needs the token on every protocol, and refuses gRPC over HTTP/1.1 in the client", async () => {
    for (const protocol of ["connect", "grpc", "grpc-web"] as const) {
      const err = await createAgentgateClients({ baseUrl: h.url, protocol })
        .completion.listModels({})
        .catch((e: unknown) => e);
      expect((err as ConnectError).code).toBe(Code.Unauthenticated);
      const wrong = await createAgentgateClients({ baseUrl: h.url, protocol, token: "nope" })
        .completion.listModels({})
        .catch((e: unknown) => e);
      expect((wrong as ConnectError).code).toBe(Code.Unauthenticated);
    }
    expect(() => createAgentgateTransport({ baseUrl: h.url, protocol: "grpc", httpVersion: "1.1" })).toThrow(/HTTP\/2/);
  });

  it.each([
    ["connect", "application/proto", "application/connect+proto"],
    ["grpc", "application/grpc", "application/grpc"],
    ["grpc-web", "application/grpc-web", "application/grpc-web"],
  ] as const)(
    "serves connect-node over h2c with protocol %s (unary + server stream)",
    async (protocol, unaryType, streamType) => {
      const ag = createAgentgateClients({ baseUrl: h.url, token: TOKEN, httpVersion: "2", protocol });
      await exerciseCompletion(ag, `h2c ${protocol}`);
      const health = await ag.health.check({ service: "agentgate.v1.CompletionService" });
      expect(health.status).toBe(HealthCheckResponse_ServingStatus.SERVING);
      const byPath = new Map(seen.map((s) => [s.path, s]));
      expect(byPath.get(CHAT_PATH)).toMatchObject({ version: "2.0" });
      expect(byPath.get(CHAT_PATH)!.contentType.startsWith(unaryType)).toBe(true);
      expect(byPath.get(STREAM_PATH)).toMatchObject({ version: "2.0" });
      expect(byPath.get(STREAM_PATH)!.contentType.startsWith(streamType)).toBe(true);
      expect(seen.every((s) => s.version === "2.0")).toBe(true);
    },
  );
});

describe("bidi streaming (grpc.reflection.v1 ServerReflectionInfo)", () => {
  /**
   * A real conversation: the second request is sent only after the first answer arrived, so the
   * call works only when both directions are open at the same time.
   */
  async function converse(transport: Transport): Promise<ServerReflectionResponse[]> {
    const client = createClient(ServerReflection, transport);
    let answered!: () => void;
    const firstAnswer = new Promise<void>((resolve) => (answered = resolve));
    async function* requests(): AsyncGenerator<ServerReflectionRequest> {
      yield create(ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
      await firstAnswer;
      yield create(ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: "agentgate.v1.CompletionService" },
      });
    }
    const out: ServerReflectionResponse[] = [];
    for await (const res of client.serverReflectionInfo(requests(), { timeoutMs: 5_000 })) {
      out.push(res);
      answered();
    }
    return out;
  }

  it.each(["connect", "grpc", "grpc-web"] as const)("works over h2c with protocol %s", async (protocol) => {
    const [list, file] = await converse(
      createAgentgateTransport({ baseUrl: h.url, token: TOKEN, httpVersion: "2", protocol }),
    );
    expect(list?.messageResponse.case).toBe("listServicesResponse");
    const names =
      list?.messageResponse.case === "listServicesResponse"
        ? list.messageResponse.value.service.map((s) => s.name)
        : [];
    expect(names).toEqual(
      expect.arrayContaining([
        "agentgate.v1.CompletionService",
        "agentgate.v1.AgentService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1.ServerReflection",
      ]),
    );
    expect(file?.messageResponse.case).toBe("fileDescriptorResponse");
    expect(file?.originalRequest?.messageRequest).toEqual({
      case: "fileContainingSymbol",
      value: "agentgate.v1.CompletionService",
    });
    expect(seen).toEqual([
      expect.objectContaining({ version: "2.0", path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" }),
    ]);
  });

  it("fails cleanly over HTTP/1.1 (HTTP 505 becomes a Connect error) and the server stays up", async () => {
    const transport = createAgentgateTransport({ baseUrl: h.url, token: TOKEN, httpVersion: "1.1" });
    const err = await converse(transport).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).message).toMatch(/505/);
    expect(seen).toEqual([
      expect.objectContaining({ version: "1.1", path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo" }),
    ]);
    // HTTP/1.1 clients and a fresh h2c bidi call keep working.
    await exerciseCompletion(
      createAgentgateClients({ baseUrl: h.url, token: TOKEN, httpVersion: "1.1" }),
      "http/1.1 after 505",
    );
    const [list] = await converse(createAgentgateTransport({ baseUrl: h.url, token: TOKEN }));
    expect(list?.messageResponse.case).toBe("listServicesResponse");
  });
});

describe("buf curl", () => {
  it("lists services through reflection without a schema", async () => {
    const { stdout } = await run(
      BUF,
      ["curl", "--http2-prior-knowledge", "-H", AUTH, "--reflect-header", "*", "--list-services", h.url],
      { timeout: 15_000 },
    );
    expect(stdout.trim().split("\n").sort()).toEqual([
      "agentgate.v1.AgentService",
      "agentgate.v1.CompletionService",
      "agentgate.v1.EndpointService",
      "agentgate.v1.JobService",
      "agentgate.v1.SearchService",
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
    ]);
    const { stdout: chat } = await run(
      BUF,
      [
        "curl",
        "--http2-prior-knowledge",
        "-H",
        AUTH,
        "--reflect-header",
        "*",
        "--protocol",
        "grpc",
        "-d",
        JSON.stringify({ model: "qwen3:8b", messages: [{ role: "ROLE_USER", content: "buf" }] }),
        `${h.url}${CHAT_PATH}`,
      ],
      { timeout: 15_000 },
    );
    expect((JSON.parse(chat) as { message: { content: string } }).message.content).toBe("You said: buf");
  });
});

describe("EndpointService on the shared port", () => {
  it("answers an empty DreamEndpoint with invalid_argument over Connect and gRPC", async () => {
    for (const protocol of ["connect", "grpc"] as const) {
      const err = await createAgentgateClients({ baseUrl: h.url, token: TOKEN, protocol })
        .endpoints.dreamEndpoint({})
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).code).toBe(Code.InvalidArgument);
      expect((err as ConnectError).rawMessage).toMatch(/method must be one of/);
    }
  });
});
