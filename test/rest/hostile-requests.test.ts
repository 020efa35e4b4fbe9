// Malformed and hostile requests against a real gateway (auth on, small body and RPC limits):
// every one gets the exact 4xx and an OpenAI error object (or a Connect code over RPC), and the
// gateway keeps answering good requests after each of them.
import net from "node:net";
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CompletionService, createAgentgateClients, Role } from "../../clients/index.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

const TOKEN = "hostile-suite-token-0123456789";
const BODY_LIMIT = 65_536;
const RPC_LIMIT = 16_384;

let h: GatewayHarness;

beforeAll(async () => {
  h = await startGateway({
    env: { AUTH_TOKEN: TOKEN, BODY_LIMIT_BYTES: String(BODY_LIMIT), RPC_MESSAGE_LIMIT_BYTES: String(RPC_LIMIT) },
  });
});

let closed = false;
afterAll(async () => {
  if (!closed) await h?.close();
});

const AUTH = { authorization: `Bearer ${TOKEN}` };
const JSON_CT = { "content-type": "application/json" };
const USER = [{ role: "user", content: "hi" }];
const chat = (extra: Record<string, unknown>) => ({ model: "qwen3:8b", messages: USER, ...extra });

interface Case {
  name: string;
  method?: string;
  path?: string;
  /** Objects are JSON-encoded; strings and buffers are sent as they are. */
  body?: unknown;
  headers?: Record<string, string>;
  /** Replace the default headers (auth + JSON content type) entirely. */
  rawHeaders?: boolean;
  query?: string;
  status: number;
  type?: string;
  /** Expected OpenAI `param`: a string, or null for none. Omitted: not checked. */
  param?: string | null;
  code?: string;
  /** A regular expression the message must match. */
  message?: RegExp;
}

const nested = (depth: number) => `{"model":"qwen3:8b","messages":${"[".repeat(depth)}${"]".repeat(depth)}}`;
const nestedInExtra = (depth: number) =>
  `{"model":"qwen3:8b","messages":[{"role":"user","content":"hi"}],"metadata":${'{"a":'.repeat(depth)}1${"}".repeat(depth)}}`;

