/**
 * Contract: every REST body and every SSE chunk the OpenAI shim produces in a set of representative
 * exchanges validates against the OpenAI OpenAPI document (OPENAI_OPENAPI_SPEC). Requests go over plain
 * fetch so the bytes validated are exactly the bytes on the wire (an SDK would reshape them).
 *
 * Two places where the document does not describe what OpenAI itself sends, and what is done about it:
 * - Legacy completions stream chunks: the document says they are `CreateCompletionResponse` objects, whose
 *   `finish_reason` is a required non-null enum; OpenAI (and every compatible server) sends
 *   `finish_reason: null` on every chunk before the finishing one, and clients rely on that to find the
 *   end. Those chunks are asserted to carry exactly `null`, then validated with it replaced by "stop".
 * - `encoding_format: "base64"` embeddings: the document types `embedding` as an array of floats only;
 *   OpenAI sends a base64 string of little-endian float32s. The string is asserted to be exactly that
 *   and the body validated with it decoded.
 * The gateway's one non-standard field, `reasoning_content` (message and delta, the de-facto field of
 * vLLM/DeepSeek), is NOT stripped: `ChatCompletionResponseMessage` and `ChatCompletionStreamResponseDelta`
 * leave additional properties open, and the tests below validate bodies that carry it.
 */
import { afterAll, beforeAll, beforeEach, expect, it } from "vitest";
import { startOpenAIUpstreamDouble, type OpenAIUpstreamDouble } from "../doubles/openai-upstream-double.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import { OPENAI_SCHEMAS, describeWithOpenAISpec, openaiValidator, parseSSE } from "../support/openai-spec.js";

type Body = Record<string, any>;

const TOKEN = "contract-secret";

const v = {
  chat: openaiValidator(OPENAI_SCHEMAS.chatCompletion),
  chunk: openaiValidator(OPENAI_SCHEMAS.chatCompletionChunk),
  completion: openaiValidator(OPENAI_SCHEMAS.completion),
  models: openaiValidator(OPENAI_SCHEMAS.modelList),
  model: openaiValidator(OPENAI_SCHEMAS.model),
  embeddings: openaiValidator(OPENAI_SCHEMAS.embeddingList),
  error: openaiValidator(OPENAI_SCHEMAS.error),
};

