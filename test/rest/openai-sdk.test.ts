/**
 * The official `openai` SDK (v6) against a real gateway in front of the Ollama double and an
 * OpenAI-compatible upstream double ("vllm"). Every assertion about translation is made twice: on what
 * the SDK hands the caller and on what the upstream double recorded.
 */
import { execFile } from "node:child_process";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { Writable } from "node:stream";
import { promisify } from "node:util";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createAgentgate } from "../../src/agentgate.js";
import { loadConfig } from "../../src/config/config.js";
import { createLogger } from "../../src/observability/logger.js";
import { startOpenAIUpstreamDouble, type OpenAIUpstreamDouble } from "../doubles/openai-upstream-double.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

const run = promisify(execFile);

type Body = Record<string, any>;

let h: GatewayHarness;
let vllm: OpenAIUpstreamDouble;
let client: OpenAI;

beforeAll(async () => {
  vllm = await startOpenAIUpstreamDouble();
  h = await startGateway({ env: { BACKENDS: `vllm=${vllm.url}/v1`, MODEL: "qwen3:8b" } });
  client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: "x", maxRetries: 0, timeout: 5_000 });
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
const vllmBodies = (path: string): Body[] => vllm.requests.filter((r) => r.path === path).map((r) => r.body as Body);

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

