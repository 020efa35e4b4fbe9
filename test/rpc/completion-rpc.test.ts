// agentgate.v1.CompletionService through the typed clients (clients/index.ts) over h2c, against a
// real gateway in front of the Ollama double: what reaches Ollama, what comes back, validation
// errors naming the field, and deadlines that abort the upstream request.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createAgentgateClients,
  FinishReason,
  ModelCapability,
  ReasoningEffort,
  ResponseFormatType,
  Role,
  ToolChoiceMode,
  type AgentgateClients,
} from "../../clients/index.js";
import { estimateTokens, hashEmbedding, normalize, type RecordedRequest } from "../doubles/double-server.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

const run = promisify(execFile);

let h: GatewayHarness;
let ag: AgentgateClients;
let grpc: AgentgateClients;

beforeAll(async () => {
  h = await startGateway();
  ag = createAgentgateClients({ baseUrl: h.url, httpVersion: "2", protocol: "connect" });
  grpc = createAgentgateClients({ baseUrl: h.url, protocol: "grpc" });
});
afterAll(() => h?.close());
beforeEach(() => h.ollama.reset());

const user = (content: string) => ({ role: Role.USER, content });
const upstream = (path: string): RecordedRequest[] => h.ollama.requests.filter((r) => r.path === path);
const bodyOf = (r: RecordedRequest | undefined) => r?.body as Record<string, any>;

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of stream) out.push(item);
  return out;
}

async function connectError(p: Promise<unknown>): Promise<ConnectError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectError);
  return err as ConnectError;
}

const weatherTool = {
  name: "get_weather",
  description: "Current weather of a city",
  parameters: {
    type: "object",
    properties: { city: { type: "string" }, days: { type: "number" } },
    required: ["city"],
  },
};

describe("Chat", () => {
  it("maps options to Ollama and returns the message, finish reason, usage and ids", async () => {
    h.ollama.enqueue({ content: ["Bonjour", " !"], promptEvalCount: 12, evalCount: 2, doneReason: "stop" });
    const res = await ag.completion.chat({
      model: "llama3.2:3b",
      messages: [{ role: Role.SYSTEM, content: "be brief" }, user("salut")],
      options: { temperature: 0.2, topP: 0.9, maxTokens: 64, stop: ["\n\n"], seed: 7n, topK: 20, contextWindow: 8192 },
      responseFormat: { type: ResponseFormatType.JSON_OBJECT },
    });
    expect(res.message?.content).toBe("Bonjour !");
    expect(res.message?.role).toBe(Role.ASSISTANT);
    expect(res.finishReason).toBe(FinishReason.STOP);
    expect(res.usage).toMatchObject({ promptTokens: 12, completionTokens: 2, totalTokens: 14 });
    expect(res.id).toMatch(/^chatcmpl-/);
    expect([res.model, res.backend]).toEqual(["llama3.2:3b", "ollama"]);
    expect(Number(res.created?.seconds)).toBeGreaterThan(Date.now() / 1000 - 60);

    const sent = bodyOf(upstream("/api/chat")[0]);
    // Backends always stream from the upstream (idle timeout instead of a whole-answer timeout).
    expect(sent.stream).toBe(true);
    expect(sent.format).toBe("json");
    expect(sent.messages).toEqual([
      { role: "system", content: "be brief" },
      { role: "user", content: "salut" },
    ]);
    expect(sent.options).toEqual({
      temperature: 0.2,
      top_p: 0.9,
      num_predict: 64,
      stop: ["\n\n"],
      seed: 7,
      top_k: 20,
      num_ctx: 8192,
    });
  });

  it("returns tool calls with string arguments and ids (finish reason TOOL_CALLS), and sends tool results back", async () => {
    h.ollama.enqueue({
      toolCalls: [
        { name: "get_weather", arguments: { city: "Paris", days: 2 } },
        { name: "get_weather", arguments: { city: "Lyon" } },
      ],
    });
    const res = await ag.completion.chat({
      model: "llama3.2:3b",
      messages: [user("weather in Paris and Lyon?")],
      tools: [weatherTool],
      toolChoice: { choice: { case: "mode", value: ToolChoiceMode.AUTO } },
    });
    expect(res.finishReason).toBe(FinishReason.TOOL_CALLS);
    const calls = res.message!.toolCalls;
    expect(calls.map((c) => [c.name, JSON.parse(c.arguments)])).toEqual([
      ["get_weather", { city: "Paris", days: 2 }],
      ["get_weather", { city: "Lyon" }],
    ]);
    for (const c of calls) {
      expect(typeof c.arguments).toBe("string");
      expect(c.id).toMatch(/^call/);
    }
    expect(new Set(calls.map((c) => c.id)).size).toBe(2);
    expect(bodyOf(upstream("/api/chat")[0]).tools).toEqual([{ type: "function", function: weatherTool }]);

    // The follow-up turn: Ollama wants object arguments back and the tool's name on the result.
    await ag.completion.chat({
      model: "llama3.2:3b",
      messages: [
        user("weather in Paris?"),
        { role: Role.ASSISTANT, content: "", toolCalls: [calls[0]!] },
        { role: Role.TOOL, toolCallId: calls[0]!.id, content: '{"temp":21}' },
      ],
      tools: [weatherTool],
    });
    const followUp = bodyOf(upstream("/api/chat")[1]).messages as Record<string, unknown>[];
    expect(followUp[1]).toMatchObject({
      role: "assistant",
      tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris", days: 2 } } }],
    });
    expect(followUp[2]).toEqual({ role: "tool", content: '{"temp":21}', tool_name: "get_weather" });
  });

  it("carries reasoning effort to Ollama's think (a level for GPT-OSS, on/off for others)", async () => {
    await ag.completion.chat({ model: "qwen3:8b", messages: [user("hi")], reasoningEffort: ReasoningEffort.HIGH });
    await ag.completion.chat({ model: "qwen3:8b", messages: [user("hi")], reasoningEffort: ReasoningEffort.NONE });
    await ag.completion.chat({ model: "qwen3:8b", messages: [user("hi")] });
    expect(upstream("/api/chat").map((r) => bodyOf(r).think)).toEqual([true, false, undefined]);
  });

  it("reports an unknown model as not_found, naming the upstream", async () => {
    const err = await connectError(ag.completion.chat({ model: "nope:1b", messages: [user("hi")] }));
    expect(err.code).toBe(Code.NotFound);
    expect(err.rawMessage).toContain(h.ollama.url);
    expect(err.rawMessage).toContain("nope:1b");
  });
});