describeWithOpenAISpec("OpenAI REST/SSE contract", () => {
  let h: GatewayHarness;
  let vllm: OpenAIUpstreamDouble;

  beforeAll(async () => {
    vllm = await startOpenAIUpstreamDouble();
    h = await startGateway({ env: { AUTH_TOKEN: TOKEN, BACKENDS: `vllm=${vllm.url}/v1` } });
  });

  afterAll(async () => {
    await h?.close();
    await vllm?.close();
  });

  beforeEach(async () => {
    await h.ollama.up();
    h.ollama.reset();
    vllm.reset();
  });

  interface Answer {
    status: number;
    contentType: string;
    text: string;
  }

  async function send(
    method: "GET" | "POST",
    path: string,
    body?: unknown,
    headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` },
  ): Promise<Answer> {
    const res = await fetch(`${h.url}${path}`, {
      method,
      headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
      signal: AbortSignal.timeout(5_000),
    });
    return { status: res.status, contentType: res.headers.get("content-type") ?? "", text: await res.text() };
  }

  /** A 200 JSON body. */
  async function json(method: "GET" | "POST", path: string, body?: unknown): Promise<Body> {
    const a = await send(method, path, body);
    expect(a.status, a.text).toBe(200);
    expect(a.contentType).toMatch(/^application\/json/);
    return JSON.parse(a.text) as Body;
  }

  /** Every `data:` event of a 200 event stream that ended with [DONE], parsed. */
  async function events(path: string, body: unknown): Promise<Body[]> {
    const a = await send("POST", path, body);
    expect(a.status, a.text).toBe(200);
    expect(a.contentType).toMatch(/^text\/event-stream/);
    const { events: list, done } = parseSSE(a.text);
    expect(done).toBe(true);
    expect(list.length).toBeGreaterThan(0);
    return list.map((e) => {
      expect(e.event).toBeUndefined();
      return JSON.parse(e.data) as Body;
    });
  }

  /** An error status with an OpenAI error object. */
  async function failure(
    status: number,
    method: "GET" | "POST",
    path: string,
    body?: unknown,
    headers?: Record<string, string>,
  ): Promise<Body["error"]> {
    const a = await send(method, path, body, headers);
    expect(a.status, a.text).toBe(status);
    expect(a.contentType).toMatch(/^application\/json/);
    const parsed = JSON.parse(a.text) as Body;
    v.error(parsed);
    return parsed.error;
  }

  const user = (content: string) => ({ role: "user", content });
  const tools = [
    {
      type: "function",
      function: { name: "get_weather", parameters: { type: "object", properties: { city: { type: "string" } } } },
    },
  ];

  const finishes = (chunks: Body[]) =>
    chunks.flatMap((c) => c.choices.map((ch: Body) => ch.finish_reason)).filter((f) => f !== null);

  it("chat: plain completion", async () => {
    const body = await json("POST", "/v1/chat/completions", { model: "qwen3:8b", messages: [user("hello")] });
    v.chat(body);
    expect(body.choices[0].message.content).toBe("You said: hello");
  });

  it("chat: with reasoning_content in the message (non-standard, left in)", async () => {
    h.ollama.enqueue({ thinking: ["hmm"], content: ["ok"] });
    const body = await json("POST", "/v1/chat/completions", { model: "qwen3:8b", messages: [user("think")] });
    expect(body.choices[0].message.reasoning_content).toBe("hmm");
    v.chat(body);
  });

  it("chat: stream, every chunk", async () => {
    h.ollama.enqueue({ thinking: ["let me", " see"], content: ["a", "b", "c"] });
    const chunks = await events("/v1/chat/completions", { model: "qwen3:8b", messages: [user("x")], stream: true });
    chunks.forEach((c) => v.chunk(c));
    expect(chunks.some((c) => c.choices[0]?.delta.reasoning_content === "let me")).toBe(true);
    expect(chunks.every((c) => c.choices.length === 1 && !("usage" in c))).toBe(true);
    expect(finishes(chunks)).toEqual(["stop"]);
  });

  it("chat: stream with include_usage, every chunk", async () => {
    const chunks = await events("/v1/chat/completions", {
      model: "qwen3:8b",
      messages: [user("count to three")],
      stream: true,
      stream_options: { include_usage: true },
    });
    chunks.forEach((c) => v.chunk(c));
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage.total_tokens).toBe(last.usage.prompt_tokens + last.usage.completion_tokens);
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
  });

  it("chat: tool calls", async () => {
    h.ollama.enqueue({
      toolCalls: [
        { name: "get_weather", arguments: { city: "Oslo" } },
        { name: "get_weather", arguments: { city: "Rome" } },
      ],
    });
    const body = await json("POST", "/v1/chat/completions", { model: "qwen3:8b", messages: [user("weather")], tools });
    v.chat(body);
    expect(body.choices[0].finish_reason).toBe("tool_calls");
    expect(body.choices[0].message.tool_calls).toHaveLength(2);
  });

  it("chat: stream with tool calls and usage, every chunk", async () => {
    h.ollama.enqueue({ toolCalls: [{ name: "get_weather", arguments: { city: "Oslo" } }] });
    const chunks = await events("/v1/chat/completions", {
      model: "qwen3:8b",
      messages: [user("weather")],
      tools,
      stream: true,
      stream_options: { include_usage: true },
    });
    chunks.forEach((c) => v.chunk(c));
    expect(chunks.some((c) => c.choices[0]?.delta.tool_calls?.[0]?.function?.name === "get_weather")).toBe(true);
    expect(finishes(chunks)).toEqual(["tool_calls"]);
  });

  it("chat: stream with tool calls from the OpenAI-compatible upstream, every chunk", async () => {
    vllm.enqueue({ thinking: ["r"], toolCalls: [{ name: "get_weather", arguments: { city: "Oslo" } }] });
    const chunks = await events("/v1/chat/completions", {
      model: "vllm/Qwen/Qwen3-8B",
      messages: [user("weather")],
      tools,
      stream: true,
    });
    chunks.forEach((c) => v.chunk(c));
    expect(finishes(chunks)).toEqual(["tool_calls"]);
  });

  it("completions: plain", async () => {
    const body = await json("POST", "/v1/completions", { model: "qwen3:8b", prompt: "Once upon", max_tokens: 2 });
    v.completion(body);
    expect(body.choices[0].finish_reason).toBe("length");
  });

  it("completions: stream with include_usage, every chunk", async () => {
    const chunks = await events("/v1/completions", {
      model: "qwen3:8b",
      prompt: "Once upon a time",
      stream: true,
      stream_options: { include_usage: true },
    });
    const finishing = chunks.findIndex((c) => c.choices[0]?.finish_reason);
    expect(finishing).toBeGreaterThan(0);
    chunks.forEach((c, i) => {
      if (i < finishing) {
        // See the header: null mid-stream is what OpenAI sends; the document's enum has no null.
        expect(c.choices.map((ch: Body) => ch.finish_reason)).toEqual([null]);
        v.completion({ ...c, choices: c.choices.map((ch: Body) => ({ ...ch, finish_reason: "stop" })) });
      } else {
        v.completion(c);
      }
    });
    expect(chunks.at(-1)!.choices).toEqual([]);
    expect(chunks.at(-1)!.usage.completion_tokens).toBeGreaterThan(0);
  });

  it("models: list and retrieve (including a slashed id)", async () => {
    const list = await json("GET", "/v1/models");
    v.models(list);
    expect(list.data.map((m: Body) => m.id)).toContain("vllm/Qwen/Qwen3-8B");
    for (const id of ["qwen3:8b", "vllm/Qwen/Qwen3-8B", encodeURIComponent("vllm/BAAI/bge-small-en-v1.5")]) {
      const model = await json("GET", `/v1/models/${id}`);
      v.model(model);
      expect(model.id).toBe(decodeURIComponent(id));
    }
  });

  it("embeddings: float", async () => {
    const body = await json("POST", "/v1/embeddings", {
      model: "nomic-embed-text",
      input: ["a", "b"],
      encoding_format: "float",
    });
    v.embeddings(body);
    expect(body.data).toHaveLength(2);
  });

  it("embeddings: base64 (decoded before validation, see the header)", async () => {
    const floats = await json("POST", "/v1/embeddings", { model: "nomic-embed-text", input: "a" });
    const body = await json("POST", "/v1/embeddings", {
      model: "nomic-embed-text",
      input: "a",
      encoding_format: "base64",
    });
    const encoded = body.data[0].embedding as string;
    expect(typeof encoded).toBe("string");
    expect(encoded).toMatch(/^[A-Za-z0-9+/]+={0,2}$/);
    const bytes = Buffer.from(encoded, "base64");
    expect(bytes.length).toBe(4 * floats.data[0].embedding.length);
    const decoded = Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, bytes.length / 4));
    expect(decoded).toEqual(floats.data[0].embedding.map((x: number) => Math.fround(x)));
    v.embeddings({ ...body, data: [{ ...body.data[0], embedding: decoded }] });
  });

  it("errors: 400 for a malformed body, a schema violation and a semantic rule", async () => {
    const badJson = await failure(400, "POST", "/v1/chat/completions", '{"model":');
    expect(badJson.type).toBe("invalid_request_error");
    const badRole = await failure(400, "POST", "/v1/chat/completions", {
      model: "qwen3:8b",
      messages: [{ role: "wizard", content: "x" }],
    });
    expect(badRole.param).toBe("messages[0].role");
    const negative = await failure(400, "POST", "/v1/completions", { model: "qwen3:8b", prompt: "x", max_tokens: -1 });
    expect(negative.param).toBe("max_tokens");
    const toolMsg = await failure(400, "POST", "/v1/chat/completions", {
      model: "qwen3:8b",
      messages: [user("x"), { role: "tool", content: "r" }],
    });
    expect(toolMsg.param).toBe("messages[1].tool_call_id");
    expect(h.ollama.requests.filter((r) => r.path === "/api/chat")).toHaveLength(0);
  });

  it("errors: 401 without a token and with a wrong one", async () => {
    const none = await failure(401, "GET", "/v1/models", undefined, {});
    expect(none.type).toBe("authentication_error");
    await failure(
      401,
      "POST",
      "/v1/chat/completions",
      { model: "qwen3:8b", messages: [user("x")] },
      { authorization: "Bearer wrong" },
    );
    expect(h.ollama.requests).toHaveLength(0);
  });

  it("errors: 404 for an unknown model (upstream and retrieve) and an unknown route", async () => {
    const upstream = await failure(404, "POST", "/v1/chat/completions", {
      model: "no-such-model:1b",
      messages: [user("x")],
    });
    expect(upstream.code).toBe("model_not_found");
    const retrieve = await failure(404, "GET", "/v1/models/vllm/no/such");
    expect(retrieve.param).toBe("model");
    await failure(404, "GET", "/v1/nothing-here");
  });

  it("errors: 502 when the upstream fails, naming it", async () => {
    h.ollama.enqueue({ httpError: { status: 500, message: "llama runner process has terminated" } });
    const err = await failure(502, "POST", "/v1/chat/completions", {
      model: "qwen3:8b",
      messages: [user("x")],
      stream: true,
    });
    expect(err.message).toContain("ollama at http://127.0.0.1");
    expect(err.message).toContain("llama runner process has terminated");
  });

  it("errors: 503 when the upstream is down, naming it", async () => {
    await h.ollama.down();
    const chat = await failure(503, "POST", "/v1/chat/completions", { model: "qwen3:8b", messages: [user("x")] });
    expect(chat.message).toContain(h.ollama.url);
    await failure(503, "POST", "/v1/embeddings", { model: "nomic-embed-text", input: "x" });
  });

  it("errors: an upstream failure mid-stream is an SSE error event followed by [DONE]", async () => {
    h.ollama.enqueue({ content: ["a", "b", "c"], midStreamError: { afterChunks: 2, message: "out of memory" } });
    const chunks = await events("/v1/chat/completions", {
      model: "qwen3:8b",
      messages: [user("x")],
      stream: true,
      stream_options: { include_usage: true },
    });
    const last = chunks.at(-1)!;
    v.error(last);
    expect(last.error.message).toContain("out of memory");
    expect(chunks.length).toBeGreaterThan(1);
    chunks.slice(0, -1).forEach((c) => v.chunk(c));

    h.ollama.enqueue({ content: ["a", "b"], midStreamError: { afterChunks: 1, message: "boom" } });
    const text = await events("/v1/completions", { model: "qwen3:8b", prompt: "x", stream: true });
    v.error(text.at(-1));
    expect(text.at(-1)!.error.message).toContain("boom");
  });
});
