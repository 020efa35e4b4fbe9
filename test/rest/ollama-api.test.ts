/**
 * The Ollama-compatible /api routes, driven by the official `ollama` npm client (and raw fetch
 * where the wire itself is the point) against a real gateway in front of the Ollama double and an
 * OpenAI-compatible upstream double ("vllm"). Translation is asserted twice: on what the client
 * gets and on what the upstream double recorded.
 */
import { Ollama, type Message } from "ollama";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OLLAMA_API_VERSION } from "../../src/rest/ollama/routes.js";
import { VERSION } from "../../src/version.js";
import { startOpenAIUpstreamDouble, type OpenAIUpstreamDouble } from "../doubles/openai-upstream-double.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

type Body = Record<string, any>;

const TOKEN = "ollama-route-token";
const AUTH = { authorization: `Bearer ${TOKEN}` };

let h: GatewayHarness;
let vllm: OpenAIUpstreamDouble;
let client: Ollama;

beforeAll(async () => {
  vllm = await startOpenAIUpstreamDouble();
  h = await startGateway({ env: { AUTH_TOKEN: TOKEN, MODEL: "qwen3:8b", BACKENDS: `vllm=${vllm.url}/v1` } });
  client = new Ollama({ host: h.url, headers: AUTH });
});

afterAll(async () => {
  await h?.close();
  await vllm?.close();
});

beforeEach(() => {
  h.ollama.reset();
  vllm.reset();
});

/** Bodies the Ollama double received on `path`. */
const ollamaBodies = (path: string): Body[] =>
  h.ollama.requests.filter((r) => r.path === path).map((r) => r.body as Body);