describe("ChatStream", () => {
  it.each([
    ["connect", () => ag],
    ["grpc", () => grpc],
  ] as const)(
    "streams reasoning and content deltas, then one final frame with finish reason and usage (%s)",
    async (_name, client) => {
      h.ollama.enqueue({
        thinking: ["Let me", " think."],
        content: ["Hel", "lo ", "world"],
        promptEvalCount: 11,
        evalCount: 5,
      });
      const frames = await collect(client().completion.chatStream({ model: "qwen3:8b", messages: [user("hello")] }));
      expect(bodyOf(upstream("/api/chat")[0]).stream).toBe(true);
      const final = frames.at(-1)!;
      const deltas = frames.slice(0, -1);
      expect(deltas.map((f) => f.reasoningDelta).join("")).toBe("Let me think.");
      expect(deltas.map((f) => f.contentDelta).filter(Boolean)).toEqual(["Hel", "lo ", "world"]);
      for (const f of deltas) {
        expect(f.finishReason).toBe(FinishReason.UNSPECIFIED);
        expect(f.usage).toBeUndefined();
      }
      expect(final.finishReason).toBe(FinishReason.STOP);
      expect(final.usage).toMatchObject({ promptTokens: 11, completionTokens: 5, totalTokens: 16 });
      expect(final.contentDelta).toBe("");
      expect(new Set(frames.map((f) => f.id)).size).toBe(1);
      expect(frames[0]!.id).toMatch(/^chatcmpl-/);
      expect(frames.every((f) => f.model === "qwen3:8b" && f.backend === "ollama")).toBe(true);
    },
  );

  it("streams tool calls once, with string arguments, then finish reason TOOL_CALLS", async () => {
    h.ollama.enqueue({ toolCalls: [{ name: "get_weather", arguments: { city: "Oslo" } }], chunkDelayMs: 5 });
    const frames = await collect(
      ag.completion.chatStream({ model: "llama3.2:3b", messages: [user("weather?")], tools: [weatherTool] }),
    );
    const calls = frames.flatMap((f) => f.toolCalls);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ name: "get_weather", arguments: '{"city":"Oslo"}' });
    expect(calls[0]!.id).toMatch(/^call/);
    expect(frames.at(-1)!.finishReason).toBe(FinishReason.TOOL_CALLS);
  });

  it("stops at max_tokens with finish reason LENGTH", async () => {
    const frames = await collect(
      ag.completion.chatStream({
        model: "llama3.2:3b",
        messages: [user("one two three four five")],
        options: { maxTokens: 2 },
      }),
    );
    expect(frames.map((f) => f.contentDelta).join("")).toBe("You said:");
    expect(frames.at(-1)!.finishReason).toBe(FinishReason.LENGTH);
  });
});

