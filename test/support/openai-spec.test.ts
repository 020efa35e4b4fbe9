import { describe, expect, it } from "vitest";
import { OPENAI_SCHEMAS, describeWithOpenAISpec, openaiValidator, parseSSE } from "./openai-spec.js";

const created = 1_732_240_000;

const chatCompletion = () => ({
  id: "chatcmpl-1",
  object: "chat.completion",
  created,
  model: "llama3.2",
  system_fingerprint: "fp_agentgate",
  choices: [
    {
      index: 0,
      message: { role: "assistant", content: "Hello.", refusal: null },
      logprobs: null,
      finish_reason: "stop",
    },
  ],
  usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
});

const toolCallCompletion = () => ({
  ...chatCompletion(),
  choices: [
    {
      index: 0,
      message: {
        role: "assistant",
        content: null,
        refusal: null,
        tool_calls: [
          { id: "call_1", type: "function", function: { name: "get_weather", arguments: '{"city":"Oslo"}' } },
        ],
      },
      logprobs: null,
      finish_reason: "tool_calls",
    },
  ],
});

const chunk = () => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  created,
  model: "llama3.2",
  choices: [{ index: 0, delta: { role: "assistant", content: "Hel" }, logprobs: null, finish_reason: null }],
});

const usageChunk = () => ({
  id: "chatcmpl-1",
  object: "chat.completion.chunk",
  created,
  model: "llama3.2",
  choices: [],
  usage: { prompt_tokens: 5, completion_tokens: 2, total_tokens: 7 },
});

const textCompletion = () => ({
  id: "cmpl-1",
  object: "text_completion",
  created,
  model: "llama3.2",
  choices: [{ index: 0, text: "once upon", logprobs: null, finish_reason: "length" }],
  usage: { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 },
});

const model = () => ({ id: "llama3.2", object: "model", created, owned_by: "ollama" });
const modelList = () => ({ object: "list", data: [model(), { ...model(), id: "qwen3" }] });

const embeddings = () => ({
  object: "list",
  model: "nomic-embed-text",
  data: [
    { object: "embedding", index: 0, embedding: [0.1, -0.2, 0.3] },
    { object: "embedding", index: 1, embedding: [0, 1, 0] },
  ],
  usage: { prompt_tokens: 4, total_tokens: 4 },
});

const errorBody = () => ({
  error: { message: "messages must not be empty", type: "invalid_request_error", param: "messages", code: null },
});

