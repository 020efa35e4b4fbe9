/**
 * The OpenAI shapes <-> neutral types <-> Ollama shapes, without HTTP: src/rest/openai/translate.ts,
 * the exported helpers of src/backends/ollama-backend.ts and the shared rules of
 * src/completion/validate.ts.
 */
import { describe, expect, it } from "vitest";
import { toOllamaMessages } from "../../src/backends/ollama-backend.js";
import type { ChatMessage, ChatRequest } from "../../src/completion/types.js";
import {
  validateChatRequest,
  validateCompletionRequest,
  validateEmbedRequest,
  validateOptions,
} from "../../src/completion/validate.js";
import { GatewayError } from "../../src/errors/gateway-error.js";
import type { ChatCompletionRequest, CompletionRequest } from "../../src/rest/openai/schemas.js";
import {
  chatChunk,
  chatCompletionBody,
  chatUsageChunk,
  completionChunk,
  toDomainChat,
  toDomainCompletion,
  toDomainMessages,
  wireToolCalls,
} from "../../src/rest/openai/translate.js";

type WireMessage = ChatCompletionRequest["messages"][number];

/** Runs `fn`, expects an invalid_argument GatewayError, returns it. */
function rejected(fn: () => unknown): GatewayError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, "expected an error").toBeInstanceOf(GatewayError);
  const g = thrown as GatewayError;
  expect(g.kind).toBe("invalid_argument");
  expect(g.status).toBe(400);
  return g;
}

const PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";

const chat = (messages: WireMessage[], extra: Partial<ChatCompletionRequest> = {}): ChatCompletionRequest => ({
  model: "qwen3:8b",
  messages,
  ...extra,
});

describe("toDomainMessages", () => {
  it("maps developer to system and keeps the other roles", () => {
    const out = toDomainMessages([
      { role: "developer", content: "rules" },
      { role: "system", content: "more rules" },
      { role: "user", content: "hi" },
      { role: "assistant", content: "hello" },
    ]);
    expect(out.map((m) => m.role)).toEqual(["system", "system", "user", "assistant"]);
    expect(out[0]).toEqual({ role: "system", content: "rules" });
  });

  it("joins text parts with newlines and extracts base64 data: URL images", () => {
    const [m] = toDomainMessages([
      {
        role: "user",
        content: [
          { type: "text", text: "What is in" },
          { type: "image_url", image_url: { url: `data:image/png;base64,${PNG}`, detail: "low" } },
          { type: "text", text: "this picture?" },
          { type: "image_url", image_url: { url: `data:image/jpeg;base64,${PNG.slice(0, 20)}\n${PNG.slice(20)}` } },
        ],
      },
    ]);
    expect(m!.content).toBe("What is in\nthis picture?");
    // Line breaks inside the base64 are dropped.
    expect(m!.images).toEqual([PNG, PNG]);
  });

  it("rejects remote image URLs and non-base64 data URLs, naming the part", () => {
    for (const url of ["https://example.com/cat.png", "data:image/png,rawbytes", "data:text/plain;base64,aGk="]) {
      const err = rejected(() =>
        toDomainMessages([
          { role: "user", content: "first" },
          {
            role: "user",
            content: [
              { type: "text", text: "look" },
              { type: "image_url", image_url: { url } },
            ],
          },
        ]),
      );
      expect(err.param).toBe("messages[1].content[1].image_url.url");
    }
  });

  it("treats null and missing content as empty and keeps name, tool_call_id, tool_calls and reasoning", () => {
    const out = toDomainMessages([
      { role: "user", content: "q", name: "alice" },
      {
        role: "assistant",
        content: null,
        reasoning_content: "thinking it over",
        tool_calls: [{ id: "call_a", type: "function", function: { name: "lookup", arguments: '{"q":"x"}' } }],
      },
      { role: "tool", tool_call_id: "call_a", content: [{ type: "text", text: "result" }] },
    ]);
    expect(out).toEqual<ChatMessage[]>([
      { role: "user", content: "q", name: "alice" },
      {
        role: "assistant",
        content: "",
        reasoning: "thinking it over",
        toolCalls: [{ id: "call_a", name: "lookup", arguments: '{"q":"x"}' }],
      },
      { role: "tool", content: "result", toolCallId: "call_a" },
    ]);
  });
});

