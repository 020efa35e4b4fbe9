// Drives the upstream doubles with plain fetch and with the official clients (ollama, openai), so
// that the doubles are proven to speak the real wire formats before other tests rely on them.
import { Ollama, type ChatResponse, type Tool } from "ollama";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";

import { DEFAULT_OLLAMA_MODELS, startOllamaDouble, type OllamaDouble } from "./ollama-double.js";
import { startOpenAIUpstreamDouble, type OpenAIUpstreamDouble } from "./openai-upstream-double.js";

/** Parsed wire JSON; `any` keeps the nested assertions readable. */
type Json = Record<string, any>;

const user = (content: string) => [{ role: "user", content }];
const weatherTool: Tool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Get the weather in a given city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

async function ndjson(res: Response): Promise<Json[]> {
  const text = await res.text();
  expect(text.endsWith("\n")).toBe(true);
  return text
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as Json);
}

/** `data:` payloads of an SSE body, `[DONE]` kept as a string. */
async function sseData(res: Response): Promise<Array<Json | "[DONE]">> {
  const text = await res.text();
  return text
    .split("\n\n")
    .filter((event) => event.startsWith("data: "))
    .map((event) => event.slice(6))
    .map((data) => (data === "[DONE]" ? "[DONE]" : (JSON.parse(data) as Json)));
}

function norm(vector: number[]): number {
  return Math.sqrt(vector.reduce((sum, x) => sum + x * x, 0));
}