describe("chat completions through the openai SDK", () => {
  it("answers a non-streaming chat with Ollama text, usage from its counters and the model id as sent", async () => {
    h.ollama.enqueue({ content: ["Hello", ", world"], promptEvalCount: 11, evalCount: 7 });
    const res = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [
        { role: "developer", content: "Be brief." },
        { role: "user", content: "Say hello" },
      ],
    });
    expect(res.object).toBe("chat.completion");
    expect(res.id).toMatch(/^chatcmpl/);
    expect(res.model).toBe("qwen3:8b");
    expect(res.choices).toHaveLength(1);
    expect(res.choices[0]!.message).toMatchObject({ role: "assistant", content: "Hello, world" });
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect(res.usage).toEqual({ prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 });

    const [sent] = ollamaBodies("/api/chat");
    expect(sent).toBeDefined();
    expect(sent!.model).toBe("qwen3:8b");
    // Backends always stream from the upstream (idle timeout instead of a whole-answer timeout).
    expect(sent!.stream).toBe(true);
    expect(sent!.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Say hello" },
    ]);
  });

  it("streams a chat as chunks with one id, a role first, content deltas, a finish chunk and a usage chunk", async () => {
    h.ollama.enqueue({ content: ["one", " two", " three"], promptEvalCount: 5, evalCount: 3 });
    const stream = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "count" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(chunks.every((c) => c.object === "chat.completion.chunk" && c.model === "qwen3:8b")).toBe(true);
    expect(chunks[0]!.choices[0]!.delta.role).toBe("assistant");
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe("one two three");
    const finishes = chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter((f) => f !== null);
    expect(finishes).toEqual(["stop"]);
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual({ prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 });
    // Every chunk but the last carries usage: null (as OpenAI does with include_usage).
    expect(chunks.slice(0, -1).every((c) => c.usage === null)).toBe(true);
    expect(ollamaBodies("/api/chat")[0]!.stream).toBe(true);
  });

  it("streams without a usage chunk when include_usage is not asked for", async () => {
    const stream = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "hi" }],
      stream: true,
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);
    expect(chunks.every((c) => c.choices.length === 1)).toBe(true);
    expect(chunks.every((c) => !("usage" in c))).toBe(true);
    expect(chunks.map((c) => c.choices[0]!.delta.content ?? "").join("")).toBe("You said: hi");
  });

  it("surfaces an upstream failure mid-stream as an APIError after the chunks already sent", async () => {
    h.ollama.enqueue({
      content: ["partial", " answer", " never"],
      midStreamError: { afterChunks: 2, message: "CUDA out of memory" },
    });
    const stream = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "x" }],
      stream: true,
    });
    let text = "";
    const err = await (async () => {
      for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
    })().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain("CUDA out of memory");
    expect(text).toBe("partial answer");
  });

  it("maps sampling parameters onto Ollama options as recorded at the double", async () => {
    await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "hi" }],
      temperature: 0.3,
      top_p: 0.9,
      max_tokens: 50,
      stop: ["END", "STOP"],
      seed: 42,
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
    });
    const [sent] = ollamaBodies("/api/chat");
    expect(sent!.options).toEqual({
      temperature: 0.3,
      top_p: 0.9,
      num_predict: 50,
      stop: ["END", "STOP"],
      seed: 42,
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
      num_ctx: 65_536, // OLLAMA_NUM_CTX's default: agents need a large window
    });
    expect(sent!.format).toBeUndefined();
    expect(sent!.tools).toBeUndefined();
  });

  it("prefers max_completion_tokens and accepts a single stop string", async () => {
    await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "hi" }],
      max_completion_tokens: 9,
      max_tokens: 100,
      stop: "END",
    });
    expect(ollamaBodies("/api/chat")[0]!.options).toEqual({ num_predict: 9, stop: ["END"], num_ctx: 65_536 });
  });

  it("reports finish_reason length when max_tokens cuts the answer", async () => {
    const res = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "a long question with many words" }],
      max_tokens: 2,
    });
    expect(res.choices[0]!.finish_reason).toBe("length");
    expect(res.choices[0]!.message.content).toBe("You said:");
    expect(ollamaBodies("/api/chat")[0]!.options.num_predict).toBe(2);

    const stream = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "a long question with many words" }],
      max_tokens: 3,
      stream: true,
    });
    const finishes: (string | null)[] = [];
    for await (const c of stream) finishes.push(c.choices[0]?.finish_reason ?? null);
    expect(finishes.filter(Boolean)).toEqual(["length"]);
  });

  it('sends JSON mode as format "json" and a json_schema as the schema itself', async () => {
    h.ollama.enqueue({ content: ['{"ok":true}'] }, { content: ['{"city":"Oslo"}'] });
    const a = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "json please" }],
      response_format: { type: "json_object" },
    });
    expect(JSON.parse(a.choices[0]!.message.content!)).toEqual({ ok: true });
    const schema = {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
      additionalProperties: false,
    };
    const b = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "json please" }],
      response_format: { type: "json_schema", json_schema: { name: "place", schema, strict: true } },
    });
    expect(JSON.parse(b.choices[0]!.message.content!)).toEqual({ city: "Oslo" });
    const [first, second] = ollamaBodies("/api/chat");
    expect(first!.format).toBe("json");
    expect(second!.format).toEqual(schema);
  });

  it("passes reasoning through as reasoning_content", async () => {
    h.ollama.enqueue({ thinking: ["Let me ", "think."], content: ["42"] });
    const res = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "answer?" }],
    });
    const message = res.choices[0]!.message as OpenAI.Chat.Completions.ChatCompletionMessage & {
      reasoning_content?: string;
    };
    expect(message.content).toBe("42");
    expect(message.reasoning_content).toBe("Let me think.");
  });
});