describe("toDomainChat and toDomainCompletion", () => {
  it("maps sampling options, preferring max_completion_tokens", () => {
    const req = toDomainChat(
      chat([{ role: "user", content: "x" }], {
        temperature: 0.2,
        top_p: 0.5,
        max_tokens: 100,
        max_completion_tokens: 7,
        stop: "END",
        seed: 3,
        presence_penalty: 1,
        frequency_penalty: -1,
        top_k: 20,
        num_ctx: 8192,
      }),
    );
    expect(req.options).toEqual({
      temperature: 0.2,
      topP: 0.5,
      maxTokens: 7,
      stop: ["END"],
      seed: 3,
      presencePenalty: 1,
      frequencyPenalty: -1,
      topK: 20,
      contextWindow: 8192,
    });
    // Nulls mean "not set".
    expect(
      toDomainChat(chat([{ role: "user", content: "x" }], { temperature: null, stop: null, max_tokens: null })).options,
    ).toEqual({});
  });

  it("maps tools, tool_choice and response_format", () => {
    const parameters = { type: "object", properties: { q: { type: "string" } } };
    const req = toDomainChat(
      chat([{ role: "user", content: "x" }], {
        tools: [{ type: "function", function: { name: "lookup", description: "find", parameters, strict: true } }],
        tool_choice: { type: "function", function: { name: "lookup" } },
        response_format: {
          type: "json_schema",
          json_schema: { name: "answer", schema: { type: "object" }, strict: true },
        },
      }),
    );
    expect(req.tools).toEqual([{ name: "lookup", description: "find", parameters, strict: true }]);
    expect(req.toolChoice).toEqual({ name: "lookup" });
    expect(req.responseFormat).toEqual({
      type: "json_schema",
      schema: { type: "object" },
      name: "answer",
      strict: true,
    });
    expect(toDomainChat(chat([{ role: "user", content: "x" }], { tool_choice: "required" })).toolChoice).toBe(
      "required",
    );
    expect(
      toDomainChat(chat([{ role: "user", content: "x" }], { response_format: { type: "json_object" } })).responseFormat,
    ).toEqual({ type: "json_object" });
    expect(
      toDomainChat(
        chat([{ role: "user", content: "x" }], {
          response_format: { type: "json_schema", json_schema: { name: "n" } },
        }),
      ).responseFormat,
    ).toMatchObject({ type: "json_schema", schema: {} });
  });

  it("refuses logprobs and echo as unsupported parameters", () => {
    const a = rejected(() => toDomainChat(chat([{ role: "user", content: "x" }], { logprobs: true })));
    expect([a.param, a.code]).toEqual(["logprobs", "unsupported_parameter"]);
    const b = rejected(() => toDomainCompletion({ model: "m", prompt: "x", echo: true } as CompletionRequest));
    expect([b.param, b.code]).toEqual(["echo", "unsupported_parameter"]);
  });

  it("takes the only element of a prompt array, and suffix and raw", () => {
    const req = toDomainCompletion({
      model: "m",
      prompt: ["def f():"],
      suffix: "\n",
      raw: true,
      max_tokens: 5,
    } as CompletionRequest);
    expect(req).toEqual({ model: "m", prompt: "def f():", suffix: "\n", raw: true, options: { maxTokens: 5 } });
  });
});

describe("toOllamaMessages", () => {
  it("turns string tool-call arguments into objects and gives tool results the function name as tool_name", () => {
    const out = toOllamaMessages([
      { role: "user", content: "weather in Oslo and the time?" },
      {
        role: "assistant",
        content: "",
        toolCalls: [
          { id: "call_w", name: "get_weather", arguments: '{"city":"Oslo","days":[1,2]}' },
          { id: "call_t", name: "get_time", arguments: "" },
        ],
      },
      { role: "tool", content: "12:00", toolCallId: "call_t" },
      { role: "tool", content: "3 C", toolCallId: "call_w" },
      { role: "tool", content: "?", toolCallId: "call_unknown" },
      { role: "tool", content: "named", toolCallId: "call_w", name: "explicit_name" },
    ]);
    expect(out[1]).toEqual({
      role: "assistant",
      content: "",
      tool_calls: [
        { function: { name: "get_weather", arguments: { city: "Oslo", days: [1, 2] } } },
        { function: { name: "get_time", arguments: {} } },
      ],
    });
    expect(out[2]).toEqual({ role: "tool", content: "12:00", tool_name: "get_time" });
    expect(out[3]).toEqual({ role: "tool", content: "3 C", tool_name: "get_weather" });
    // An id no assistant message offered: no name to give.
    expect(out[4]).toEqual({ role: "tool", content: "?" });
    expect(out[5]!.tool_name).toBe("explicit_name");
  });

  it("passes images and reasoning (as thinking) through", () => {
    const out = toOllamaMessages([
      { role: "user", content: "see", images: [PNG] },
      { role: "assistant", content: "ok", reasoning: "hmm" },
    ]);
    expect(out).toEqual([
      { role: "user", content: "see", images: [PNG] },
      { role: "assistant", content: "ok", thinking: "hmm" },
    ]);
  });

  it("rejects tool-call arguments that are not a JSON object, naming the field", () => {
    for (const args of ["{not json", "[1,2]", '"text"', "null", "42"]) {
      const err = rejected(() =>
        toOllamaMessages([
          { role: "user", content: "x" },
          {
            role: "assistant",
            content: "",
            toolCalls: [
              { id: "a", name: "ok", arguments: "{}" },
              { id: "b", name: "f", arguments: args },
            ],
          },
        ]),
      );
      expect(err.param).toBe("messages[1].tool_calls[1].function.arguments");
      expect(err.message).toMatch(/JSON object/);
    }
  });
});