describe("Ollama double", () => {
  let double: OllamaDouble;
  let ollama: Ollama;
  const post = (path: string, body: unknown, init: RequestInit = {}) =>
    fetch(`${double.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: typeof body === "string" ? body : JSON.stringify(body),
      ...init,
    });

  beforeAll(async () => {
    double = await startOllamaDouble({
      models: [...DEFAULT_OLLAMA_MODELS, { name: "gemma2:2b", family: "gemma2", capabilities: ["completion"] }],
    });
    ollama = new Ollama({ host: double.url });
  });
  afterAll(() => double.close());
  beforeEach(() => double.reset());

  it("answers version, tags, show and ps in Ollama shapes", async () => {
    expect((await ollama.version()).version).toMatch(/^\d+\.\d+\.\d+$/);
    const { models } = await ollama.list();
    expect(models.map((m) => m.name)).toEqual(["qwen3:8b", "llama3.2:3b", "nomic-embed-text:latest", "gemma2:2b"]);
    expect(models[0]).toMatchObject({
      model: "qwen3:8b",
      size: 5_225_388_164,
      details: { format: "gguf", family: "qwen3", families: ["qwen3"] },
    });
    expect(models[0].digest).toMatch(/^[0-9a-f]{64}$/);

    const show = await ollama.show({ model: "qwen3:8b" });
    expect(show.model_info).toMatchObject({ "general.architecture": "qwen3", "qwen3.context_length": 40_960 });
    expect(show.capabilities).toEqual(["completion", "tools", "thinking"]);
    // A tagless name means :latest, as in Ollama.
    expect((await ollama.show({ model: "nomic-embed-text" })).capabilities).toEqual(["embedding"]);
    await expect(ollama.show({ model: "missing:1b" })).rejects.toMatchObject({
      status_code: 404,
      error: "model 'missing:1b' not found",
    });

    expect((await ollama.ps()).models).toEqual([]);
    await ollama.chat({ model: "llama3.2:3b", messages: user("hi") });
    expect((await ollama.ps()).models.map((m) => m.name)).toEqual(["llama3.2:3b"]);
  });

  it("streams /api/chat as NDJSON by default and echoes the last user message", async () => {
    const res = await post("/api/chat", {
      model: "qwen3:8b",
      messages: [{ role: "system", content: "brief" }, ...user("hello double")],
    });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const lines = await ndjson(res);
    const final = lines.pop() as Json;
    expect(lines.length).toBeGreaterThan(1);
    expect(lines.every((l) => l.done === false && l.message.role === "assistant" && l.model === "qwen3:8b")).toBe(true);
    expect(lines.map((l) => l.message.content).join("")).toBe("You said: hello double");
    expect(final).toMatchObject({
      done: true,
      done_reason: "stop",
      message: { role: "assistant", content: "" },
      eval_count: lines.length,
    });
    for (const key of [
      "total_duration",
      "load_duration",
      "prompt_eval_count",
      "prompt_eval_duration",
      "eval_duration",
    ]) {
      expect(final[key]).toBeGreaterThan(0);
    }
    expect(final.total_duration).toBeGreaterThanOrEqual(
      final.load_duration + final.prompt_eval_duration + final.eval_duration,
    );
  });

  it("answers stream:false with one JSON object and cuts the echo at num_predict", async () => {
    const res = await post("/api/chat", {
      model: "llama3.2:3b",
      messages: user("one two three four"),
      stream: false,
      options: { num_predict: 2 },
    });
    expect(res.headers.get("content-type")).toContain("application/json");
    expect(await res.json()).toMatchObject({
      message: { role: "assistant", content: "You said:" },
      done: true,
      done_reason: "length",
      eval_count: 2,
    });
  });

  it("streams scripted thinking, content and whole tool calls with object arguments", async () => {
    double.enqueue({
      thinking: ["Let me ", "look."],
      content: ["Checking", "."],
      toolCalls: [{ name: "get_weather", arguments: { city: "Tokyo", days: 2 } }],
      promptEvalCount: 7,
      evalCount: 42,
    });
    const stream = await ollama.chat({
      model: "qwen3:8b",
      messages: user("weather in Tokyo?"),
      tools: [weatherTool],
      stream: true,
    });
    const parts: ChatResponse[] = [];
    for await (const part of stream) parts.push(part);
    expect(parts.map((p) => p.message.thinking ?? "").join("")).toBe("Let me look.");
    expect(parts.map((p) => p.message.content).join("")).toBe("Checking.");
    const calls = parts.flatMap((p) => p.message.tool_calls ?? []);
    expect(calls).toHaveLength(1);
    expect(calls[0].function).toEqual({ index: 0, name: "get_weather", arguments: { city: "Tokyo", days: 2 } });
    expect((calls[0] as { id?: string }).id).toMatch(/^call_[a-z0-9]{8}$/);
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: "stop", prompt_eval_count: 7, eval_count: 42 });

    // Not streamed: one object aggregating everything; `think: false` drops the reasoning.
    double.enqueue({ thinking: ["hidden"], toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] });
    const reply = await ollama.chat({
      model: "qwen3:8b",
      messages: user("and Paris?"),
      tools: [weatherTool],
      think: false,
    });
    expect(reply.message).toMatchObject({
      role: "assistant",
      content: "",
      tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
    });
    expect(reply.message.thinking).toBeUndefined();
  });

  it("serves /api/generate streamed and not, and the load reply for an empty prompt", async () => {
    double.enqueue({ content: ["def ", "f(): ", "pass"], doneReason: "length" });
    const stream = await ollama.generate({ model: "llama3.2:3b", prompt: "def f", stream: true });
    const parts = [];
    for await (const part of stream) parts.push(part);
    expect(parts.map((p) => p.response).join("")).toBe("def f(): pass");
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: "length", eval_count: 3 });

    expect(await ollama.generate({ model: "llama3.2:3b", prompt: "sky?" })).toMatchObject({
      response: "You said: sky?",
      done: true,
    });
    expect(await (await post("/api/generate", { model: "llama3.2:3b" })).json()).toMatchObject({
      response: "",
      done: true,
      done_reason: "load",
    });
    const raw = await post("/api/generate", { model: "llama3.2:3b", prompt: "x", raw: true, system: "s" });
    expect([raw.status, await raw.json()]).toEqual([
      400,
      { error: "raw mode does not support template, system, or context" },
    ]);
  });

  it("embeds deterministically with L2-normalised vectors", async () => {
    const res = await ollama.embed({ model: "nomic-embed-text", input: ["same text", "other text", "same text"] });
    expect(res.model).toBe("nomic-embed-text");
    expect(res.embeddings).toHaveLength(3);
    for (const v of res.embeddings) {
      expect(v).toHaveLength(768);
      expect(norm(v)).toBeCloseTo(1, 9);
    }
    expect(res.embeddings[0]).toEqual(res.embeddings[2]);
    expect(res.embeddings[0]).not.toEqual(res.embeddings[1]);
    expect(res.prompt_eval_count).toBeGreaterThan(0);
    expect((await ollama.embed({ model: "nomic-embed-text", input: "same text" })).embeddings[0]).toEqual(
      res.embeddings[0],
    );

    // `dimensions` truncates and re-normalises, as Ollama does.
    const short = (await (
      await post("/api/embed", { model: "nomic-embed-text", input: "same text", dimensions: 64 })
    ).json()) as Json;
    expect(short.embeddings[0]).toHaveLength(64);
    const prefix = res.embeddings[0].slice(0, 64);
    short.embeddings[0].forEach((x: number, i: number) => expect(x).toBeCloseTo(prefix[i] / norm(prefix), 12));

    const legacy = await ollama.embeddings({ model: "nomic-embed-text", prompt: "same text" });
    expect(legacy.embedding).toHaveLength(768);
    await expect(ollama.embeddings({ model: "nope", prompt: "x" })).rejects.toMatchObject({
      status_code: 404,
      error: 'model "nope" not found, try pulling it first',
    });
    const tooLong = await post("/api/embed", { model: "nomic-embed-text", input: "x".repeat(20_000), truncate: false });
    expect([tooLong.status, await tooLong.json()]).toEqual([
      400,
      { error: "the input length exceeds the context length" },
    ]);
  });

  it("rejects what Ollama rejects, with Ollama's statuses and messages", async () => {
    const cases: Array<[string, unknown, number, string]> = [
      ["/api/chat", '{"model":', 400, "Unexpected end of JSON input"],
      ["/api/chat", "", 400, "missing request body"],
      ["/api/chat", [], 400, "json: cannot unmarshal array into Go value of type api.ChatRequest"],
      [
        "/api/chat",
        { model: "qwen3:8b", messages: "hi" },
        400,
        "json: cannot unmarshal string into Go struct field ChatRequest.messages of type []api.Message",
      ],
      ["/api/chat", { messages: user("x") }, 400, "model is required"],
      ["/api/chat", { model: "ghost:7b", messages: user("x") }, 404, "model 'ghost:7b' not found"],
      [
        "/api/chat",
        { model: "nomic-embed-text", messages: user("x") },
        400,
        '"nomic-embed-text" does not support chat',
      ],
      [
        "/api/chat",
        { model: "gemma2:2b", messages: user("x"), think: true },
        400,
        '"gemma2:2b" does not support thinking',
      ],
      [
        "/api/chat",
        { model: "gemma2:2b", messages: user("x"), tools: [weatherTool] },
        400,
        "registry.ollama.ai/library/gemma2:2b does not support tools",
      ],
      [
        "/api/generate",
        { model: "nomic-embed-text", prompt: "x" },
        400,
        '"nomic-embed-text" does not support generate',
      ],
      ["/api/embed", { model: "nomic-embed-text", input: [1, 2] }, 400, "invalid input type"],
      ["/api/show", {}, 400, "model is required"],
    ];
    for (const [path, body, status, error] of cases) {
      const res = await post(path, body);
      expect({ path, body, status: res.status, json: await res.json() }).toEqual({
        path,
        body,
        status,
        json: { error },
      });
    }
    const unknown = await fetch(`${double.url}/api/nope`);
    expect([unknown.status, await unknown.text()]).toEqual([404, "404 page not found"]);
    expect((await fetch(`${double.url}/api/chat`)).status).toBe(405);
    expect(double.requests.length).toBe(cases.length + 2);

    double.enqueue({ httpError: { status: 429, message: "too many requests" } });
    await expect(ollama.chat({ model: "qwen3:8b", messages: user("x"), stream: true })).rejects.toMatchObject({
      status_code: 429,
      error: "too many requests",
    });
  });

  it('sends an {"error"} line after a 200 mid-stream, and a 500 before the first byte', async () => {
    const midStreamError = { afterChunks: 2, message: "an error was encountered while running the model" };
    double.enqueue({ content: ["a", "b", "c"], midStreamError });
    const res = await post("/api/chat", { model: "qwen3:8b", messages: user("x") });
    expect(res.status).toBe(200);
    expect((await ndjson(res)).map((l) => l.message?.content ?? l.error)).toEqual(["a", "b", midStreamError.message]);

    double.enqueue({ content: ["a", "b", "c"], midStreamError });
    const stream = await ollama.chat({ model: "qwen3:8b", messages: user("x"), stream: true });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const part of stream) seen.push(part.message.content);
      })(),
    ).rejects.toThrow(midStreamError.message);
    expect(seen).toEqual(["a", "b"]);

    // Before the first line, and when not streaming, the status still carries it (gin not yet written).
    double.enqueue({ content: ["a"], midStreamError: { afterChunks: 0, message: "early" } });
    const early = await post("/api/chat", { model: "qwen3:8b", messages: user("x") });
    expect([early.status, await early.json()]).toEqual([500, { error: "early" }]);
    double.enqueue({ content: ["a", "b"], midStreamError });
    const whole = await post("/api/chat", { model: "qwen3:8b", messages: user("x"), stream: false });
    expect([whole.status, await whole.json()]).toEqual([500, { error: midStreamError.message }]);
  });

  it("delays the first byte and spaces the chunks as scripted", async () => {
    double.enqueue({ content: ["a", "b", "c"], firstByteDelayMs: 80, chunkDelayMs: 40 });
    const start = performance.now();
    const res = await post("/api/chat", { model: "qwen3:8b", messages: user("x") });
    expect(performance.now() - start).toBeGreaterThanOrEqual(75);
    // Arrival time of each NDJSON line: a, b, c and the final line, 40 ms apart.
    const arrivals: number[] = [];
    const reader = res.body!.getReader();
    for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
      for (const byte of chunk.value) if (byte === 0x0a) arrivals.push(performance.now() - start);
    }
    expect(arrivals).toHaveLength(4);
    expect(arrivals[3]).toBeGreaterThanOrEqual(80 + 3 * 40 - 5);
    expect(arrivals[3] - arrivals[0]).toBeGreaterThanOrEqual(60);
  });

  it("hangs until the client aborts, and reports the abort", async () => {
    double.enqueue({ content: ["one", "two"], hang: { afterChunks: 1 } });
    const stream = await ollama.chat({ model: "qwen3:8b", messages: user("x"), stream: true });
    const iterator = stream[Symbol.asyncIterator]();
    expect((await iterator.next()).value?.message.content).toBe("one");
    stream.abort();
    await expect(iterator.next()).rejects.toThrow();
    expect((await double.waitForAbort(1_000)).path).toBe("/api/chat");

    // Hanging before the status line: an aborted fetch is seen too.
    double.enqueue({ hang: true });
    await expect(
      post("/api/generate", { model: "qwen3:8b", prompt: "x" }, { signal: AbortSignal.timeout(50) }),
    ).rejects.toThrow();
    expect((await double.waitForAbort(1_000)).path).toBe("/api/generate");
    expect(double.aborted).toBe(2);

    // Finished replies are not aborts; waitForAbort times out.
    await (await post("/api/chat", { model: "qwen3:8b", messages: user("x") })).text();
    await expect(double.waitForAbort(30)).rejects.toThrow("no client abort within 30 ms");
    expect(double.aborted).toBe(2);
  });

  it("cuts the socket mid-stream without counting it as a client abort", async () => {
    double.enqueue({ content: ["one", "two", "three"], destroy: { afterChunks: 1 } });
    const stream = await ollama.chat({ model: "qwen3:8b", messages: user("x"), stream: true });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const part of stream) seen.push(part.message.content);
      })(),
    ).rejects.toThrow();
    expect(seen).toEqual(["one"]);

    double.enqueue({ destroy: true });
    await expect(post("/api/chat", { model: "qwen3:8b", messages: user("x") })).rejects.toThrow();
    expect(double.aborted).toBe(0);
  });

  it("refuses connections while down and serves on the same port after up", async () => {
    const url = double.url;
    await double.down();
    await expect(fetch(`${url}/api/version`)).rejects.toMatchObject({ cause: { code: "ECONNREFUSED" } });
    await expect(ollama.list()).rejects.toThrow();
    await double.up();
    expect(double.url).toBe(url);
    expect((await ollama.list()).models.length).toBe(4);
  });

  it("records requests, plays the queue before the default, and resets", async () => {
    double.setDefault({ content: ["default"] });
    double.enqueue({ content: ["first"] }, { content: ["second"] });
    const ask = async () =>
      (await ollama.chat({ model: "qwen3:8b", messages: user("q"), options: { temperature: 0.2 }, keep_alive: "1m" }))
        .message.content;
    expect([await ask(), await ask(), await ask()]).toEqual(["first", "second", "default"]);

    expect(double.requests).toHaveLength(3);
    const [first] = double.requests;
    expect(first).toMatchObject({
      method: "POST",
      path: "/api/chat",
      body: { model: "qwen3:8b", messages: user("q"), options: { temperature: 0.2 }, keep_alive: "1m", stream: false },
    });
    expect(first.headers["user-agent"]).toContain("ollama-js");
    expect(first.receivedAt).toBeLessThanOrEqual(Date.now());

    await post("/api/chat", "not json");
    expect(double.requests.at(-1)?.body).toBe("not json");

    double.reset();
    expect(double.requests).toHaveLength(0);
    expect(await ask()).toBe("You said: q");
  });
});

describe("OpenAI-compatible upstream double", () => {
  const apiKey = "sk-double";
  let double: OpenAIUpstreamDouble;
  let client: OpenAI;
  const post = (path: string, body: unknown, key = apiKey) =>
    fetch(`${double.url}${path}`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${key}` },
      body: JSON.stringify(body),
    });
  const model = "Qwen/Qwen3-8B";

  beforeAll(async () => {
    double = await startOpenAIUpstreamDouble({ apiKey });
    client = new OpenAI({ baseURL: `${double.url}/v1`, apiKey, maxRetries: 0 });
  });
  afterAll(() => double.close());
  beforeEach(() => double.reset());

  it("lists models and requires the bearer key", async () => {
    const page = await client.models.list();
    expect(page.data.map((m) => m.id)).toEqual([model, "BAAI/bge-small-en-v1.5"]);
    expect(page.data[0]).toMatchObject({ object: "model", owned_by: "vllm" });
    expect((await client.models.retrieve(model)).id).toBe(model);

    const wrong = new OpenAI({ baseURL: `${double.url}/v1`, apiKey: "sk-wrong", maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toMatchObject({ status: 401, code: "invalid_api_key" });
    const res = await post("/v1/chat/completions", { model, messages: user("x") }, "sk-wrong");
    expect(await res.json()).toEqual({
      error: {
        message: "Incorrect API key provided.",
        type: "authentication_error",
        param: null,
        code: "invalid_api_key",
      },
    });
  });

  it("answers chat completions, non-streaming and as SSE with usage", async () => {
    const reply = await client.chat.completions.create({ model, messages: [{ role: "user", content: "hello" }] });
    expect(reply).toMatchObject({
      object: "chat.completion",
      model,
      choices: [{ index: 0, finish_reason: "stop", message: { role: "assistant", content: "You said: hello" } }],
    });
    expect(reply.usage?.total_tokens).toBe((reply.usage?.prompt_tokens ?? 0) + (reply.usage?.completion_tokens ?? 0));

    const res = await post("/v1/chat/completions", {
      model,
      messages: user("hello"),
      stream: true,
      stream_options: { include_usage: true },
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const events = await sseData(res);
    expect(events.at(-1)).toBe("[DONE]");
    const chunks = events.slice(0, -1) as Json[];
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.id === chunks[0].id)).toBe(true);
    expect(chunks[0].choices[0].delta).toEqual({ role: "assistant", content: "" });
    expect(chunks.flatMap((c) => c.choices.map((ch: Json) => ch.delta.content ?? "")).join("")).toBe("You said: hello");
    expect(chunks.at(-2)?.choices[0]).toMatchObject({ delta: {}, finish_reason: "stop" });
    expect(chunks.at(-1)).toMatchObject({ choices: [], usage: { completion_tokens: 3 } });
  });

  it("streams tool calls as index-addressed argument fragments", async () => {
    const args = { city: "Tokyo", units: "metric" };
    double.enqueue({
      toolCalls: [
        { name: "get_weather", arguments: args },
        { name: "get_time", arguments: { tz: "JST" } },
      ],
    });
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    const calls: Array<{ id?: string; name?: string; args: string; pieces: number }> = [];
    let finish: string | null = null;
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      finish = choice.finish_reason ?? finish;
      for (const delta of choice.delta.tool_calls ?? []) {
        const call = (calls[delta.index] ??= { args: "", pieces: 0 });
        call.id ??= delta.id;
        call.name ??= delta.function?.name;
        if (delta.function?.arguments) {
          call.args += delta.function.arguments;
          call.pieces++;
        }
      }
    }
    expect(finish).toBe("tool_calls");
    expect(calls.map((c) => [c.name, JSON.parse(c.args)])).toEqual([
      ["get_weather", args],
      ["get_time", { tz: "JST" }],
    ]);
    expect(calls[0].pieces).toBeGreaterThan(1);
    expect(calls[0].id).toMatch(/^call_/);

    double.enqueue({ toolCalls: [{ name: "get_weather", arguments: args }] });
    const whole = await client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] });
    expect(whole.choices[0].message.content).toBeNull();
    expect(
      JSON.parse(
        whole.choices[0].message.tool_calls?.[0].type === "function"
          ? whole.choices[0].message.tool_calls[0].function.arguments
          : "",
      ),
    ).toEqual(args);
  });

  it("serves completions and embeddings, float and base64", async () => {
    const completion = await client.completions.create({ model, prompt: "once upon", max_tokens: 2 });
    expect(completion.choices[0]).toMatchObject({ text: "You said:", finish_reason: "length" });

    // The SDK asks for base64 and decodes it; it must match the float answer.
    const sdk = await client.embeddings.create({ model: "BAAI/bge-small-en-v1.5", input: ["alpha", "beta"] });
    const floats = (await (
      await post("/v1/embeddings", { model: "BAAI/bge-small-en-v1.5", input: "alpha", encoding_format: "float" })
    ).json()) as Json;
    expect(sdk.data.map((d) => d.index)).toEqual([0, 1]);
    expect(sdk.data[0].embedding).toHaveLength(384);
    sdk.data[0].embedding.forEach((x, i) => expect(x).toBeCloseTo(floats.data[0].embedding[i], 6));
    expect(norm(floats.data[0].embedding)).toBeCloseTo(1, 9);
    expect(sdk.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("sends an error event then [DONE] mid-stream, scripted HTTP errors, and sees aborts", async () => {
    double.enqueue({ content: ["a", "b"], midStreamError: { afterChunks: 2, message: "engine died" } });
    const events = await sseData(await post("/v1/chat/completions", { model, messages: user("x"), stream: true }));
    expect(events.slice(-2)).toEqual([
      { error: { message: "engine died", type: "server_error", param: null, code: null } },
      "[DONE]",
    ]);

    double.enqueue({ content: ["a", "b"], midStreamError: { afterChunks: 2, message: "engine died" } });
    const stream = await client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    await expect(
      (async () => {
        for await (const _ of stream);
      })(),
    ).rejects.toThrow("engine died");

    double.enqueue({ httpError: { status: 429, message: "slow down" } });
    await expect(
      client.chat.completions.create({ model, messages: [{ role: "user", content: "x" }] }),
    ).rejects.toMatchObject({
      status: 429,
      error: { type: "rate_limit_error", message: "slow down" },
    });

    double.enqueue({ hang: true });
    const controller = new AbortController();
    const pending = client.chat.completions.create(
      { model, messages: [{ role: "user", content: "x" }] },
      { signal: controller.signal },
    );
    setTimeout(() => controller.abort(), 20);
    await expect(pending).rejects.toThrow();
    expect((await double.waitForAbort(1_000)).path).toBe("/v1/chat/completions");
  });

  it("rejects unknown models, routes and bad bodies with OpenAI error objects", async () => {
    await expect(
      client.chat.completions.create({ model: "gpt-nope", messages: [{ role: "user", content: "x" }] }),
    ).rejects.toMatchObject({
      status: 404,
      code: "model_not_found",
    });
    const empty = await post("/v1/chat/completions", { model, messages: [] });
    expect([empty.status, ((await empty.json()) as Json).error.param]).toEqual([400, "messages"]);
    const bad = await fetch(`${double.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${apiKey}` },
      body: "{",
    });
    expect([bad.status, ((await bad.json()) as Json).error.type]).toEqual([400, "invalid_request_error"]);
    const route = await post("/v1/nope", {});
    expect([route.status, ((await route.json()) as Json).error.code]).toEqual([404, "unknown_url"]);
  });
});