const cases: Case[] = [
  // --- bodies that are not a JSON object ---
  { name: "bad JSON", body: "{model: qwen}", status: 400, code: "invalid_json", param: null },
  { name: "truncated JSON", body: '{"model":"qwen3:8b","messages":[{"role":"us', status: 400, code: "invalid_json" },
  { name: "JSON array body", body: "[]", status: 400, code: "invalid_value", message: /object/ },
  { name: "JSON number body", body: "42", status: 400, code: "invalid_value" },
  { name: "JSON string body", body: '"hello"', status: 400, code: "invalid_value" },
  { name: "JSON null body", body: "null", status: 400 },
  { name: "empty body", body: "", status: 400, code: "invalid_json" },
  { name: "whitespace body", body: "   \n ", status: 400, code: "invalid_json" },
  {
    name: "wrong content-type (text/plain)",
    body: JSON.stringify(chat({})),
    headers: { "content-type": "text/plain" },
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "wrong content-type (form)",
    body: "model=qwen3:8b",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "no content-type with a body",
    body: Buffer.from(JSON.stringify(chat({}))),
    headers: AUTH,
    rawHeaders: true,
    status: 415,
    code: "unsupported_media_type",
  },
  {
    name: "non-UTF-8 bytes",
    body: Buffer.concat([
      Buffer.from('{"model":"qwen3:8b","messages":[{"role":"user","content":"'),
      Buffer.from([0xff, 0xfe, 0xc3]),
      Buffer.from('"}]}'),
    ]),
    status: 400,
    code: "invalid_encoding",
  },
  { name: "UTF-16 body", body: Buffer.from(JSON.stringify(chat({})), "utf16le"), status: 400 },
  {
    name: "huge body over BODY_LIMIT_BYTES",
    body: JSON.stringify(chat({ messages: [{ role: "user", content: "x".repeat(BODY_LIMIT * 2) }] })),
    status: 413,
    code: "request_too_large",
  },
  {
    name: "__proto__ pollution does not supply the model",
    body: '{"__proto__":{"model":"qwen3:8b","polluted":true},"messages":[{"role":"user","content":"hi"}]}',
    status: 400,
    param: "model",
  },
  {
    name: "__proto__ spelled with a unicode escape",
    body: '{"\\u005f_proto__":{"model":"qwen3:8b","polluted":true},"messages":[{"role":"user","content":"hi"}]}',
    status: 400,
    param: "model",
  },
  {
    name: "constructor.prototype pollution attempt",
    body: '{"constructor":{"prototype":{"polluted":true}},"messages":[{"role":"user","content":"hi"}]}',
    status: 400,
    param: "model",
  },
  {
    name: "deeply nested JSON (10 000 levels)",
    body: nested(10_000),
    status: 400,
    code: "invalid_json",
    param: null,
    message: /nested deeper/,
  },
  {
    name: "deeply nested JSON in an ignored field (10 000 levels)",
    body: nestedInExtra(10_000),
    status: 400,
    code: "invalid_json",
    message: /nested deeper than 128/,
  },
  {
    name: "deeply nested tool parameters (200 levels)",
    body: chat({
      tools: [{ type: "function", function: { name: "f", parameters: JSON.parse(nestedInExtra(200)).metadata } }],
    }),
    status: 400,
    code: "invalid_json",
  },
  {
    name: "brackets inside strings do not count as nesting",
    body: chat({ model: "[".repeat(300) }),
    status: 400,
    param: "model",
  },
  // --- model ---
  { name: "missing model", body: { messages: USER }, status: 400, param: "model", code: "invalid_value" },
  { name: "model not a string", body: chat({ model: 42 }), status: 400, param: "model" },
  { name: "model null", body: chat({ model: null }), status: 400, param: "model" },
  { name: "model empty", body: chat({ model: "" }), status: 400, param: "model" },
  { name: "model with control characters", body: chat({ model: "qwen3\n:8b\u001b[31m" }), status: 400, param: "model" },
  { name: "model with a null byte", body: chat({ model: "qwen3:8b\u0000" }), status: 400, param: "model" },
  { name: "very long model id", body: chat({ model: "m".repeat(5000) }), status: 400, param: "model" },
  {
    name: "model not found upstream",
    body: chat({ model: "no-such-model:1b" }),
    status: 404,
    param: "model",
    code: "model_not_found",
    message: /no-such-model/,
  },
  // --- messages ---
  { name: "messages missing", body: { model: "qwen3:8b" }, status: 400, param: "messages" },
  { name: "empty messages", body: chat({ messages: [] }), status: 400, param: "messages" },
  { name: "messages not an array", body: chat({ messages: "hi" }), status: 400, param: "messages" },
  { name: "message not an object", body: chat({ messages: ["hi"] }), status: 400, param: "messages[0]" },
  {
    name: "unknown role",
    body: chat({ messages: [{ role: "wizard", content: "hi" }] }),
    status: 400,
    param: "messages[0].role",
  },
  {
    name: 'role "function"',
    body: chat({ messages: [{ role: "function", name: "f", content: "{}" }] }),
    status: 400,
    param: "messages[0].role",
  },
  { name: "role missing", body: chat({ messages: [{ content: "hi" }] }), status: 400, param: "messages[0].role" },
  {
    name: "message without content",
    body: chat({ messages: [{ role: "user" }] }),
    status: 400,
    param: "messages[0].content",
  },
  {
    name: "content of wrong type (number)",
    body: chat({ messages: [{ role: "user", content: 7 }] }),
    status: 400,
    param: "messages[0].content",
  },
  {
    name: "content part of unknown type",
    body: chat({ messages: [{ role: "user", content: [{ type: "audio", data: "x" }] }] }),
    status: 400,
    param: "messages[0].content",
  },
  {
    name: "remote image URL is not fetched",
    body: chat({
      messages: [
        { role: "user", content: [{ type: "image_url", image_url: { url: "http://169.254.169.254/latest" } }] },
      ],
    }),
    status: 400,
    param: "messages[0].content[0].image_url.url",
  },
  {
    name: "tool message without tool_call_id",
    body: chat({
      messages: [
        { role: "user", content: "hi" },
        { role: "tool", content: "42" },
      ],
    }),
    status: 400,
    param: "messages[1].tool_call_id",
  },
  {
    name: "only system messages",
    body: chat({ messages: [{ role: "system", content: "be nice" }] }),
    status: 400,
    param: "messages",
  },
  {
    name: "assistant tool call with non-JSON arguments",
    body: chat({
      messages: [
        { role: "user", content: "hi" },
        {
          role: "assistant",
          tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{not json" } }],
        },
        { role: "tool", tool_call_id: "c1", content: "1" },
      ],
    }),
    status: 400,
    param: "messages[1].tool_calls[0].function.arguments",
  },
  // --- sampling and length ---
  { name: "temperature -1", body: chat({ temperature: -1 }), status: 400, param: "temperature" },
  { name: "temperature 3", body: chat({ temperature: 3 }), status: 400, param: "temperature" },
  { name: 'temperature "hot"', body: chat({ temperature: "hot" }), status: 400, param: "temperature" },
  { name: "top_p 2", body: chat({ top_p: 2 }), status: 400, param: "top_p" },
  { name: "max_tokens -5", body: chat({ max_tokens: -5 }), status: 400, param: "max_tokens" },
  { name: "max_tokens 0", body: chat({ max_tokens: 0 }), status: 400, param: "max_tokens" },
  { name: "max_tokens 1.5", body: chat({ max_tokens: 1.5 }), status: 400, param: "max_tokens" },
  { name: 'max_tokens "10"', body: chat({ max_tokens: "10" }), status: 400, param: "max_tokens" },
  { name: "n: 2", body: chat({ n: 2 }), status: 400, param: "n" },
  { name: "stop with 5 entries", body: chat({ stop: ["a", "b", "c", "d", "e"] }), status: 400, param: "stop" },
  { name: "presence_penalty 9", body: chat({ presence_penalty: 9 }), status: 400, param: "presence_penalty" },
  { name: "frequency_penalty -9", body: chat({ frequency_penalty: -9 }), status: 400, param: "frequency_penalty" },
  { name: "seed 1.5", body: chat({ seed: 1.5 }), status: 400, param: "seed" },
  { name: 'stream "yes"', body: chat({ stream: "yes" }), status: 400, param: "stream" },
  {
    name: "stream_options with unknown field",
    body: chat({ stream: true, stream_options: { everything: true } }),
    status: 400,
    param: "stream_options",
  },
  {
    name: "logprobs requested",
    body: chat({ logprobs: true }),
    status: 400,
    param: "logprobs",
    code: "unsupported_parameter",
  },
  // --- tools and formats ---
  {
    name: "tool with invalid function name",
    body: chat({ tools: [{ type: "function", function: { name: "rm -rf /", parameters: {} } }] }),
    status: 400,
    param: "tools[0].function.name",
  },
  {
    name: "duplicate tool names",
    body: chat({
      tools: [
        { type: "function", function: { name: "f" } },
        { type: "function", function: { name: "f" } },
      ],
    }),
    status: 400,
    param: "tools[1].function.name",
  },
  {
    name: "tool_choice naming a missing tool",
    body: chat({
      tools: [{ type: "function", function: { name: "f" } }],
      tool_choice: { type: "function", function: { name: "g" } },
    }),
    status: 400,
    param: "tool_choice",
  },
  {
    name: 'tool_choice "required" without tools',
    body: chat({ tool_choice: "required" }),
    status: 400,
    param: "tool_choice",
  },
  {
    name: 'response_format type "xml"',
    body: chat({ response_format: { type: "xml" } }),
    status: 400,
    param: "response_format.type",
  },
  // --- embeddings ---
  {
    name: "embeddings: empty input",
    path: "/v1/embeddings",
    body: { model: "nomic-embed-text", input: "" },
    status: 400,
    param: "input",
  },
  {
    name: "embeddings: empty input array",
    path: "/v1/embeddings",
    body: { model: "nomic-embed-text", input: [] },
    status: 400,
    param: "input",
  },
  {
    name: "embeddings: input of numbers",
    path: "/v1/embeddings",
    body: { model: "nomic-embed-text", input: [1, 2, 3] },
    status: 400,
    param: "input",
  },
  {
    name: "embeddings: 3000 inputs",
    path: "/v1/embeddings",
    body: { model: "nomic-embed-text", input: Array.from({ length: 3000 }, () => "a") },
    status: 400,
    param: "input",
  },
  {
    name: 'embeddings: encoding_format "hex"',
    path: "/v1/embeddings",
    body: { model: "nomic-embed-text", input: "a", encoding_format: "hex" },
    status: 400,
    param: "encoding_format",
  },
  { name: "embeddings: missing model", path: "/v1/embeddings", body: { input: "a" }, status: 400, param: "model" },
  // --- legacy completions ---
  {
    name: "completions: echo true",
    path: "/v1/completions",
    body: { model: "qwen3:8b", prompt: "hi", echo: true },
    status: 400,
    param: "echo",
  },
  {
    name: "completions: best_of 3",
    path: "/v1/completions",
    body: { model: "qwen3:8b", prompt: "hi", best_of: 3 },
    status: 400,
    param: "best_of",
  },
  {
    name: "completions: prompt array of 2",
    path: "/v1/completions",
    body: { model: "qwen3:8b", prompt: ["a", "b"] },
    status: 400,
    param: "prompt",
  },
  {
    name: "completions: prompt missing",
    path: "/v1/completions",
    body: { model: "qwen3:8b" },
    status: 400,
    param: "prompt",
  },
  {
    name: "completions: max_tokens -5",
    path: "/v1/completions",
    body: { model: "qwen3:8b", prompt: "hi", max_tokens: -5 },
    status: 400,
    param: "max_tokens",
  },
  // --- routes ---
  {
    name: "GET on a POST-only route",
    method: "GET",
    path: "/v1/chat/completions",
    body: undefined,
    status: 404,
    code: "unknown_route",
  },
  {
    name: "DELETE on models",
    method: "DELETE",
    path: "/v1/models",
    body: undefined,
    status: 404,
    code: "unknown_route",
  },
  {
    name: "unknown route",
    method: "POST",
    path: "/v1/nothing-here",
    body: chat({}),
    status: 404,
    code: "unknown_route",
  },
  { name: "path traversal route", method: "GET", path: "/v1/../../etc/passwd", body: undefined, status: 404 },
  {
    name: "unknown model by id",
    method: "GET",
    path: "/v1/models/nope:0b",
    body: undefined,
    status: 404,
    param: "model",
    code: "model_not_found",
  },
  // --- credentials ---
  {
    name: "unknown route without auth is 401, not 404",
    path: "/v1/secret-route",
    body: chat({}),
    headers: JSON_CT,
    rawHeaders: true,
    status: 401,
  },
  {
    name: "missing auth",
    body: chat({}),
    headers: JSON_CT,
    rawHeaders: true,
    status: 401,
    type: "authentication_error",
    code: "missing_token",
  },
  {
    name: "wrong token",
    body: chat({}),
    headers: { ...JSON_CT, authorization: "Bearer not-the-token-at-all" },
    rawHeaders: true,
    status: 401,
    code: "invalid_api_key",
  },
  {
    name: "Bearer with no token",
    body: chat({}),
    headers: { ...JSON_CT, authorization: "Bearer " },
    rawHeaders: true,
    status: 401,
  },
  {
    name: "Basic auth scheme",
    body: chat({}),
    headers: { ...JSON_CT, authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString("base64")}` },
    rawHeaders: true,
    status: 401,
  },
  {
    name: "token in the query string is not accepted",
    query: `?token=${TOKEN}`,
    body: chat({}),
    headers: JSON_CT,
    rawHeaders: true,
    status: 401,
  },
  {
    name: "api_key in the query string is not accepted",
    query: `?api_key=${TOKEN}`,
    body: chat({}),
    headers: JSON_CT,
    rawHeaders: true,
    status: 401,
  },
  {
    name: "wrong X-AppHub-Proxy-Token",
    body: chat({}),
    headers: { ...JSON_CT, "x-apphub-proxy-token": `${TOKEN}x` },
    rawHeaders: true,
    status: 401,
  },
];

async function send(c: Case): Promise<Response> {
  const headers = c.rawHeaders ? { ...c.headers } : { ...AUTH, ...JSON_CT, ...c.headers };
  const body =
    c.body === undefined
      ? undefined
      : typeof c.body === "string" || Buffer.isBuffer(c.body)
        ? (c.body as string | Buffer)
        : JSON.stringify(c.body);
  return fetch(`${h.url}${c.path ?? "/v1/chat/completions"}${c.query ?? ""}`, {
    method: c.method ?? "POST",
    headers,
    body,
    signal: AbortSignal.timeout(5_000),
  });
}

async function goodRequest(): Promise<void> {
  const res = await fetch(`${h.url}/v1/chat/completions`, {
    method: "POST",
    headers: { ...AUTH, ...JSON_CT },
    body: JSON.stringify(chat({ messages: [{ role: "user", content: "still there?" }] })),
    signal: AbortSignal.timeout(5_000),
  });
  expect(res.status).toBe(200);
  const json = (await res.json()) as { choices: { message: { content: string } }[] };
  expect(json.choices[0]!.message.content).toContain("still there?");
}

describe("hostile REST requests", () => {
  it("has at least 50 cases", () => {
    expect(cases.length).toBeGreaterThanOrEqual(50);
  });

  it.each(cases.map((c) => [c.name, c] as const))("%s", async (_name, c) => {
    const res = await send(c);
    const text = await res.text();
    expect(res.status, text).toBe(c.status);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = JSON.parse(text) as {
      error: { message: string; type: string; param: string | null; code: string | null };
    };
    expect(Object.keys(body)).toEqual(["error"]);
    expect(typeof body.error.message).toBe("string");
    expect(body.error.message.length).toBeGreaterThan(0);
    expect(typeof body.error.type).toBe("string");
    expect(body.error).toHaveProperty("param");
    expect(body.error).toHaveProperty("code");
    if (c.type) expect(body.error.type).toBe(c.type);
    else expect(body.error.type).toBe(c.status === 401 ? "authentication_error" : "invalid_request_error");
    if (c.param !== undefined) expect(body.error.param, body.error.message).toBe(c.param);
    if (c.code) expect(body.error.code).toBe(c.code);
    if (c.message) expect(body.error.message).toMatch(c.message);
    if (c.status === 401) expect(res.headers.get("www-authenticate")).toMatch(/^Bearer/);
    // No internals leak into messages.
    expect(body.error.message).not.toMatch(/\n\s+at /);
    expect(body.error.message).not.toContain(TOKEN);
    // Prototype pollution never reaches the shared prototype (the gateway runs in this process).
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    await goodRequest();
  });

  it("a field that is merely named constructor or __proto__-like data reaches the upstream intact", async () => {
    const parameters = {
      type: "object",
      properties: {
        constructor: { type: "string" },
        prototype: { type: "string" },
        note: { type: "string", description: "say \u00e9" },
      },
    };
    const res = await fetch(`${h.url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...AUTH, ...JSON_CT },
      body: JSON.stringify(chat({ tools: [{ type: "function", function: { name: "make", parameters } }] })),
    });
    expect(res.status).toBe(200);
    const sent = h.ollama.requests.findLast((r) => r.path === "/api/chat")!.body as {
      tools: { function: { parameters: unknown } }[];
    };
    expect(sent.tools[0]!.function.parameters).toEqual(parameters);
  });

  it("the model-not-found case reached the upstream and nothing else did", () => {
    const chats = h.ollama.requests.filter((r) => r.path === "/api/chat");
    const models = new Set(chats.map((r) => (r.body as { model?: string }).model));
    // Only the good requests and the one valid-but-unknown model were forwarded.
    expect([...models].sort()).toEqual(["no-such-model:1b", "qwen3:8b"]);
  });

  it("still serves health, models and streams after the whole table", async () => {
    const health = await fetch(`${h.url}/healthz`);
    expect(health.status).toBe(200);
    const models = await fetch(`${h.url}/v1/models`, { headers: AUTH });
    expect(models.status).toBe(200);
    const stream = await fetch(`${h.url}/v1/chat/completions`, {
      method: "POST",
      headers: { ...AUTH, ...JSON_CT },
      body: JSON.stringify(chat({ stream: true })),
      signal: AbortSignal.timeout(5_000),
    });
    expect(stream.status).toBe(200);
    expect(await stream.text()).toMatch(/data: \[DONE\]\n\n$/);
  });
});