describe("validateChatRequest", () => {
  const base = (messages: ChatMessage[], extra: Partial<ChatRequest> = {}): ChatRequest => ({
    model: "qwen3:8b",
    messages,
    options: {},
    ...extra,
  });
  const u = (content: string): ChatMessage => ({ role: "user", content });

  it("accepts a full tool round trip after developer -> system mapping", () => {
    const req = toDomainChat(
      chat(
        [
          { role: "developer", content: "be terse" },
          { role: "user", content: "x" },
          {
            role: "assistant",
            content: null,
            tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: "{}" } }],
          },
          { role: "tool", tool_call_id: "c1", content: "r" },
        ],
        { tools: [{ type: "function", function: { name: "f" } }], tool_choice: "auto" },
      ),
    );
    expect(() => validateChatRequest(req)).not.toThrow();
  });

  it.each<[string, ChatRequest, string]>([
    ["an unknown role", base([{ role: "wizard" as never, content: "x" }]), "messages[0].role"],
    ["a tool message without tool_call_id", base([u("x"), { role: "tool", content: "r" }]), "messages[1].tool_call_id"],
    [
      "tool_call_id on a user message",
      base([{ role: "user", content: "x", toolCallId: "c" }]),
      "messages[0].tool_call_id",
    ],
    [
      "tool_calls on a user message",
      base([{ role: "user", content: "x", toolCalls: [{ id: "c", name: "f", arguments: "{}" }] }]),
      "messages[0].tool_calls",
    ],
    [
      "a tool call without id",
      base([u("x"), { role: "assistant", content: "", toolCalls: [{ id: "", name: "f", arguments: "{}" }] }]),
      "messages[1].tool_calls[0].id",
    ],
    [
      "a bad function name in a tool call",
      base([u("x"), { role: "assistant", content: "", toolCalls: [{ id: "c", name: "no spaces", arguments: "{}" }] }]),
      "messages[1].tool_calls[0].function.name",
    ],
    ["an empty user message", base([u("")]), "messages[0].content"],
    ["an empty assistant message", base([u("x"), { role: "assistant", content: "" }]), "messages[1].content"],
    ["no messages", base([]), "messages"],
    [
      "only system messages",
      base([
        { role: "system", content: "a" },
        { role: "system", content: "b" },
      ]),
      "messages",
    ],
    ["a model id with whitespace", { ...base([u("x")]), model: "qwen3 8b" }, "model"],
    ["a model id that is too long", { ...base([u("x")]), model: "m".repeat(257) }, "model"],
    ["temperature above 2", base([u("x")], { options: { temperature: 2.5 } }), "temperature"],
    ["top_p NaN", base([u("x")], { options: { topP: Number.NaN } }), "top_p"],
    ["max_tokens 0", base([u("x")], { options: { maxTokens: 0 } }), "max_tokens"],
    ["five stop sequences", base([u("x")], { options: { stop: ["a", "b", "c", "d", "e"] } }), "stop"],
    ["an empty stop sequence", base([u("x")], { options: { stop: [""] } }), "stop"],
    ["a fractional seed", base([u("x")], { options: { seed: 1.5 } }), "seed"],
    ["duplicate function names", base([u("x")], { tools: [{ name: "f" }, { name: "f" }] }), "tools[1].function.name"],
    ["a bad function name", base([u("x")], { tools: [{ name: "bad.name" }] }), "tools[0].function.name"],
    [
      "tool_choice naming an absent function",
      base([u("x")], { tools: [{ name: "f" }], toolChoice: { name: "g" } }),
      "tool_choice",
    ],
    ["tool_choice required without tools", base([u("x")], { toolChoice: "required" }), "tool_choice"],
  ])("rejects %s", (_name, req, param) => {
    expect(rejected(() => validateChatRequest(req)).param).toBe(param);
  });

  it("accepts an image-only user message", () => {
    expect(() => validateChatRequest(base([{ role: "user", content: "", images: [PNG] }]))).not.toThrow();
  });

  it("accepts an empty tool result (a command with no output) but not an empty system message", () => {
    const call = { role: "assistant" as const, content: "", toolCalls: [{ id: "c1", name: "run", arguments: "{}" }] };
    expect(() =>
      validateChatRequest(base([u("x"), call, { role: "tool", content: "", toolCallId: "c1" }])),
    ).not.toThrow();
    expect(rejected(() => validateChatRequest(base([{ role: "system", content: "" }, u("x")]))).param).toBe(
      "messages[0].content",
    );
  });
});