describe("tool calls through the openai SDK", () => {
  it("turns Ollama object arguments into a JSON string with finish_reason tool_calls", async () => {
    h.ollama.enqueue({ toolCalls: [{ name: "get_weather", arguments: { city: "Oslo", days: 2 } }] });
    const res = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "Weather in Oslo?" }],
      tools: [weatherTool],
    });
    const choice = res.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    const calls = choice.message.tool_calls!;
    expect(calls).toHaveLength(1);
    const call = calls[0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    expect(call.type).toBe("function");
    expect(call.id).toMatch(/\S/);
    expect(call.function.name).toBe("get_weather");
    expect(typeof call.function.arguments).toBe("string");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "Oslo", days: 2 });

    const [sent] = ollamaBodies("/api/chat");
    expect(sent!.tools).toEqual([
      {
        type: "function",
        function: {
          name: "get_weather",
          description: weatherTool.function.description,
          parameters: weatherTool.function.parameters,
        },
      },
    ]);
  });

  it("streams tool calls with an index, an id and string arguments", async () => {
    h.ollama.enqueue({ toolCalls: [{ name: "get_weather", arguments: { city: "Bergen" } }] });
    const stream = await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "Weather in Bergen?" }],
      tools: [weatherTool],
      stream: true,
    });
    const deltas: OpenAI.Chat.Completions.ChatCompletionChunk.Choice.Delta.ToolCall[] = [];
    const finishes: string[] = [];
    for await (const c of stream) {
      for (const ch of c.choices) {
        deltas.push(...(ch.delta.tool_calls ?? []));
        if (ch.finish_reason) finishes.push(ch.finish_reason);
      }
    }
    expect(finishes).toEqual(["tool_calls"]);
    expect(deltas).toHaveLength(1);
    expect(deltas[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather" } });
    expect(deltas[0]!.id).toMatch(/\S/);
    expect(JSON.parse(deltas[0]!.function!.arguments!)).toEqual({ city: "Bergen" });
  });

  it("sends a follow-up turn to Ollama with object arguments and the tool result as a tool message with tool_name", async () => {
    h.ollama.enqueue(
      { toolCalls: [{ name: "get_weather", arguments: { city: "Oslo" } }] },
      { content: ["It is 3 degrees."] },
    );
    const messages: OpenAI.Chat.Completions.ChatCompletionMessageParam[] = [
      { role: "user", content: "Weather in Oslo?" },
    ];
    const first = await client.chat.completions.create({ model: "qwen3:8b", messages, tools: [weatherTool] });
    const assistant = first.choices[0]!.message;
    const call = assistant.tool_calls![0]! as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall;
    // Pushed back as received (refusal: null included), as the SDK's own examples do.
    messages.push(assistant as OpenAI.Chat.Completions.ChatCompletionAssistantMessageParam);
    messages.push({ role: "tool", tool_call_id: call.id, content: '{"celsius":3}' });

    const second = await client.chat.completions.create({ model: "qwen3:8b", messages, tools: [weatherTool] });
    expect(second.choices[0]!.message.content).toBe("It is 3 degrees.");
    expect(second.choices[0]!.finish_reason).toBe("stop");

    const sent = ollamaBodies("/api/chat")[1]!;
    expect(sent.messages).toHaveLength(3);
    expect(sent.messages[1]).toMatchObject({
      role: "assistant",
      content: "",
      tool_calls: [{ function: { name: "get_weather", arguments: { city: "Oslo" } } }],
    });
    expect(sent.messages[2]).toEqual({ role: "tool", content: '{"celsius":3}', tool_name: "get_weather" });
  });

  it("gives tool calls that Ollama streams in separate frames distinct indexes", async () => {
    // Ollama (>= 0.8) emits each parallel tool call as soon as it is parsed, one NDJSON line each; the
    // Ollama double sends them all in one frame, so this upstream is a minimal hand-written stand-in.
    const line = (message: Body, done = false, extra: Body = {}) =>
      `${JSON.stringify({ model: "qwen3:8b", created_at: new Date().toISOString(), message: { role: "assistant", content: "", ...message }, done, ...extra })}\n`;
    const fake: Server = createServer((req, res) => {
      req.resume();
      req.on("end", () => {
        res.writeHead(200, { "content-type": "application/x-ndjson" });
        res.write(line({ tool_calls: [{ function: { name: "get_weather", arguments: { city: "Oslo" } } }] }));
        res.write(line({ tool_calls: [{ function: { name: "get_weather", arguments: { city: "Bergen" } } }] }));
        res.end(line({}, true, { done_reason: "stop", prompt_eval_count: 3, eval_count: 2 }));
      });
    });
    await new Promise<void>((resolve) => fake.listen(0, "127.0.0.1", resolve));
    const config = loadConfig({
      BIND: "127.0.0.1:0",
      SHUTDOWN_GRACE_MS: "500",
      UPSTREAM: `http://127.0.0.1:${(fake.address() as AddressInfo).port}`,
      DATA_DIR: "/nonexistent-agentgate-test-dir",
    });
    const quiet = new Writable({ write: (_c, _e, done) => done() });
    // Shares the harness's database; closing this gateway leaves it open.
    const gate = await createAgentgate(config, { database: h.gate.db, logger: createLogger("warn", quiet) });
    try {
      const { url } = await gate.listen();
      const other = new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0, timeout: 5_000 });
      const stream = other.chat.completions.stream({
        model: "qwen3:8b",
        messages: [{ role: "user", content: "Oslo and Bergen?" }],
        tools: [weatherTool],
      });
      const indexes: number[] = [];
      stream.on("chunk", (c) =>
        c.choices.forEach((ch) => ch.delta.tool_calls?.forEach((tc) => indexes.push(tc.index))),
      );
      const final = await stream.finalChatCompletion();
      expect(indexes).toEqual([0, 1]);
      const calls = final.choices[0]!.message
        .tool_calls as OpenAI.Chat.Completions.ChatCompletionMessageFunctionToolCall[];
      expect(calls.map((c) => JSON.parse(c.function.arguments))).toEqual([{ city: "Oslo" }, { city: "Bergen" }]);
      expect(new Set(calls.map((c) => c.id)).size).toBe(2);
      expect(final.choices[0]!.finish_reason).toBe("tool_calls");
    } finally {
      await gate.close();
      await new Promise<void>((resolve) => fake.close(() => resolve()));
    }
  });

  it("omits tools when tool_choice is none and offers only the named function when one is forced", async () => {
    const other = {
      type: "function" as const,
      function: { name: "get_time", parameters: { type: "object", properties: {} } },
    };
    await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "hi" }],
      tools: [weatherTool, other],
      tool_choice: "none",
    });
    await client.chat.completions.create({
      model: "qwen3:8b",
      messages: [{ role: "user", content: "hi" }],
      tools: [weatherTool, other],
      tool_choice: { type: "function", function: { name: "get_time" } },
    });
    const [none, forced] = ollamaBodies("/api/chat");
    expect(none!.tools).toBeUndefined();
    expect(forced!.tools.map((t: Body) => t.function.name)).toEqual(["get_time"]);
  });

  it("rejects an assistant tool call whose arguments are not a JSON object with a 400 naming the field", async () => {
    const err = await client.chat.completions
      .create({
        model: "qwen3:8b",
        messages: [
          { role: "user", content: "hi" },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "call_1", type: "function", function: { name: "get_weather", arguments: "{not json" } }],
          },
          { role: "tool", tool_call_id: "call_1", content: "x" },
        ],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const e = err as InstanceType<typeof OpenAI.BadRequestError>;
    expect(e.status).toBe(400);
    expect(e.param).toBe("messages[1].tool_calls[0].function.arguments");
    expect(e.type).toBe("invalid_request_error");
    expect(ollamaBodies("/api/chat")).toHaveLength(0);
  });
});

