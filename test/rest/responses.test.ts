/**
 * POST /v1/responses against a real gateway in front of the Ollama double: the official `openai`
 * SDK (responses.create and responses.stream), Codex-shaped requests (namespace, custom and hosted
 * tools, replayed reasoning and tool items), heartbeats, faults, and every streamed event checked
 * against the OpenAI OpenAPI document's Responses schemas.
 */
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startOpenAIUpstreamDouble } from "../doubles/openai-upstream-double.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import { describeWithOpenAISpec, openaiValidator, parseSSE } from "../support/openai-spec.js";

type Body = Record<string, any>;

let h: GatewayHarness;
let client: OpenAI;

beforeAll(async () => {
  h = await startGateway({ env: { MODEL: "qwen3:8b", RESPONSES_HEARTBEAT_MS: "150" } });
  client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: "x", maxRetries: 0, timeout: 10_000 });
});

afterAll(async () => {
  await h?.close();
});

beforeEach(() => {
  h.ollama.reset();
});

const chatBodies = (): Body[] => h.ollama.requests.filter((r) => r.path === "/api/chat").map((r) => r.body as Body);

/** POSTs raw JSON and returns the status, the parsed SSE events (or JSON body) and the raw text. */
async function post(body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${h.url}/v1/responses`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  const isSse = (res.headers.get("content-type") ?? "").startsWith("text/event-stream");
  const sse = isSse ? parseSSE(text) : undefined;
  const events: Body[] = sse ? sse.events.map((e) => ({ event: e.event, ...(JSON.parse(e.data) as Body) })) : [];
  return {
    status: res.status,
    text,
    events,
    done: sse?.done ?? false,
    json: isSse ? undefined : (JSON.parse(text) as Body),
  };
}

const codexTools = [
  {
    type: "function",
    name: "exec_command",
    description: "Runs a command",
    parameters: { type: "object", properties: { cmd: { type: "string" } }, required: ["cmd"] },
    strict: false,
  },
  {
    type: "namespace",
    name: "multi_agent_v1",
    description: "Sub-agents",
    tools: [{ type: "function", name: "spawn_agent", parameters: { type: "object", properties: {} } }],
  },
  {
    type: "custom",
    name: "apply_patch",
    description: "Edit files with a patch",
    format: { type: "grammar", syntax: "lark", definition: 'start: "*** Begin Patch" LF hunk+ "*** End Patch"' },
  },
  { type: "web_search", external_web_access: false },
  { type: "tool_search", execution: "client" },
];

describe("the openai SDK", () => {
  it("responses.create answers text with usage, an id and the instructions as a system message", async () => {
    h.ollama.enqueue({ content: ["Hello", ", world"], promptEvalCount: 12, evalCount: 5 });
    const res = await client.responses.create({ model: "qwen3:8b", instructions: "Be brief.", input: "Say hello" });
    expect(res.id).toMatch(/^resp_/);
    expect(res.status).toBe("completed");
    expect(res.output_text).toBe("Hello, world");
    expect(res.usage).toMatchObject({ input_tokens: 12, output_tokens: 5, total_tokens: 17 });
    expect(chatBodies()[0]!.messages).toEqual([
      { role: "system", content: "Be brief." },
      { role: "user", content: "Say hello" },
    ]);
  });

  it("responses.stream yields deltas and a final response built from the events", async () => {
    h.ollama.enqueue({ thinking: ["Let me ", "think."], content: ["Four", "."], promptEvalCount: 3, evalCount: 4 });
    const stream = client.responses.stream({ model: "qwen3:8b", input: "2+2?", reasoning: { effort: "low" } });
    const deltas: string[] = [];
    stream.on("response.output_text.delta", (e) => deltas.push(e.delta));
    const final = await stream.finalResponse();
    expect(deltas.join("")).toBe("Four.");
    expect(final.output_text).toBe("Four.");
    expect(final.output.map((o) => o.type)).toEqual(["reasoning", "message"]);
    const reasoning = final.output[0] as Body;
    expect(reasoning.content).toEqual([{ type: "reasoning_text", text: "Let me think." }]);
    expect(final.usage?.total_tokens).toBe(7);
    expect(chatBodies()[0]!.think).toBe(true);
  });

  it("a function call comes back with a call_id and string arguments, and its output round-trips", async () => {
    h.ollama.enqueue({ toolCalls: [{ name: "get_weather", arguments: { city: "Paris" } }] });
    const tools = [
      {
        type: "function" as const,
        name: "get_weather",
        parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
        strict: false,
      },
    ];
    const first = await client.responses.create({ model: "qwen3:8b", input: "Weather in Paris?", tools });
    const call = first.output[0] as Body;
    expect(call).toMatchObject({ type: "function_call", name: "get_weather", arguments: '{"city":"Paris"}' });
    expect(call.call_id).toMatch(/\S/);

    h.ollama.enqueue({ content: ["Sunny."] });
    const second = await client.responses.create({
      model: "qwen3:8b",
      tools,
      input: [
        { role: "user", content: "Weather in Paris?" },
        { type: "function_call", call_id: call.call_id, name: "get_weather", arguments: call.arguments },
        { type: "function_call_output", call_id: call.call_id, output: "22C, sunny" },
      ],
    });
    expect(second.output_text).toBe("Sunny.");
    const messages = chatBodies()[1]!.messages as Body[];
    expect(messages[1]).toMatchObject({
      role: "assistant",
      tool_calls: [{ function: { name: "get_weather", arguments: { city: "Paris" } } }],
    });
    expect(messages[2]).toEqual({ role: "tool", content: "22C, sunny", tool_name: "get_weather" });
  });
});

describe("Codex-shaped requests", () => {
  it("expands namespace tools, shows custom tools as one-string functions and drops hosted tools", async () => {
    h.ollama.enqueue({ content: ["ok"] });
    const r = await post({
      model: "qwen3:8b",
      input: [{ role: "user", content: "hi" }],
      tools: codexTools,
      stream: true,
    });
    expect(r.status).toBe(200);
    const tools = chatBodies()[0]!.tools as Body[];
    expect(tools.map((t) => t.function.name)).toEqual(["exec_command", "multi_agent_v1__spawn_agent", "apply_patch"]);
    const patch = tools[2]!.function;
    expect(patch.parameters).toEqual({
      type: "object",
      properties: { input: { type: "string", description: "The tool's complete input" } },
      required: ["input"],
    });
    expect(patch.description).toContain("*** Begin Patch");
    const note = h.logs.find((l) => Array.isArray(l.notes));
    expect(JSON.stringify(note?.notes)).toContain("web_search, tool_search");
  });

  it("turns calls back into custom_tool_call and namespaced function_call items, each committed by output_item.done", async () => {
    const patch = "*** Begin Patch\n*** Add File: hello.txt\n+hi\n*** End Patch\n";
    h.ollama.enqueue({
      toolCalls: [
        { name: "apply_patch", arguments: { input: patch } },
        { name: "multi_agent_v1__spawn_agent", arguments: {} },
      ],
    });
    const r = await post({ model: "qwen3:8b", input: "edit", tools: codexTools, stream: true });
    const done = r.events.filter((e) => e.type === "response.output_item.done").map((e) => e.item as Body);
    expect(done[0]).toMatchObject({ type: "custom_tool_call", name: "apply_patch", input: patch });
    expect(done[0]!.call_id).toMatch(/\S/);
    expect(done[1]).toMatchObject({
      type: "function_call",
      namespace: "multi_agent_v1",
      name: "spawn_agent",
      arguments: "{}",
    });
    const completed = r.events.at(-1)!;
    expect(completed.type).toBe("response.completed");
    expect(completed.response.id).toMatch(/^resp_/);
    expect(completed.response.usage).toMatchObject({
      input_tokens: expect.any(Number),
      total_tokens: expect.any(Number),
    });
    expect(r.done).toBe(false); // the Responses API ends without [DONE]
  });

  it("replays reasoning, messages, custom tool calls and array outputs as one assistant turn each", async () => {
    h.ollama.enqueue({ content: ["done"] });
    const r = await post({
      model: "qwen3:8b",
      stream: true,
      tools: codexTools,
      input: [
        { type: "message", id: "msg_1", role: "developer", content: [{ type: "input_text", text: "base" }] },
        { type: "message", role: "user", content: [{ type: "input_text", text: "make a file" }] },
        {
          type: "reasoning",
          id: "rs_1",
          summary: [],
          content: [{ type: "reasoning_text", text: "plan" }],
          encrypted_content: null,
        },
        { type: "custom_tool_call", call_id: "c1", name: "apply_patch", input: "*** Begin Patch\n*** End Patch" },
        { type: "custom_tool_call_output", id: "ctco_1", call_id: "c1", output: "Success" },
        { type: "function_call", call_id: "c2", name: "exec_command", arguments: "{not json" },
        {
          type: "function_call_output",
          id: "fco_1",
          call_id: "c2",
          output: [
            { type: "input_text", text: "a" },
            { type: "input_text", text: "b" },
          ],
        },
        { type: "web_search_call", id: "ws_1", status: "completed" },
      ],
    });
    expect(r.status).toBe(200);
    expect(chatBodies()[0]!.messages).toEqual([
      { role: "system", content: "base" },
      { role: "user", content: "make a file" },
      {
        role: "assistant",
        content: "",
        thinking: "plan",
        tool_calls: [{ function: { name: "apply_patch", arguments: { input: "*** Begin Patch\n*** End Patch" } } }],
      },
      { role: "tool", content: "Success", tool_name: "apply_patch" },
      {
        role: "assistant",
        content: "",
        tool_calls: [{ function: { name: "exec_command", arguments: { unparsed_arguments: "{not json" } } }],
      },
      { role: "tool", content: "a\nb", tool_name: "exec_command" },
    ]);
  });

  it("passes a model's malformed arguments on as written, so the client can tell the model", async () => {
    h.ollama.enqueue({ toolCalls: [{ name: "exec_command", arguments: '{"cmd": "ls' }] });
    const r = await post({ model: "qwen3:8b", input: "list", tools: codexTools, stream: true });
    const item = r.events.find((e) => e.type === "response.output_item.done")!.item as Body;
    expect(item).toMatchObject({ type: "function_call", name: "exec_command", arguments: '{"cmd": "ls' });
    expect(r.events.at(-1)!.type).toBe("response.completed");
  });

  it("keeps a silent upstream's stream alive with JSON response.in_progress events", async () => {
    h.ollama.enqueue({ content: ["late"], firstByteDelayMs: 700 });
    const r = await post({ model: "qwen3:8b", input: "slow", stream: true });
    const types = r.events.map((e) => e.type);
    const firstDelta = types.indexOf("response.output_text.delta");
    const beats = types.slice(2, firstDelta).filter((t) => t === "response.in_progress");
    expect(beats.length).toBeGreaterThanOrEqual(2);
    expect(types.at(-1)).toBe("response.completed");
    expect(r.text).not.toMatch(/^:/m); // no SSE comments: they do not reset Codex's idle timer
  });

  it("reports a length stop as response.incomplete", async () => {
    h.ollama.enqueue({ content: ["trunc"], doneReason: "length" });
    const r = await post({ model: "qwen3:8b", input: "long", stream: true, max_output_tokens: 1 });
    expect(r.events.at(-1)).toMatchObject({
      type: "response.incomplete",
      response: { status: "incomplete", incomplete_details: { reason: "max_output_tokens" } },
    });
    expect(chatBodies()[0]!.options.num_predict).toBe(1);
  });
});

describe("failures", () => {
  it("a failure mid-stream ends with response.failed, never a bare error event", async () => {
    h.ollama.enqueue({ content: ["a", "b", "c"], midStreamError: { afterChunks: 2, message: "model crashed" } });
    const r = await post({ model: "qwen3:8b", input: "x", stream: true });
    expect(r.status).toBe(200);
    const last = r.events.at(-1)!;
    expect(last.type).toBe("response.failed");
    expect(last.response.status).toBe("failed");
    expect(last.response.error.code).toBe("server_error");
    expect(last.response.error.message).toContain("model crashed");
    expect(r.events.some((e) => e.type === "error")).toBe(false);
    expect(r.done).toBe(false);
  });

  it("an unknown model is a 404 for SDK clients and a 400 for Codex (which retries anything else)", async () => {
    const sdk = await post({ model: "nope:1b", input: "x", stream: true });
    expect(sdk.status).toBe(404);
    expect(sdk.json!.error.code).toBe("model_not_found");
    const codex = await post({ model: "nope:1b", input: "x", stream: true }, { originator: "codex_exec" });
    expect(codex.status).toBe(400);
    expect(codex.json!.error).toMatchObject({ code: "model_not_found", type: "invalid_request_error" });
  });

  it("an upstream that is down is a clear, non-retried failure for Codex", async () => {
    await h.ollama.down();
    try {
      const codex = await post({ model: "qwen3:8b", input: "x", stream: true }, { originator: "codex_exec" });
      expect(codex.status).toBe(400);
      expect(codex.json!.error.message).toMatch(/unreachable/);
      const sdk = await post({ model: "qwen3:8b", input: "x", stream: true });
      expect(sdk.status).toBe(503);
    } finally {
      await h.ollama.up();
    }
  });

  it("rejects what a stateless gateway cannot do, naming the field", async () => {
    const prev = await post({ model: "qwen3:8b", input: "x", previous_response_id: "resp_1" });
    expect(prev.status).toBe(400);
    expect(prev.json!.error).toMatchObject({ param: "previous_response_id", code: "unsupported_parameter" });
    const badRole = await post({ model: "qwen3:8b", input: [{ type: "message", role: "robot", content: "x" }] });
    expect(badRole.status).toBe(400);
    expect(badRole.json!.error.param).toBe("input[0].role");
    const badPart = await post({
      model: "qwen3:8b",
      input: [{ role: "user", content: [{ type: "input_file", file_id: "f" }] }],
    });
    expect(badPart.status).toBe(400);
    expect(badPart.json!.error.param).toBe("input[0].content[0].type");
    const noInput = await post({ model: "qwen3:8b" });
    expect(noInput.status).toBe(400);
    const get = await fetch(`${h.url}/v1/responses/resp_123`);
    expect(get.status).toBe(404);
  });

  it("the client going away cancels the upstream", async () => {
    h.ollama.enqueue({ content: ["a", "b"], hang: { afterChunks: 1 } });
    const controller = new AbortController();
    const res = await fetch(`${h.url}/v1/responses`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ model: "qwen3:8b", input: "x", stream: true }),
      signal: controller.signal,
    });
    const reader = res.body!.getReader();
    await reader.read();
    controller.abort();
    const aborted = await h.ollama.waitForAbort(2_000);
    expect(aborted.path).toBe("/api/chat");
  });
});

describe("an OpenAI-compatible upstream behind /v1/responses", () => {
  it("translates to its chat completions: tools as functions, calls back as Responses items", async () => {
    const vllm = await startOpenAIUpstreamDouble();
    const g = await startGateway({ env: { BACKENDS: `vllm=${vllm.url}/v1` }, ollama: h.ollama });
    try {
      vllm.enqueue({ toolCalls: [{ name: "apply_patch", arguments: { input: "*** Begin Patch\n*** End Patch" } }] });
      const sdk = new OpenAI({ baseURL: `${g.url}/v1`, apiKey: "x", maxRetries: 0 });
      const res = await sdk.responses.create({
        model: "vllm/Qwen/Qwen3-8B",
        input: "patch it",
        tools: [{ type: "custom", name: "apply_patch", description: "Edit files" }],
        reasoning: { effort: "high" },
      });
      expect(res.output[0]).toMatchObject({
        type: "custom_tool_call",
        name: "apply_patch",
        input: "*** Begin Patch\n*** End Patch",
      });
      const sent = vllm.requests.find((r) => r.path === "/v1/chat/completions")!.body as Body;
      expect(sent.model).toBe("Qwen/Qwen3-8B");
      expect(sent.reasoning_effort).toBe("high");
      expect(sent.tools[0].function.name).toBe("apply_patch");
      expect(sent.tools[0].function.parameters.required).toEqual(["input"]);
    } finally {
      await g.close();
      await vllm.close();
    }
  });
});

describeWithOpenAISpec("Responses stream events against the OpenAI schemas", () => {
  // One schema per event type (validating against the 58-way union buries the real error).
  const schemaOf: Record<string, string> = {
    "response.created": "ResponseCreatedEvent",
    "response.in_progress": "ResponseInProgressEvent",
    "response.output_item.added": "ResponseOutputItemAddedEvent",
    "response.output_item.done": "ResponseOutputItemDoneEvent",
    "response.content_part.added": "ResponseContentPartAddedEvent",
    "response.content_part.done": "ResponseContentPartDoneEvent",
    "response.output_text.delta": "ResponseTextDeltaEvent",
    "response.output_text.done": "ResponseTextDoneEvent",
    "response.reasoning_text.delta": "ResponseReasoningTextDeltaEvent",
    "response.reasoning_text.done": "ResponseReasoningTextDoneEvent",
    "response.function_call_arguments.delta": "ResponseFunctionCallArgumentsDeltaEvent",
    "response.function_call_arguments.done": "ResponseFunctionCallArgumentsDoneEvent",
    "response.custom_tool_call_input.delta": "ResponseCustomToolCallInputDeltaEvent",
    "response.custom_tool_call_input.done": "ResponseCustomToolCallInputDoneEvent",
    "response.completed": "ResponseCompletedEvent",
    "response.incomplete": "ResponseIncompleteEvent",
    "response.failed": "ResponseFailedEvent",
  };
  const validateEvent = (e: Body) => {
    const name = schemaOf[e.type as string];
    expect(name, `no schema mapped for ${e.type}`).toBeDefined();
    openaiValidator(name!)(e);
  };
  const validateResponse = openaiValidator("Response");

  it("every event of text, reasoning, tool-call, heartbeat, incomplete and failed streams validates", async () => {
    const scripts = [
      { thinking: ["hm"], content: ["Hi", "!"] },
      {
        toolCalls: [
          { name: "get_weather", arguments: { city: "Oslo" } },
          { name: "apply_patch", arguments: { input: "*** Begin Patch\n*** End Patch" } },
        ],
      },
      { content: ["late"], firstByteDelayMs: 400 },
      { content: ["x"], doneReason: "length" },
      { content: ["a", "b"], midStreamError: { afterChunks: 1, message: "boom" } },
    ];
    const tools = [
      { type: "function", name: "get_weather", parameters: { type: "object", properties: {} }, strict: false },
      { type: "custom", name: "apply_patch", description: "patch" },
    ];
    let count = 0;
    for (const script of scripts) {
      h.ollama.enqueue(script);
      const r = await post({ model: "qwen3:8b", input: "x", tools, stream: true });
      r.events.forEach((e, i) => {
        const { event, ...data } = e;
        expect(event).toBe(data.type);
        expect(data.sequence_number).toBe(i);
        validateEvent(data);
        count++;
      });
    }
    expect(count).toBeGreaterThan(30);
  });

  it("the non-streaming Response validates", async () => {
    h.ollama.enqueue({ thinking: ["t"], content: ["answer"] });
    const r = await post({ model: "qwen3:8b", input: "x", instructions: "sys", temperature: 0.2 });
    expect(r.status).toBe(200);
    validateResponse(r.json);
  });
});