describe("Complete and CompleteStream", () => {
  it("Complete continues a prompt through /api/generate with mapped options", async () => {
    h.ollama.enqueue({ content: ["def add(a, b):", "\n    return a + b"], promptEvalCount: 6, evalCount: 2 });
    const res = await ag.completion.complete({
      model: "llama3.2:3b",
      prompt: "# add two numbers\n",
      suffix: "\n# end",
      options: { temperature: 0, stop: ["\n\n"] },
    });
    expect(res.text).toBe("def add(a, b):\n    return a + b");
    expect(res.finishReason).toBe(FinishReason.STOP);
    expect(res.usage).toMatchObject({ promptTokens: 6, completionTokens: 2, totalTokens: 8 });
    expect(res.id).toMatch(/^cmpl-/);
    const sent = bodyOf(upstream("/api/generate")[0]);
    expect(sent).toMatchObject({
      model: "llama3.2:3b",
      prompt: "# add two numbers\n",
      suffix: "\n# end",
      stream: true,
      options: { temperature: 0, stop: ["\n\n"] },
    });
  });

  it("Complete reports LENGTH when max_tokens cuts the answer", async () => {
    const res = await ag.completion.complete({
      model: "llama3.2:3b",
      prompt: "a b c d e f",
      options: { maxTokens: 3 },
    });
    expect(res.text).toBe("You said: a");
    expect(res.finishReason).toBe(FinishReason.LENGTH);
    expect(bodyOf(upstream("/api/generate")[0]).options).toEqual({ num_predict: 3, num_ctx: 65_536 });
  });

  it("CompleteStream sends text deltas, then a final frame with finish reason and usage", async () => {
    h.ollama.enqueue({ content: ["once", " upon", " a time"], promptEvalCount: 3, evalCount: 3, chunkDelayMs: 2 });
    const frames = await collect(grpc.completion.completeStream({ model: "llama3.2:3b", prompt: "tell me a story" }));
    expect(frames.map((f) => f.textDelta).join("")).toBe("once upon a time");
    expect(frames.slice(0, -1).every((f) => f.finishReason === FinishReason.UNSPECIFIED && !f.usage)).toBe(true);
    expect(frames.at(-1)).toMatchObject({
      finishReason: FinishReason.STOP,
      usage: { promptTokens: 3, completionTokens: 3, totalTokens: 6 },
    });
    expect(new Set(frames.map((f) => f.id)).size).toBe(1);
    expect(bodyOf(upstream("/api/generate")[0]).stream).toBe(true);
  });
});

describe("ListModels", () => {
  it("lists the double's models with capabilities and context windows from /api/show", async () => {
    const res = await ag.completion.listModels({});
    expect(res.unavailableBackends).toEqual([]);
    const byId = new Map(res.models.map((m) => [m.id, m]));
    // The Codex CLI backend lists its default model as "codex".
    expect([...byId.keys()].sort()).toEqual(["codex", "llama3.2:3b", "nomic-embed-text:latest", "qwen3:8b"]);
    expect(byId.get("codex")).toMatchObject({ backend: "codex" });
    const qwen = byId.get("qwen3:8b")!;
    expect(qwen).toMatchObject({
      backend: "ollama",
      contextWindow: 40_960,
      family: "qwen3",
      parameterSize: "8.2B",
      sizeBytes: 5_225_388_164n,
    });
    expect([...qwen.capabilities].sort()).toEqual(
      [ModelCapability.CHAT, ModelCapability.COMPLETION, ModelCapability.TOOLS, ModelCapability.THINKING].sort(),
    );
    expect(byId.get("llama3.2:3b")).toMatchObject({ contextWindow: 131_072 });
    expect([...byId.get("llama3.2:3b")!.capabilities].sort()).toEqual(
      [ModelCapability.CHAT, ModelCapability.COMPLETION, ModelCapability.TOOLS].sort(),
    );
    const embed = byId.get("nomic-embed-text:latest")!;
    expect(embed).toMatchObject({ contextWindow: 2048, quantization: "F16" });
    expect(embed.capabilities).toEqual([ModelCapability.EMBEDDING]);
  });
});