describe("legacy completions through the openai SDK", () => {
  it("answers a non-streaming completion from /api/generate", async () => {
    h.ollama.enqueue({ content: ["upon", " a time"], promptEvalCount: 2, evalCount: 2 });
    const res = await client.completions.create({
      model: "qwen3:8b",
      prompt: "Once",
      max_tokens: 16,
      temperature: 0,
      stop: ["\n"],
    });
    expect(res.object).toBe("text_completion");
    expect(res.model).toBe("qwen3:8b");
    expect(res.choices[0]).toMatchObject({ index: 0, text: "upon a time", finish_reason: "stop" });
    expect(res.usage).toEqual({ prompt_tokens: 2, completion_tokens: 2, total_tokens: 4 });
    const [sent] = ollamaBodies("/api/generate");
    expect(sent).toMatchObject({
      model: "qwen3:8b",
      prompt: "Once",
      stream: true,
      options: { num_predict: 16, temperature: 0, stop: ["\n"] },
    });
  });

  it("streams a completion as text_completion chunks with a final finish_reason and usage", async () => {
    const stream = await client.completions.create({
      model: "qwen3:8b",
      prompt: "tell me more",
      max_tokens: 3,
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Completions.Completion[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.every((c) => c.object === "text_completion" && c.model === "qwen3:8b")).toBe(true);
    expect(chunks.map((c) => c.choices[0]?.text ?? "").join("")).toBe("You said: tell");
    expect(chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter(Boolean)).toEqual(["length"]);
    expect(chunks.at(-1)!.usage).toMatchObject({ completion_tokens: 3 });
    expect(ollamaBodies("/api/generate")[0]).toMatchObject({ stream: true, options: { num_predict: 3 } });
  });
});

describe("models and embeddings through the openai SDK", () => {
  it("lists the models of both backends, the second one prefixed", async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) {
      expect(m.object).toBe("model");
      ids.push(m.id);
    }
    expect(ids).toEqual(
      expect.arrayContaining([
        "qwen3:8b",
        "llama3.2:3b",
        "nomic-embed-text:latest",
        "vllm/Qwen/Qwen3-8B",
        "vllm/BAAI/bge-small-en-v1.5",
        "codex",
      ]),
    );
    expect(ids).toHaveLength(6);
  });

  it("retrieves a model, including an id with slashes from the second backend", async () => {
    const a = await client.models.retrieve("qwen3:8b");
    expect(a).toMatchObject({ id: "qwen3:8b", object: "model", owned_by: "library" });
    // The SDK percent-encodes the slashes (vllm%2FQwen%2FQwen3-8B).
    const b = await client.models.retrieve("vllm/Qwen/Qwen3-8B");
    expect(b).toMatchObject({ id: "vllm/Qwen/Qwen3-8B", object: "model", owned_by: "vllm", created: 1_735_689_600 });
    const missing = await client.models.retrieve("no-such-model").catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(OpenAI.NotFoundError);
    expect((missing as InstanceType<typeof OpenAI.NotFoundError>).code).toBe("model_not_found");
  });

  it("returns base64 embeddings (the SDK default) that decode to the float ones", async () => {
    const input = ["the quick brown fox", "jumps over the lazy dog"];
    // Record what the SDK puts on the wire and what comes back, to be sure base64 was really used.
    const seen: { sent: Body; received: Body }[] = [];
    const recording = new OpenAI({
      baseURL: `${h.url}/v1`,
      apiKey: "x",
      maxRetries: 0,
      fetch: async (url, init) => {
        const res = await fetch(url, init);
        seen.push({ sent: JSON.parse(String(init?.body)) as Body, received: (await res.clone().json()) as Body });
        return res;
      },
    });
    const b64 = await recording.embeddings.create({ model: "nomic-embed-text", input });
    expect(seen[0]!.sent.encoding_format).toBe("base64");
    expect(typeof seen[0]!.received.data[0].embedding).toBe("string");
    const floats = await client.embeddings.create({ model: "nomic-embed-text", input, encoding_format: "float" });
    expect(ollamaBodies("/api/embed")).toHaveLength(2);
    expect(b64.model).toBe("nomic-embed-text");
    expect(b64.data.map((d) => d.index)).toEqual([0, 1]);
    expect(b64.data[0]!.embedding).toHaveLength(768);
    for (const i of [0, 1]) {
      const f = floats.data[i]!.embedding;
      expect(f).toHaveLength(768);
      // base64 carries little-endian float32: equal to the float answer rounded to float32.
      expect(b64.data[i]!.embedding).toEqual(f.map((x) => Math.fround(x)));
    }
    expect(floats.usage.prompt_tokens).toBeGreaterThan(0);
    expect(floats.usage.total_tokens).toBe(floats.usage.prompt_tokens);
    expect(ollamaBodies("/api/embed")[0]).toMatchObject({ model: "nomic-embed-text", input });
  });

  it("passes dimensions through to Ollama", async () => {
    const res = await client.embeddings.create({
      model: "nomic-embed-text",
      input: "short",
      dimensions: 64,
      encoding_format: "float",
    });
    expect(res.data[0]!.embedding).toHaveLength(64);
    expect(ollamaBodies("/api/embed")[0]!.dimensions).toBe(64);
  });
});