/** A raw call to the gateway with the token (unless `headers` says otherwise). */
const call = (path: string, body?: unknown, headers: Record<string, string> = AUTH) =>
  fetch(`${h.url}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });

/** The NDJSON lines of a response, parsed. */
const lines = async (res: Response): Promise<Body[]> =>
  (await res.text())
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l) as Body);

/** The status and message of a rejected ollama-client call. */
async function failure(p: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await p;
  } catch (err) {
    const e = err as { status_code?: number; message: string };
    return { status: e.status_code ?? 0, message: e.message };
  }
  throw new Error("expected the call to fail");
}

const weatherTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

/** The final-chunk metrics every done line carries, with durations that add up. */
function expectMetrics(final: Body, promptEvalCount: number, evalCount: number): void {
  expect(final.prompt_eval_count).toBe(promptEvalCount);
  expect(final.eval_count).toBe(evalCount);
  for (const k of ["total_duration", "load_duration", "prompt_eval_duration", "eval_duration"]) {
    expect(Number.isInteger(final[k]), k).toBe(true);
    expect(final[k], k).toBeGreaterThanOrEqual(0);
  }
  expect(final.total_duration).toBeGreaterThan(0);
  expect(final.load_duration + final.prompt_eval_duration + final.eval_duration).toBeLessThanOrEqual(
    final.total_duration,
  );
}

describe("version, tags and show", () => {
  it("reports the Ollama API version it follows (new enough for codex --oss) and agentgate's", async () => {
    const v = (await client.version()) as { version: string; agentgate?: string };
    expect(v.version).toBe(OLLAMA_API_VERSION);
    expect(v.agentgate).toBe(VERSION);
    const [major, minor, patch] = v.version.split(".").map(Number);
    // codex --oss requires Ollama >= 0.13.4.
    expect(major! * 1e6 + minor! * 1e3 + patch!).toBeGreaterThanOrEqual(13_004);
  });

  it("lists every backend's models in Ollama's /api/tags shape", async () => {
    const { models } = await client.list();
    const names = models.map((m) => m.name);
    expect(names).toEqual(
      expect.arrayContaining(["qwen3:8b", "llama3.2:3b", "nomic-embed-text:latest", "vllm/Qwen/Qwen3-8B"]),
    );
    const qwen = models.find((m) => m.name === "qwen3:8b")!;
    expect(qwen.model).toBe("qwen3:8b");
    expect(qwen.size).toBe(5_225_388_164);
    expect(qwen.digest).toMatch(/^[0-9a-f]{64}$/);
    // The listing keeps whole seconds.
    expect(new Date(qwen.modified_at).getTime()).toBe(Date.parse("2025-05-10T08:06:48-07:00"));
    expect(qwen.details).toEqual({
      parent_model: "",
      format: "gguf",
      family: "qwen3",
      families: ["qwen3"],
      parameter_size: "8.2B",
      quantization_level: "Q4_K_M",
    });
    // A model from an OpenAI-compatible backend: no GGUF, no family, but a routable name.
    expect(models.find((m) => m.name === "vllm/Qwen/Qwen3-8B")!.details.format).toBe("");
  });

  it("shows a model's capabilities, architecture and context length", async () => {
    const show = await client.show({ model: "qwen3:8b" });
    expect(show.capabilities).toEqual(expect.arrayContaining(["completion", "tools", "thinking"]));
    expect(show.capabilities).not.toContain("embedding");
    const info = show.model_info as unknown as Record<string, unknown>;
    expect(info["general.architecture"]).toBe("qwen3");
    expect(info["qwen3.context_length"]).toBe(40_960);
    expect(show.details.family).toBe("qwen3");
    // A name without a tag means :latest, as in Ollama.
    const embed = await client.show({ model: "nomic-embed-text" });
    expect(embed.capabilities).toEqual(["embedding"]);
    expect((embed.model_info as unknown as Record<string, unknown>)["nomic-bert.context_length"]).toBe(2048);
  });

  it("answers an unknown model on /api/show with 404 and Ollama's error shape", async () => {
    const res = await call("/api/show", { model: "no-such-model:1b" });
    expect(res.status).toBe(404);
    expect(await res.json()).toEqual({ error: "model 'no-such-model:1b' not found" });
    // `name` is the deprecated spelling of `model`.
    const byName = await call("/api/show", { name: "llama3.2:3b" });
    expect(((await byName.json()) as Body).details.parameter_size).toBe("3.2B");
    const res2 = await call("/api/show", {});
    expect(res2.status).toBe(400);
    expect(((await res2.json()) as Body).error).toMatch(/model is required/);
  });
});

describe("/api/chat", () => {
  it("answers a non-streaming chat with the text, Ollama's counters and measured durations", async () => {
    h.ollama.enqueue({ content: ["Hello", ", world"], promptEvalCount: 11, evalCount: 7 });
    const res = await client.chat({
      model: "qwen3:8b",
      messages: [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Say hello" },
      ],
      stream: false,
      format: "json",
      keep_alive: "10m",
      options: {
        temperature: 0.2,
        top_p: 0.9,
        top_k: 20,
        num_predict: 50,
        stop: ["END"],
        seed: 7,
        num_ctx: 8192,
        presence_penalty: 0.5,
        frequency_penalty: 0.25,
        mirostat: 1, // an option agentgate does not map: accepted and ignored
      },
    });
    expect(res.model).toBe("qwen3:8b");
    expect(res.message).toEqual({ role: "assistant", content: "Hello, world" });
    expect(res.done).toBe(true);
    expect(res.done_reason).toBe("stop");
    expect(Number.isNaN(Date.parse(res.created_at as unknown as string))).toBe(false);
    expectMetrics(res as unknown as Body, 11, 7);

    const [sent] = ollamaBodies("/api/chat");
    expect(sent!.model).toBe("qwen3:8b");
    expect(sent!.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Say hello" },
    ]);
    expect(sent!.format).toBe("json");
    expect(sent!.options).toEqual({
      temperature: 0.2,
      top_p: 0.9,
      top_k: 20,
      num_predict: 50,
      stop: ["END"],
      seed: 7,
      num_ctx: 8192,
      presence_penalty: 0.5,
      frequency_penalty: 0.25,
    });
    expect(sent!.keep_alive).toBeUndefined();
  });

  it("streams NDJSON: content chunks with done:false, then one final chunk with done_reason and metrics", async () => {
    h.ollama.enqueue({ content: ["one", " two", " three"], promptEvalCount: 5, evalCount: 3 });
    // No `stream` field: Ollama's default is to stream.
    const res = await call("/api/chat", { model: "qwen3:8b", messages: [{ role: "user", content: "count" }] });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("application/x-ndjson");
    const chunks = await lines(res);
    const final = chunks.at(-1)!;
    const parts = chunks.slice(0, -1);
    expect(parts.map((c) => c.message.content)).toEqual(["one", " two", " three"]);
    for (const c of parts) {
      expect(c).toMatchObject({ model: "qwen3:8b", done: false, message: { role: "assistant" } });
      expect(typeof c.created_at).toBe("string");
    }
    expect(final).toMatchObject({ model: "qwen3:8b", done: true, done_reason: "stop", message: { content: "" } });
    expectMetrics(final, 5, 3);
  });

  it("streams through the ollama client and maps num_predict to a length stop", async () => {
    const stream = await client.chat({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "a b c d e f" }],
      stream: true,
      think: false,
      options: { num_predict: 2 },
    });
    const parts = [];
    for await (const part of stream) parts.push(part);
    expect(parts.at(-1)!.done_reason).toBe("length");
    expect(parts.map((p) => p.message.content).join("")).toBe("You said:");
    expect(ollamaBodies("/api/chat")[0]!.options.num_predict).toBe(2);
  });

  it("returns a tool call with object arguments and round-trips the tool result by tool_name", async () => {
    h.ollama.enqueue({ toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] });
    const first = await client.chat({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weatherTool],
      stream: false,
    });
    const calls = first.message.tool_calls!;
    expect(calls).toHaveLength(1);
    expect(calls[0]!.function.name).toBe("get_weather");
    expect(calls[0]!.function.arguments).toEqual({ city: "Paris" });
    expect(first.done_reason).toBe("stop");
    expect(ollamaBodies("/api/chat")[0]!.tools).toEqual([weatherTool]);

    h.ollama.enqueue({ content: ["22 °C and sunny"] });
    const messages: Message[] = [
      { role: "user", content: "Weather in Paris?" },
      first.message,
      { role: "tool", content: '{"temp":22}', tool_name: "get_weather" },
    ];
    const second = await client.chat({ model: "qwen3:8b", messages, tools: [weatherTool], stream: false });
    expect(second.message.content).toBe("22 °C and sunny");
    const sent = ollamaBodies("/api/chat")[1]!;
    expect(sent.messages[1]).toMatchObject({
      role: "assistant",
      content: "",
      tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
    });
    expect(sent.messages[2]).toEqual({ role: "tool", content: '{"temp":22}', tool_name: "get_weather" });
  });

  it("streams a tool call as one chunk with object arguments", async () => {
    h.ollama.enqueue({ toolCalls: [{ name: "get_weather", arguments: { city: "Oslo", days: 2 } }] });
    const stream = await client.chat({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "Oslo?" }],
      tools: [weatherTool],
      stream: true,
    });
    const withCalls = [];
    for await (const part of stream) if (part.message.tool_calls?.length) withCalls.push(part);
    expect(withCalls).toHaveLength(1);
    expect(withCalls[0]!.done).toBe(false);
    expect(withCalls[0]!.message.tool_calls).toMatchObject([
      { function: { index: 0, name: "get_weather", arguments: { city: "Oslo", days: 2 } } },
    ]);
  });

  it("pairs Ollama tool results with their calls by tool_name for an OpenAI-compatible backend", async () => {
    vllm.enqueue({ content: ["It is 22 °C"] });
    const res = await client.chat({
      model: "vllm/Qwen/Qwen3-8B",
      messages: [
        { role: "user", content: "Weather in Paris and Rome?" },
        {
          role: "assistant",
          content: "",
          tool_calls: [
            { function: { name: "get_weather", arguments: { city: "Paris" } } },
            { function: { name: "get_time", arguments: { city: "Rome" } } },
          ],
        },
        { role: "tool", content: "12:00", tool_name: "get_time" },
        { role: "tool", content: "22", tool_name: "get_weather" },
      ],
      stream: false,
    });
    expect(res.model).toBe("vllm/Qwen/Qwen3-8B");
    expect(res.message.content).toBe("It is 22 °C");
    const sent = vllm.requests.find((r) => r.path === "/v1/chat/completions")!.body as Body;
    expect(sent.model).toBe("Qwen/Qwen3-8B");
    const [weatherCall, timeCall] = sent.messages[1].tool_calls as Body[];
    expect(weatherCall!.function).toEqual({ name: "get_weather", arguments: '{"city":"Paris"}' });
    expect(sent.messages[2]).toMatchObject({ role: "tool", content: "12:00", tool_call_id: timeCall!.id });
    expect(sent.messages[3]).toMatchObject({ role: "tool", content: "22", tool_call_id: weatherCall!.id });
    expect(weatherCall!.id).not.toBe(timeCall!.id);
  });

  it("returns thinking separately and maps think to the upstream's think", async () => {
    h.ollama.enqueue({ thinking: ["Six times seven."], content: ["42"] });
    const res = await client.chat({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "6*7?" }],
      think: true,
      stream: false,
    });
    expect(res.message.thinking).toBe("Six times seven.");
    expect(res.message.content).toBe("42");
    expect(ollamaBodies("/api/chat")[0]!.think).toBe(true);

    h.ollama.enqueue({ thinking: ["hidden"], content: ["ok"] });
    const off = await client.chat({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "hi" }],
      think: false,
      stream: false,
    });
    expect(off.message.thinking).toBeUndefined();
    expect(ollamaBodies("/api/chat")[1]!.think).toBe(false);

    h.ollama.enqueue({ thinking: ["t1", "t2"], content: ["done"] });
    const parts = await lines(
      await call("/api/chat", { model: "qwen3:8b", messages: [{ role: "user", content: "x" }], think: "high" }),
    );
    expect(parts.map((p) => p.message.thinking ?? "").join("")).toBe("t1t2");
    expect(ollamaBodies("/api/chat")[2]!.think).toBe(true);
  });

  it("lower-cases roles as Ollama does and sends a developer message as system", async () => {
    h.ollama.enqueue({ content: ["ok"] });
    const res = await call("/api/chat", {
      model: "qwen3:8b",
      stream: false,
      messages: [
        { role: "Developer", content: "Rules." },
        { role: "USER", content: "hi", images: ["aGVsbG8="] },
      ],
    });
    expect(res.status).toBe(200);
    expect(ollamaBodies("/api/chat")[0]!.messages).toEqual([
      { role: "system", content: "Rules." },
      { role: "user", content: "hi", images: ["aGVsbG8="] },
    ]);
  });

  it("answers an empty chat at once as a load (or, with keep_alive 0, unload) request", async () => {
    const load = (await (await call("/api/chat", { model: "qwen3:8b", messages: [] })).json()) as Body;
    expect(load).toMatchObject({ model: "qwen3:8b", done: true, done_reason: "load", message: { content: "" } });
    const unload = (await (await call("/api/chat", { model: "qwen3:8b", keep_alive: 0 })).json()) as Body;
    expect(unload.done_reason).toBe("unload");
    expect(h.ollama.requests.filter((r) => r.path === "/api/chat")).toHaveLength(0);
  });
});

describe("/api/generate", () => {
  it("answers a non-streaming generate, rendered as a [system, user] chat as Ollama does", async () => {
    h.ollama.enqueue({ content: ["Blue", " light"], promptEvalCount: 9, evalCount: 2 });
    const res = await client.generate({
      model: "qwen3:8b",
      prompt: "Why is the sky blue?",
      system: "Be brief.",
      stream: false,
      options: { temperature: 0 },
    });
    expect(res.model).toBe("qwen3:8b");
    expect(res.response).toBe("Blue light");
    expect(res.done).toBe(true);
    expect(res.done_reason).toBe("stop");
    expectMetrics(res as unknown as Body, 9, 2);
    const [sent] = ollamaBodies("/api/chat");
    expect(sent!.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Why is the sky blue?" },
    ]);
    expect(sent!.options.temperature).toBe(0);
  });

  it("passes images and a JSON-schema format on to the user message and the upstream's format", async () => {
    const schema = { type: "object", properties: { age: { type: "integer" } }, required: ["age"] };
    h.ollama.enqueue({ content: ['{"age":22}'] });
    const res = await client.generate({
      model: "qwen3:8b",
      prompt: "How old?",
      images: ["aGVsbG8="],
      format: schema,
      stream: false,
    });
    expect(JSON.parse(res.response ?? "")).toEqual({ age: 22 });
    const [sent] = ollamaBodies("/api/chat");
    expect(sent!.messages).toEqual([{ role: "user", content: "How old?", images: ["aGVsbG8="] }]);
    expect(sent!.format).toEqual(schema);
  });

  it("streams a generate with response chunks and thinking", async () => {
    h.ollama.enqueue({ thinking: ["Hmm."], content: ["a", "b"], evalCount: 3 });
    const stream = await client.generate({ model: "qwen3:8b", prompt: "go", stream: true, think: true });
    const parts = [];
    for await (const part of stream) parts.push(part);
    expect(parts.map((p) => p.response).join("")).toBe("ab");
    expect(parts.map((p) => p.thinking ?? "").join("")).toBe("Hmm.");
    expect(parts.slice(0, -1).every((p) => p.done === false)).toBe(true);
    expect(parts.at(-1)).toMatchObject({ done: true, done_reason: "stop", response: "", eval_count: 3 });
  });

  it("sends raw prompts to the upstream's text completion", async () => {
    h.ollama.enqueue({ content: ["[/INST] ok"] });
    const res = await client.generate({ model: "qwen3:8b", prompt: "[INST] hi", raw: true, stream: false });
    expect(res.response).toBe("[/INST] ok");
    const [sent] = ollamaBodies("/api/generate");
    expect(sent).toMatchObject({ model: "qwen3:8b", prompt: "[INST] hi", raw: true });
    const bad = await call("/api/generate", { model: "qwen3:8b", prompt: "x", raw: true, system: "no" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as Body).error).toMatch(/system/);
  });

  it("answers an empty prompt at once with done_reason load", async () => {
    const res = await client.generate({ model: "qwen3:8b", prompt: "", stream: false });
    expect(res).toMatchObject({ model: "qwen3:8b", response: "", done: true, done_reason: "load" });
    expect(h.ollama.requests.filter((r) => r.path !== "/api/version")).toHaveLength(0);
  });
});

describe("/api/embed and /api/embeddings", () => {
  it("embeds several inputs with Ollama's counters", async () => {
    const res = await client.embed({ model: "nomic-embed-text", input: ["first text", "second text"] });
    expect(res.model).toBe("nomic-embed-text");
    expect(res.embeddings).toHaveLength(2);
    expect(res.embeddings[0]).toHaveLength(768);
    expect(res.embeddings[0]).not.toEqual(res.embeddings[1]);
    expect(res.prompt_eval_count).toBeGreaterThan(0);
    expect(res.total_duration).toBeGreaterThan(0);
    expect(res.load_duration).toBe(0);
    expect(ollamaBodies("/api/embed")[0]!.input).toEqual(["first text", "second text"]);
  });

  it("embeds one string, passes dimensions on, and answers no input with no vectors", async () => {
    const one = await client.embed({ model: "nomic-embed-text", input: "only", dimensions: 64 });
    expect(one.embeddings).toHaveLength(1);
    expect(one.embeddings[0]).toHaveLength(64);
    const none = await client.embed({ model: "nomic-embed-text", input: [] });
    expect(none.embeddings).toEqual([]);
    expect(ollamaBodies("/api/embed")).toHaveLength(1);
  });

  it("serves the legacy /api/embeddings with one vector", async () => {
    const res = await client.embeddings({ model: "nomic-embed-text", prompt: "hello" });
    expect(res.embedding).toHaveLength(768);
    expect(ollamaBodies("/api/embed")[0]!.input).toEqual(["hello"]);
  });
});

describe("auth", () => {
  it("answers 401 with Ollama's error shape without a token or with a wrong one, /api/version included", async () => {
    for (const [method, path, body] of [
      ["GET", "/api/version", undefined],
      ["GET", "/api/tags", undefined],
      ["POST", "/api/show", { model: "qwen3:8b" }],
      ["POST", "/api/chat", { model: "qwen3:8b", messages: [{ role: "user", content: "hi" }] }],
      ["POST", "/api/generate", { model: "qwen3:8b", prompt: "hi" }],
      ["POST", "/api/embed", { model: "nomic-embed-text", input: "hi" }],
      ["POST", "/api/embeddings", { model: "nomic-embed-text", prompt: "hi" }],
      ["POST", "/api/pull", { model: "qwen3:8b" }],
    ] as const) {
      for (const headers of [{}, { authorization: "Bearer wrong" }] as Record<string, string>[]) {
        const res = await call(path, body, headers);
        expect(res.status, `${method} ${path}`).toBe(401);
        expect(res.headers.get("www-authenticate")).toBe('Bearer realm="agentgate"');
        const json = (await res.json()) as Body;
        expect(typeof json.error, `${method} ${path}`).toBe("string");
        expect(json.error).toMatch(/token|credentials/);
      }
    }
    expect(h.ollama.requests.filter((r) => r.path !== "/api/version")).toHaveLength(0);
    const anonymous = new Ollama({ host: h.url });
    expect(await failure(anonymous.version())).toEqual({
      status: 401,
      message: "missing credentials: send Authorization: Bearer <token>",
    });
    expect((await failure(anonymous.list())).status).toBe(401);
  });
});

describe("errors", () => {
  it("answers an unknown model with 404 and Ollama's error shape, streaming or not", async () => {
    const res = await call("/api/chat", { model: "nope:1b", messages: [{ role: "user", content: "hi" }] });
    expect(res.status).toBe(404);
    expect(res.headers.get("content-type")).toMatch(/^application\/json/);
    const body = (await res.json()) as Body;
    expect(Object.keys(body)).toEqual(["error"]);
    expect(body.error).toMatch(/model 'nope:1b' not found/);
    const viaClient = await failure(
      client.chat({ model: "nope:1b", messages: [{ role: "user", content: "hi" }], stream: false }),
    );
    expect(viaClient.status).toBe(404);
    expect(viaClient.message).toMatch(/not found/);
    expect((await failure(client.generate({ model: "nope:1b", prompt: "hi", stream: true }))).status).toBe(404);
  });

  it("answers 503 when the upstream is down and 502 when it fails", async () => {
    await h.ollama.down();
    try {
      const chat = await call("/api/chat", { model: "qwen3:8b", messages: [{ role: "user", content: "hi" }] });
      expect(chat.status).toBe(503);
      expect(((await chat.json()) as Body).error).toMatch(/unreachable/);
      const embed = await call("/api/embed", { model: "nomic-embed-text", input: "hi" });
      expect(embed.status).toBe(503);
    } finally {
      await h.ollama.up();
    }
    h.ollama.enqueue({ httpError: { status: 500, message: "llama runner process has terminated" } });
    const res = await call("/api/generate", { model: "qwen3:8b", prompt: "hi", stream: false });
    expect(res.status).toBe(502);
    expect(((await res.json()) as Body).error).toMatch(/llama runner process has terminated/);
  });

  it("ends a stream that fails upstream after the 200 with a final {error} line", async () => {
    h.ollama.enqueue({ content: ["a", "b", "c"], midStreamError: { afterChunks: 2, message: "model crashed" } });
    const res = await call("/api/chat", { model: "qwen3:8b", messages: [{ role: "user", content: "hi" }] });
    expect(res.status).toBe(200);
    const chunks = await lines(res);
    expect(chunks.slice(0, -1).map((c) => c.message.content)).toEqual(["a", "b"]);
    expect(Object.keys(chunks.at(-1)!)).toEqual(["error"]);
    expect(chunks.at(-1)!.error).toMatch(/model crashed/);

    h.ollama.enqueue({ content: ["x", "y"], midStreamError: { afterChunks: 1, message: "out of memory" } });
    const stream = await client.generate({ model: "qwen3:8b", prompt: "go", stream: true });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const part of stream) seen.push(part.response ?? "");
      })(),
    ).rejects.toThrow(/out of memory/);
    expect(seen).toEqual(["x"]);
  });

  it("passes the upstream's refusal of a request on as a 400", async () => {
    const res = await call("/api/chat", {
      model: "llama3.2:3b",
      messages: [{ role: "user", content: "hi" }],
      think: true,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Body).error).toMatch(/does not support thinking/);
  });

  it("answers malformed requests with 400 and Ollama's error shape", async () => {
    const cases: [unknown, RegExp][] = [
      ["{not json", /not valid JSON/],
      [{ messages: [{ role: "user", content: "hi" }] }, /model is required/],
      [{ model: "qwen3:8b", messages: "hi" }, /messages/],
      [{ model: "qwen3:8b", messages: [{ role: "wizard", content: "hi" }] }, /role/],
      [{ model: "qwen3:8b", messages: [{ content: "hi" }] }, /messages\[0\]\.role is required/],
      [
        { model: "qwen3:8b", messages: [{ role: "user", content: "hi" }], options: { temperature: 5 } },
        /options\.temperature/,
      ],
      [{ model: "qwen3:8b", messages: [{ role: "user", content: "hi" }], think: "extreme" }, /think/],
      [{ model: "qwen3:8b", messages: [{ role: "user", content: "hi" }], format: "yaml" }, /format/],
      [
        { model: "qwen3:8b", messages: [{ role: "user", content: "hi" }], tools: [{ type: "function" }] },
        /tools\[0\]\.function/,
      ],
      [
        {
          model: "qwen3:8b",
          messages: [{ role: "assistant", content: "", tool_calls: [{ function: { name: "f", arguments: "{}" } }] }],
        },
        /arguments/,
      ],
      [[1, 2], /body/],
    ];
    for (const [body, message] of cases) {
      const res = await call("/api/chat", body);
      const label = JSON.stringify(body);
      expect(res.status, label).toBe(400);
      const json = (await res.json()) as Body;
      expect(Object.keys(json), label).toEqual(["error"]);
      expect(json.error, label).toMatch(message);
    }
    const embed = await call("/api/embed", { model: "nomic-embed-text", input: [1] });
    expect(embed.status).toBe(400);
    expect(h.ollama.requests.filter((r) => r.path !== "/api/version")).toHaveLength(0);
  });

  it("reads the body as JSON whatever its content type, as Ollama does for `curl -d`", async () => {
    const res = await fetch(`${h.url}/api/generate`, {
      method: "POST",
      headers: { ...AUTH, "content-type": "application/x-www-form-urlencoded" },
      body: JSON.stringify({ model: "qwen3:8b", prompt: "hi", stream: false }),
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as Body).response).toBe("You said: hi");
  });

  it("answers routes it does not serve with 404 and Ollama's error shape", async () => {
    const res = await call("/api/pull", { model: "qwen3:8b" });
    expect(res.status).toBe(404);
    expect(((await res.json()) as Body).error).toMatch(/does not serve POST \/api\/pull/);
  });

  it("cancels the upstream request when the client disconnects mid-stream", async () => {
    h.ollama.enqueue({ content: ["a", "b", "c", "d"], chunkDelayMs: 300 });
    const stream = await client.chat({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "long answer" }],
      stream: true,
    });
    for await (const part of stream) {
      expect(part.message.content).toBe("a");
      stream.abort();
      break;
    }
    const aborted = await h.ollama.waitForAbort(2_000);
    expect(aborted.path).toBe("/api/chat");
    // The gateway stays healthy for the next caller.
    const next = await client.chat({ model: "qwen3:8b", messages: [{ role: "user", content: "again" }] });
    expect(next.message.content).toBe("You said: again");
  });
});

describe("graceful shutdown", () => {
  it("ends an open NDJSON stream with an error line and cancels its upstream", async () => {
    const g = await startGateway({ env: { SHUTDOWN_GRACE_MS: "300" } });
    try {
      g.ollama.enqueue({ content: Array.from({ length: 50 }, (_, i) => `w${i} `), chunkDelayMs: 100 });
      const res = await fetch(`${g.url}/api/chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ model: "qwen3:8b", messages: [{ role: "user", content: "long" }] }),
        signal: AbortSignal.timeout(5_000),
      });
      expect(res.status).toBe(200);
      const text = res.text();
      await g.gate.close();
      const chunks = (await text)
        .split("\n")
        .filter((l) => l !== "")
        .map((l) => JSON.parse(l) as Body);
      expect(chunks.length).toBeGreaterThan(1);
      expect(chunks.slice(0, -1).every((c) => c.done === false)).toBe(true);
      expect(chunks.at(-1)).toEqual({ error: "the server is shutting down; retry the request" });
      expect((await g.ollama.waitForAbort(1_000)).path).toBe("/api/chat");
    } finally {
      await g.close();
    }
  });
});