describe("Embed", () => {
  it("returns the double's vectors (float32) and usage", async () => {
    const inputs = ["alpha", "a longer sentence to embed"];
    const res = await ag.completion.embed({ model: "nomic-embed-text", inputs });
    expect([res.model, res.backend]).toEqual(["nomic-embed-text", "ollama"]);
    expect(res.embeddings).toHaveLength(2);
    res.embeddings.forEach((e, i) => {
      expect(e.values).toHaveLength(768);
      expect(e.values).toEqual(Array.from(new Float32Array(hashEmbedding(inputs[i]!, 768))));
    });
    const tokens = inputs.reduce((n, s) => n + estimateTokens(s), 0);
    expect(res.usage).toMatchObject({ promptTokens: tokens, totalTokens: tokens });
    expect(bodyOf(upstream("/api/embed")[0])).toMatchObject({ model: "nomic-embed-text", input: inputs });
  });

  it("passes dimensions through", async () => {
    const res = await grpc.completion.embed({ model: "nomic-embed-text", inputs: ["short"], dimensions: 32 });
    // The double truncates the model's 768-d vector and re-normalises it, as Ollama does.
    expect(res.embeddings[0]!.values).toEqual(
      Array.from(new Float32Array(normalize(hashEmbedding("short", 768).slice(0, 32)))),
    );
    expect(bodyOf(upstream("/api/embed")[0]).dimensions).toBe(32);
  });
});

describe("invalid requests", () => {
  const msgs = [user("hi")];
  const cases: { name: string; call: () => Promise<unknown>; field: string }[] = [
    {
      name: "chat without messages",
      call: () => ag.completion.chat({ model: "qwen3:8b", messages: [] }),
      field: "messages",
    },
    {
      name: "message without role",
      call: () => ag.completion.chat({ messages: [{ content: "hi" }] }),
      field: "messages[0].role",
    },
    {
      name: "empty user message",
      call: () => ag.completion.chat({ messages: [user("hi"), user("")] }),
      field: "messages[1].content",
    },
    {
      name: "tool message without id",
      call: () => ag.completion.chat({ messages: [user("hi"), { role: Role.TOOL, content: "42" }] }),
      field: "messages[1].tool_call_id",
    },
    {
      name: "temperature above 2",
      call: () => ag.completion.chat({ messages: msgs, options: { temperature: 3 } }),
      field: "temperature",
    },
    {
      name: "top_p above 1",
      call: () => collect(ag.completion.chatStream({ messages: msgs, options: { topP: 1.5 } })),
      field: "top_p",
    },
    {
      name: "bad tool name",
      call: () => ag.completion.chat({ messages: msgs, tools: [{ name: "get weather!" }] }),
      field: "tools[0].function.name",
    },
    {
      name: "tool_choice of unknown function",
      call: () =>
        ag.completion.chat({
          messages: msgs,
          tools: [weatherTool],
          toolChoice: { choice: { case: "functionName", value: "other" } },
        }),
      field: "tool_choice",
    },
    {
      name: "json schema format without schema",
      call: () => ag.completion.chat({ messages: msgs, responseFormat: { type: ResponseFormatType.JSON_SCHEMA } }),
      field: "response_format.json_schema",
    },
    {
      name: "max_tokens 0",
      call: () => ag.completion.complete({ prompt: "x", options: { maxTokens: 0 } }),
      field: "max_tokens",
    },
    {
      name: "five stop sequences",
      call: () =>
        collect(grpc.completion.completeStream({ prompt: "x", options: { stop: ["a", "b", "c", "d", "e"] } })),
      field: "stop",
    },
    {
      name: "model id with whitespace",
      call: () => ag.completion.complete({ model: "qwen3 8b", prompt: "x" }),
      field: "model",
    },
    {
      name: "embed without inputs",
      call: () => ag.completion.embed({ model: "nomic-embed-text", inputs: [] }),
      field: "input",
    },
    {
      name: "embed with an empty input",
      call: () => grpc.completion.embed({ model: "nomic-embed-text", inputs: ["ok", ""] }),
      field: "input[1]",
    },
  ];

  it.each(cases)("$name → invalid_argument naming $field, without calling upstream", async ({ call, field }) => {
    const err = await connectError(call());
    expect(err.code).toBe(Code.InvalidArgument);
    expect(err.rawMessage).toContain(`(field ${field})`);
    expect(h.ollama.requests.filter((r) => r.method === "POST")).toEqual([]);
  });
});