describe("routing to the OpenAI-compatible upstream", () => {
  it('routes "vllm/<model>" to that upstream with the prefix removed and echoes the id as sent', async () => {
    vllm.enqueue({ content: ["from", " vllm"], promptEvalCount: 4, evalCount: 2 });
    const res = await client.chat.completions.create({
      model: "vllm/Qwen/Qwen3-8B",
      messages: [{ role: "user", content: "hi" }],
      temperature: 0.1,
      max_tokens: 20,
    });
    expect(res.model).toBe("vllm/Qwen/Qwen3-8B");
    expect(res.choices[0]!.message.content).toBe("from vllm");
    expect(res.usage).toEqual({ prompt_tokens: 4, completion_tokens: 2, total_tokens: 6 });
    const [sent] = vllmBodies("/v1/chat/completions");
    expect(sent).toMatchObject({ model: "Qwen/Qwen3-8B", temperature: 0.1, max_tokens: 20, stream: true });
    expect(ollamaBodies("/api/chat")).toHaveLength(0);
  });

  it("routes a bare id listed only by that upstream there, streaming with tool-call fragments reassembled", async () => {
    vllm.enqueue({ toolCalls: [{ name: "get_weather", arguments: { city: "Tromsø" } }] });
    const stream = await client.chat.completions.create({
      model: "Qwen/Qwen3-8B",
      messages: [{ role: "user", content: "weather?" }],
      tools: [weatherTool],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks: OpenAI.Chat.Completions.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    expect(chunks.every((c) => c.model === "Qwen/Qwen3-8B")).toBe(true);
    const calls = chunks.flatMap((c) => c.choices.flatMap((ch) => ch.delta.tool_calls ?? []));
    expect(calls).toHaveLength(1);
    expect(JSON.parse(calls[0]!.function!.arguments!)).toEqual({ city: "Tromsø" });
    expect(chunks.flatMap((c) => c.choices.map((ch) => ch.finish_reason)).filter(Boolean)).toEqual(["tool_calls"]);
    expect(chunks.at(-1)!.usage?.total_tokens).toBeGreaterThan(0);
    const [sent] = vllmBodies("/v1/chat/completions");
    expect(sent).toMatchObject({ model: "Qwen/Qwen3-8B", stream: true });
    expect(ollamaBodies("/api/chat")).toHaveLength(0);
  });

  it("routes completions and embeddings to the upstream too", async () => {
    const c = await client.completions.create({ model: "vllm/Qwen/Qwen3-8B", prompt: "abc" });
    expect(c.model).toBe("vllm/Qwen/Qwen3-8B");
    expect(c.choices[0]!.text).toBe("You said: abc");
    const e = await client.embeddings.create({ model: "vllm/BAAI/bge-small-en-v1.5", input: "abc" });
    expect(e.model).toBe("vllm/BAAI/bge-small-en-v1.5");
    expect(e.data[0]!.embedding).toHaveLength(384);
    expect(vllmBodies("/v1/completions")[0]).toMatchObject({ model: "Qwen/Qwen3-8B", prompt: "abc" });
    expect(vllmBodies("/v1/embeddings")[0]).toMatchObject({ model: "BAAI/bge-small-en-v1.5", input: ["abc"] });
  });
});

describe("plain curl over HTTP/2 (prior knowledge, cleartext)", () => {
  it("answers a chat completion on the same port", async () => {
    const body = JSON.stringify({ model: "qwen3:8b", messages: [{ role: "user", content: "over h2" }] });
    const { stdout } = await run(
      "curl",
      [
        "-sS",
        "--http2-prior-knowledge",
        "-w",
        "\n%{http_version} %{http_code}",
        "-H",
        "content-type: application/json",
        "-d",
        body,
        `${h.url}/v1/chat/completions`,
      ],
      { timeout: 5_000 },
    );
    const lines = stdout.trimEnd().split("\n");
    expect(lines.at(-1)).toBe("2 200");
    const res = JSON.parse(lines.slice(0, -1).join("\n")) as Body;
    expect(res.object).toBe("chat.completion");
    expect(res.choices[0].message.content).toBe("You said: over h2");
  });
});