describe("validateOptions, validateCompletionRequest, validateEmbedRequest", () => {
  it("accepts the range limits and rejects just past them", () => {
    expect(() =>
      validateOptions({ temperature: 0, topP: 1, presencePenalty: -2, frequencyPenalty: 2, maxTokens: 1, seed: -5 }),
    ).not.toThrow();
    expect(rejected(() => validateOptions({ presencePenalty: -2.01 })).param).toBe("presence_penalty");
    expect(rejected(() => validateOptions({ frequencyPenalty: Infinity })).param).toBe("frequency_penalty");
    expect(
      rejected(() => validateCompletionRequest({ model: "m", prompt: "p", options: { maxTokens: -1 } })).param,
    ).toBe("max_tokens");
  });

  it("checks embedding inputs", () => {
    expect(() => validateEmbedRequest({ model: "m", inputs: ["a"] })).not.toThrow();
    expect(rejected(() => validateEmbedRequest({ model: "m", inputs: [] })).param).toBe("input");
    expect(rejected(() => validateEmbedRequest({ model: "m", inputs: ["a", ""] })).param).toBe("input[1]");
    expect(rejected(() => validateEmbedRequest({ model: "m", inputs: new Array<string>(2049).fill("a") })).param).toBe(
      "input",
    );
  });
});

describe("response bodies", () => {
  const head = { id: "chatcmpl-1", model: "vllm/Qwen/Qwen3-8B", backend: "vllm", created: 1_700_000_000 };
  const usage = { promptTokens: 3, completionTokens: 2, totalTokens: 5 };

  it("renders tool calls with null content and reasoning as reasoning_content", () => {
    const body = chatCompletionBody({
      ...head,
      message: {
        role: "assistant",
        content: "",
        reasoning: "why",
        toolCalls: [{ id: "c1", name: "f", arguments: '{"a":1}' }],
      },
      finishReason: "tool_calls",
      usage,
    });
    expect(body).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion",
      created: 1_700_000_000,
      model: "vllm/Qwen/Qwen3-8B",
      choices: [
        {
          index: 0,
          message: {
            role: "assistant",
            content: null,
            refusal: null,
            reasoning_content: "why",
            tool_calls: [{ id: "c1", type: "function", function: { name: "f", arguments: '{"a":1}' } }],
          },
          finish_reason: "tool_calls",
          logprobs: null,
        },
      ],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
  });

  it("numbers streamed tool calls on from the calls already sent", () => {
    const calls = [
      { id: "a", name: "f", arguments: "{}" },
      { id: "b", name: "g", arguments: "{}" },
    ];
    expect(wireToolCalls(calls).map((c) => c.index)).toEqual([0, 1]);
    expect(wireToolCalls(calls, 2).map((c) => c.index)).toEqual([2, 3]);
    expect(wireToolCalls(calls, 2)[1]).toEqual({
      index: 3,
      id: "b",
      type: "function",
      function: { name: "g", arguments: "{}" },
    });
  });

  it("puts usage: null on chunks only when usage was asked for, and usage on a choice-less last chunk", () => {
    expect(chatChunk(head, { content: "x" }, null, false)).not.toHaveProperty("usage");
    expect(chatChunk(head, { content: "x" }, null, true)).toMatchObject({
      usage: null,
      choices: [{ index: 0, delta: { content: "x" }, finish_reason: null }],
    });
    expect(chatUsageChunk(head, usage)).toEqual({
      id: "chatcmpl-1",
      object: "chat.completion.chunk",
      created: 1_700_000_000,
      model: "vllm/Qwen/Qwen3-8B",
      choices: [],
      usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
    });
    expect(completionChunk(head, "tex", "length")).toMatchObject({
      object: "text_completion",
      choices: [{ index: 0, text: "tex", finish_reason: "length", logprobs: null }],
    });
  });
});