describe("deadlines", () => {
  it.each([
    [
      "Chat over connect",
      () => ag.completion.chat({ model: "llama3.2:3b", messages: [user("slow")] }, { timeoutMs: 300 }),
      "/api/chat",
    ],
    [
      "ChatStream over grpc",
      () => collect(grpc.completion.chatStream({ model: "llama3.2:3b", messages: [user("slow")] }, { timeoutMs: 300 })),
      "/api/chat",
    ],
    [
      "Complete over grpc",
      () => grpc.completion.complete({ model: "llama3.2:3b", prompt: "slow" }, { timeoutMs: 300 }),
      "/api/generate",
    ],
  ] as const)(
    "%s: a client timeoutMs gives deadline_exceeded and aborts the upstream request",
    async (_name, call, path) => {
      h.ollama.enqueue({ firstByteDelayMs: 10_000 });
      const started = performance.now();
      const err = await connectError(call());
      expect(err.code).toBe(Code.DeadlineExceeded);
      expect(performance.now() - started).toBeLessThan(2_000);
      const aborted = await h.ollama.waitForAbort(3_000);
      expect(aborted.path).toBe(path);
    },
  );

  it("a stream that stalls mid-way is cut at the deadline too", async () => {
    h.ollama.enqueue({ content: ["a", "b", "c", "d"], chunkDelayMs: 400 });
    const frames: string[] = [];
    const err = await connectError(
      (async () => {
        for await (const f of ag.completion.chatStream(
          { model: "llama3.2:3b", messages: [user("x")] },
          { timeoutMs: 600 },
        ))
          frames.push(f.contentDelta);
      })(),
    );
    expect(err.code).toBe(Code.DeadlineExceeded);
    expect(frames.length).toBeGreaterThan(0);
    expect(frames.length).toBeLessThan(4);
    expect((await h.ollama.waitForAbort(3_000)).path).toBe("/api/chat");
  });

  it("a caller that cancels mid-stream aborts the upstream request", async () => {
    h.ollama.enqueue({ content: ["a", "b", "c", "d"], chunkDelayMs: 300 });
    const ac = new AbortController();
    const frames: string[] = [];
    const err = await connectError(
      (async () => {
        for await (const f of grpc.completion.chatStream(
          { model: "llama3.2:3b", messages: [user("x")] },
          { signal: ac.signal },
        )) {
          frames.push(f.contentDelta);
          ac.abort();
        }
      })(),
    );
    expect(err.code).toBe(Code.Canceled);
    expect(frames).toEqual(["a"]);
    expect((await h.ollama.waitForAbort(3_000)).path).toBe("/api/chat");
  });

  it("the server enforces a deadline header on its own (no client-side timer)", async () => {
    h.ollama.enqueue({ firstByteDelayMs: 10_000 });
    const started = performance.now();
    const { stdout } = await run(
      "curl",
      [
        "-sS",
        "--max-time",
        "10",
        "-w",
        "\n%{http_code}",
        "-H",
        "content-type: application/json",
        "-H",
        "connect-timeout-ms: 300",
        "-d",
        JSON.stringify({ model: "llama3.2:3b", messages: [{ role: "ROLE_USER", content: "slow" }] }),
        `${h.url}/agentgate.v1.CompletionService/Chat`,
      ],
      { timeout: 15_000 },
    );
    const elapsed = performance.now() - started;
    const cut = stdout.lastIndexOf("\n");
    expect(Number(stdout.slice(cut + 1))).toBe(504);
    expect(JSON.parse(stdout.slice(0, cut))).toMatchObject({ code: "deadline_exceeded" });
    expect(elapsed).toBeLessThan(3_000);
    expect((await h.ollama.waitForAbort(3_000)).path).toBe("/api/chat");
  });
});