describe("raw protocol abuse", () => {
  /** Writes raw bytes, returns what the server sent back before closing (or after 2 s). */
  function raw(bytes: Buffer | string, half = false): Promise<string> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(h.port, "127.0.0.1");
      const chunks: Buffer[] = [];
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(Buffer.concat(chunks).toString("latin1"));
      }, 2_000);
      socket.on("data", (c: Buffer) => chunks.push(c));
      socket.on("error", reject);
      socket.on("close", () => {
        clearTimeout(timer);
        resolve(Buffer.concat(chunks).toString("latin1"));
      });
      socket.write(bytes, () => {
        if (half) socket.end();
      });
    });
  }

  it("garbage instead of HTTP gets a 400 and the connection closed", async () => {
    expect(await raw("HELLO THERE\r\n\r\n")).toMatch(/^HTTP\/1\.1 400/);
    await goodRequest();
  });

  it("a truncated HTTP/2 preface followed by garbage does not hang the server", async () => {
    const out = await raw(Buffer.concat([Buffer.from("PRI * HTTP/2.0\r\n"), Buffer.from([0, 1, 2, 3, 0xff])]), true);
    expect(out === "" || out.startsWith("HTTP/1.1 400")).toBe(true);
    await goodRequest();
  });

  it("an HTTP/2 preface followed by a garbage frame is answered with GOAWAY, not a crash", async () => {
    const preface = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
    const bogusFrame = Buffer.from([0, 0, 4, 0xee, 0, 0, 0, 0, 1, 1, 2, 3, 4]);
    await raw(Buffer.concat([preface, bogusFrame, Buffer.alloc(64, 0xff)]), true);
    await goodRequest();
  });

  it("headers over Node's limit get 431", async () => {
    const out = await raw(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`);
    expect(out).toMatch(/^HTTP\/1\.1 431/);
    await goodRequest();
  });

  it("a body shorter than its Content-Length does not wedge the server", async () => {
    await raw(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"model":`,
      true,
    );
    await goodRequest();
  });
});