describeWithOpenAISpec("openai-spec validator self-test", () => {
  const v = {
    chat: openaiValidator(OPENAI_SCHEMAS.chatCompletion),
    chunk: openaiValidator(OPENAI_SCHEMAS.chatCompletionChunk),
    completion: openaiValidator(OPENAI_SCHEMAS.completion),
    models: openaiValidator(OPENAI_SCHEMAS.modelList),
    model: openaiValidator(OPENAI_SCHEMAS.model),
    embeddings: openaiValidator(OPENAI_SCHEMAS.embeddingList),
    error: openaiValidator(OPENAI_SCHEMAS.error),
  };

  describe("accepts known-good objects", () => {
    it.each([
      ["chat completion", v.chat, chatCompletion()],
      ["chat completion with tool calls", v.chat, toolCallCompletion()],
      ["first stream chunk (finish_reason null: nullable enum)", v.chunk, chunk()],
      ["final stream chunk", v.chunk, { ...chunk(), choices: [{ index: 0, delta: {}, finish_reason: "stop" }] }],
      ["include_usage chunk (empty choices)", v.chunk, usageChunk()],
      ["chunk with usage: null (nullable $ref)", v.chunk, { ...chunk(), usage: null }],
      [
        "tool-call delta chunk",
        v.chunk,
        {
          ...chunk(),
          choices: [
            {
              index: 0,
              delta: {
                tool_calls: [{ index: 0, id: "call_1", type: "function", function: { name: "f", arguments: "" } }],
              },
              finish_reason: null,
            },
          ],
        },
      ],
      ["text completion", v.completion, textCompletion()],
      ["legacy completion stream chunk (same object)", v.completion, { ...textCompletion(), usage: undefined }],
      ["model list", v.models, modelList()],
      ["empty model list", v.models, { object: "list", data: [] }],
      ["model", v.model, model()],
      ["embedding response", v.embeddings, embeddings()],
      ["error object", v.error, errorBody()],
      [
        "error object with string code",
        v.error,
        { error: { ...errorBody().error, code: "invalid_value", param: null } },
      ],
    ] as const)("%s", (_label, validate, value) => {
      expect(() => validate(value)).not.toThrow();
    });
  });

  describe("rejects bad objects", () => {
    const withChoice = (patch: Record<string, unknown>) => {
      const c = chatCompletion();
      return { ...c, choices: [{ ...c.choices[0], ...patch }] };
    };
    it.each([
      [
        "chat: missing choices",
        v.chat,
        (({ choices: _c, ...rest }) => rest)(chatCompletion()),
        /must have required property 'choices'/,
      ],
      [
        "chat: wrong object",
        v.chat,
        { ...chatCompletion(), object: "chat.completion.chunk" },
        /\/object: must be equal to one of the allowed values/,
      ],
      ["chat: finish_reason not in enum", v.chat, withChoice({ finish_reason: "done" }), /\/choices\/0\/finish_reason/],
      [
        "chat: finish_reason null in a final response",
        v.chat,
        withChoice({ finish_reason: null }),
        /\/choices\/0\/finish_reason/,
      ],
      ["chat: missing logprobs", v.chat, withChoice({ logprobs: undefined }), /required property 'logprobs'/],
      [
        "chat: role user in response",
        v.chat,
        withChoice({ message: { role: "user", content: "x", refusal: null } }),
        /\/choices\/0\/message\/role/,
      ],
      ["chat: created as string", v.chat, { ...chatCompletion(), created: "1732240000" }, /\/created: must be integer/],
      [
        "chat: created not a unixtime",
        v.chat,
        { ...chatCompletion(), created: -5 },
        /\/created: must match format "unixtime"/,
      ],
      [
        "chat: usage without total_tokens",
        v.chat,
        { ...chatCompletion(), usage: { prompt_tokens: 1, completion_tokens: 1 } },
        /\/usage: must have required property 'total_tokens'/,
      ],
      [
        "chat: tool call arguments as object (Ollama style, not stringified)",
        v.chat,
        (() => {
          const c = toolCallCompletion();
          c.choices[0].message.tool_calls[0].function.arguments = { city: "Oslo" } as unknown as string;
          return c;
        })(),
        /\/choices\/0\/message\/tool_calls\/0\/function\/arguments/,
      ],
      ["chunk: wrong object", v.chunk, { ...chunk(), object: "chat.completion" }, /\/object/],
      [
        "chunk: finish_reason not in enum",
        v.chunk,
        { ...chunk(), choices: [{ index: 0, delta: {}, finish_reason: "eos" }] },
        /finish_reason/,
      ],
      [
        "chunk: missing delta",
        v.chunk,
        { ...chunk(), choices: [{ index: 0, finish_reason: null }] },
        /required property 'delta'/,
      ],
      [
        "completion: finish_reason tool_calls",
        v.completion,
        { ...textCompletion(), choices: [{ ...textCompletion().choices[0], finish_reason: "tool_calls" }] },
        /finish_reason/,
      ],
      [
        "completion: missing text",
        v.completion,
        { ...textCompletion(), choices: [{ index: 0, logprobs: null, finish_reason: "stop" }] },
        /required property 'text'/,
      ],
      ['models: object "models"', v.models, { ...modelList(), object: "models" }, /\/object/],
      [
        "models: entry missing owned_by",
        v.models,
        { object: "list", data: [{ id: "x", object: "model", created }] },
        /\/data\/0: must have required property 'owned_by'/,
      ],
      ["model: created in milliseconds as float", v.model, { ...model(), created: 1.5 }, /\/created/],
      [
        "embeddings: vector of strings",
        v.embeddings,
        { ...embeddings(), data: [{ object: "embedding", index: 0, embedding: ["0.1"] }] },
        /\/data\/0\/embedding\/0: must be number/,
      ],
      [
        "embeddings: missing usage",
        v.embeddings,
        (({ usage: _u, ...rest }) => rest)(embeddings()),
        /required property 'usage'/,
      ],
      [
        "error: bare message without wrapper",
        v.error,
        { message: "x", type: "invalid_request_error" },
        /required property 'error'/,
      ],
      [
        "error: param omitted (must be present, may be null)",
        v.error,
        { error: { message: "x", type: "t", code: null } },
        /\/error: must have required property 'param'/,
      ],
      ["not an object at all", v.chat, "OK", /\(root\): must be object/],
    ] as const)("%s", (_label, validate, value, message) => {
      expect(() => validate(value)).toThrow(message);
    });

    it("error message lists every failing path and the schema name", () => {
      let message = "";
      try {
        v.chat({ ...withChoice({ finish_reason: "done" }), object: "nope" });
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toContain("CreateChatCompletionResponse");
      expect(message).toContain("/object");
      expect(message).toContain("/choices/0/finish_reason");
    });
  });

  it("names an unknown schema instead of compiling nothing", () => {
    expect(() => openaiValidator("CreateChatCompletionReply")({})).toThrow(/not in .*similar: .*CreateChatCompletion/);
  });
});

describe("parseSSE", () => {
  it("parses data events, [DONE], comments, event names and multi-line data", () => {
    const body =
      ": keep-alive\n\n" +
      'data: {"a":1}\n\n' +
      'event: error\ndata: {"error":{"message":"upstream failed"}}\n\n' +
      "data: line one\ndata: line two\r\n\r\n" +
      "data:no-space\rid: 7\rretry: 10\r\r" +
      "data: [DONE]\n\n";
    expect(parseSSE(body)).toEqual({
      events: [
        { data: '{"a":1}' },
        { event: "error", data: '{"error":{"message":"upstream failed"}}' },
        { data: "line one\nline two" },
        { data: "no-space" },
      ],
      done: true,
    });
  });

  it("reports a stream without [DONE] and drops an unterminated trailing event", () => {
    expect(parseSSE('data: {"a":1}\n\ndata: {"b":2}\n')).toEqual({ events: [{ data: '{"a":1}' }], done: false });
    expect(parseSSE('data: {"a":1}\n\ndata: [DONE]')).toEqual({ events: [{ data: '{"a":1}' }], done: false });
  });

  it("keeps an empty data field, ignores field-less blocks", () => {
    expect(parseSSE("data:\n\nevent: ping\n\n")).toEqual({ events: [{ data: "" }], done: false });
  });

  it("throws on an event after [DONE]", () => {
    expect(() => parseSSE('data: [DONE]\n\ndata: {"late":true}\n\n')).toThrow(/after data: \[DONE\]/);
  });
});