describe("hostile RPC calls (connect-node)", () => {
  const clients = () => createAgentgateClients({ baseUrl: h.url, token: TOKEN, httpVersion: "1.1" });

  async function codeOf(p: Promise<unknown>): Promise<Code> {
    try {
      await p;
    } catch (err) {
      return ConnectError.from(err).code;
    }
    throw new Error("the call succeeded");
  }

  async function goodRpc(): Promise<void> {
    const res = await clients().completion.chat({
      model: "qwen3:8b",
      messages: [{ role: Role.USER, content: "rpc ok?" }],
    });
    expect(res.message?.content).toContain("rpc ok?");
  }

  it("missing role -> invalid_argument", async () => {
    expect(await codeOf(clients().completion.chat({ model: "qwen3:8b", messages: [{ content: "hi" }] }))).toBe(
      Code.InvalidArgument,
    );
    await goodRpc();
  });

  it("no messages -> invalid_argument", async () => {
    expect(await codeOf(clients().completion.chat({ model: "qwen3:8b", messages: [] }))).toBe(Code.InvalidArgument);
    await goodRpc();
  });

  it("temperature NaN -> invalid_argument", async () => {
    const p = clients().completion.chat({
      model: "qwen3:8b",
      messages: [{ role: Role.USER, content: "hi" }],
      options: { temperature: Number.NaN },
    });
    expect(await codeOf(p)).toBe(Code.InvalidArgument);
    await goodRpc();
  });

  it("temperature NaN in a server stream -> invalid_argument", async () => {
    const run = async () => {
      for await (const _ of clients().completion.chatStream({
        model: "qwen3:8b",
        messages: [{ role: Role.USER, content: "hi" }],
        options: { topP: Number.POSITIVE_INFINITY },
      }));
    };
    expect(await codeOf(run())).toBe(Code.InvalidArgument);
    await goodRpc();
  });

  it("model with control characters -> invalid_argument", async () => {
    const p = clients().completion.chat({ model: "a\u0000b", messages: [{ role: Role.USER, content: "hi" }] });
    expect(await codeOf(p)).toBe(Code.InvalidArgument);
    await goodRpc();
  });

  it("oversized message over RPC_MESSAGE_LIMIT_BYTES -> resource_exhausted (HTTP/1.1 and h2c gRPC)", async () => {
    const big = { model: "qwen3:8b", messages: [{ role: Role.USER, content: "x".repeat(RPC_LIMIT * 2) }] };
    expect(await codeOf(clients().completion.chat(big))).toBe(Code.ResourceExhausted);
    const mark = h.logs.length;
    const grpc = createAgentgateClients({ baseUrl: h.url, token: TOKEN, protocol: "grpc" });
    expect(await codeOf(grpc.completion.chat(big))).toBe(Code.ResourceExhausted);
    // The refused h2 stream is released (not kept until the session ends) and logged as refused.
    await expect
      .poll(() => h.logs.slice(mark).find((l) => l.msg === "request" && l.protocol === "grpc")?.status, {
        timeout: 2_000,
      })
      .toBe("resource_exhausted");
    await goodRpc();
  });

  it("unknown method -> unimplemented", async () => {
    const chatMethod = CompletionService.method.chat;
    const fake = { ...CompletionService, method: {}, methods: [] } as unknown as typeof CompletionService;
    const bogus = { ...chatMethod, name: "NoSuchMethod", localName: "noSuchMethod", parent: fake };
    (fake as unknown as { method: Record<string, unknown>; methods: unknown[] }).method = { noSuchMethod: bogus };
    (fake as unknown as { methods: unknown[] }).methods = [bogus];
    for (const opts of [{ httpVersion: "1.1" as const }, { protocol: "grpc" as const }]) {
      const t = createAgentgateClients({ baseUrl: h.url, token: TOKEN, ...opts }).transport;
      const client = createClient(fake, t) as unknown as { noSuchMethod(r: unknown): Promise<unknown> };
      expect(await codeOf(client.noSuchMethod({ model: "qwen3:8b" }))).toBe(Code.Unimplemented);
    }
    await goodRpc();
  });

  it("garbage protobuf bytes -> a Connect error, logged as such", async () => {
    const mark = h.logs.length;
    const res = await fetch(`${h.url}/agentgate.v1.CompletionService/Chat`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/proto", "connect-protocol-version": "1" },
      body: Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f, 0x01]),
    });

    // connect-es reports undecodable binary messages as `internal` (as gRPC servers do): still a
    // Connect error, never a hang, and the request log records the failure rather than "ok".
    const json = (await res.json()) as { code: string; message: string };
    expect(["invalid_argument", "internal"]).toContain(json.code);
    expect(json.message).toMatch(/parse binary/);
    await expect
      .poll(
        () =>
          h.logs
            .slice(mark)
            .find((l) => l.msg === "request" && String(l.url).endsWith("CompletionService/Chat") && l.status !== "ok")
            ?.status,
      )
      .toBe(json.code);
    await goodRpc();
  });

  it("Connect JSON with unknown fields and bad JSON -> invalid_argument", async () => {
    for (const body of ['{"model":', '{"model":"qwen3:8b","messages":[{"role":"ROLE_WIZARD","content":"hi"}]}']) {
      const res = await fetch(`${h.url}/agentgate.v1.CompletionService/Chat`, {
        method: "POST",
        headers: { ...AUTH, "content-type": "application/json", "connect-protocol-version": "1" },
        body,
      });
      expect(res.status, body).toBe(400);
      expect(((await res.json()) as { code: string }).code).toBe("invalid_argument");
    }
    await goodRpc();
  });
});

describe("after everything", () => {
  it("closes promptly: no refused request lingers on a connection", async () => {
    const started = Date.now();
    await h.gate.close();
    // SHUTDOWN_GRACE_MS is 500 in the harness; a lingering h2 stream would hold close until the
    // force-close 2 s later.
    expect(Date.now() - started).toBeLessThan(1_500);
    closed = true;
    await h.close();
  });
});
