/**
 * OpenAI REST shapes <-> the neutral completion types. Request bodies arrive
 * already schema-checked; the semantic rules both protocols share live in
 * completion/validate.ts.
 */
import { invalidArgument } from "../../errors/gateway-error.js";
import type { ChatResult, StreamHead, TextResult } from "../../completion/completion-gateway.js";
import type {
  ChatMessage,
  ChatRequest,
  CompletionRequest as DomainCompletionRequest,
  FinishReason,
  GenerationOptions,
  ModelInfo,
  ReasoningEffort,
  ResponseFormat,
  ToolCall,
  ToolChoice,
  Usage,
} from "../../completion/types.js";
import type { ChatCompletionRequest, CompletionRequest } from "./schemas.js";

type WireMessage = ChatCompletionRequest["messages"][number];

function contentOf(m: WireMessage, i: number): { text: string; images: string[] } {
  const c = m.content;
  if (c === undefined || c === null) return { text: "", images: [] };
  if (typeof c === "string") return { text: c, images: [] };
  const texts: string[] = [];
  const images: string[] = [];
  c.forEach((part, j) => {
    if (part.type === "text") texts.push(part.text);
    else {
      const match = /^data:image\/[a-z0-9.+-]+;base64,([A-Za-z0-9+/=\s]+)$/i.exec(part.image_url.url);
      if (!match) {
        throw invalidArgument(
          "image_url must be a data: URL with base64 image data; remote image URLs are not fetched",
          `messages[${i}].content[${j}].image_url.url`,
        );
      }
      images.push(match[1]!.replace(/\s+/g, ""));
    }
  });
  return { text: texts.join("\n"), images };
}

export function toDomainMessages(messages: WireMessage[]): ChatMessage[] {
  return messages.map((m, i) => {
    const { text, images } = contentOf(m, i);
    const out: ChatMessage = { role: m.role === "developer" ? "system" : m.role, content: text };
    if (images.length) out.images = images;
    if (m.name) out.name = m.name;
    if (m.tool_call_id) out.toolCallId = m.tool_call_id;
    if (m.reasoning_content) out.reasoning = m.reasoning_content;
    if (m.tool_calls?.length) {
      out.toolCalls = m.tool_calls.map((tc) => ({
        id: tc.id,
        name: tc.function.name,
        arguments: tc.function.arguments,
      }));
    }
    return out;
  });
}

function stopList(stop: string | string[] | null | undefined): string[] | undefined {
  if (stop === undefined || stop === null) return undefined;
  return typeof stop === "string" ? [stop] : stop;
}

function options(
  b: {
    temperature?: number | null;
    top_p?: number | null;
    max_tokens?: number | null;
    stop?: string | string[] | null;
    seed?: number | null;
    presence_penalty?: number | null;
    frequency_penalty?: number | null;
    top_k?: number;
    num_ctx?: number;
  },
  maxTokens: number | null | undefined,
): GenerationOptions {
  const o: GenerationOptions = {};
  if (b.temperature != null) o.temperature = b.temperature;
  if (b.top_p != null) o.topP = b.top_p;
  if (maxTokens != null) o.maxTokens = maxTokens;
  const stop = stopList(b.stop);
  if (stop) o.stop = stop;
  if (b.seed != null) o.seed = b.seed;
  if (b.presence_penalty != null) o.presencePenalty = b.presence_penalty;
  if (b.frequency_penalty != null) o.frequencyPenalty = b.frequency_penalty;
  if (b.top_k != null) o.topK = b.top_k;
  if (b.num_ctx != null) o.contextWindow = b.num_ctx;
  return o;
}

export function toDomainChat(b: ChatCompletionRequest): ChatRequest {
  if (b.logprobs)
    throw invalidArgument("logprobs are not supported by this gateway", "logprobs", "unsupported_parameter");
  const req: ChatRequest = {
    model: b.model,
    messages: toDomainMessages(b.messages),
    options: options(b, b.max_completion_tokens ?? b.max_tokens),
  };
  if (b.tools?.length) {
    req.tools = b.tools.map((t) => ({
      name: t.function.name,
      description: t.function.description,
      parameters: t.function.parameters as Record<string, unknown> | undefined,
      strict: t.function.strict ?? undefined,
    }));
  }
  if (b.tool_choice !== undefined) {
    req.toolChoice = (
      typeof b.tool_choice === "string" ? b.tool_choice : { name: b.tool_choice.function.name }
    ) as ToolChoice;
  }
  if (b.response_format) {
    const f = b.response_format;
    req.responseFormat = (
      f.type === "json_schema"
        ? {
            type: "json_schema",
            schema: f.json_schema.schema ?? {},
            name: f.json_schema.name,
            strict: f.json_schema.strict ?? undefined,
          }
        : { type: f.type }
    ) as ResponseFormat;
  }
  if (b.reasoning_effort) req.reasoningEffort = toReasoningEffort(b.reasoning_effort);
  if (b.conversation_id) req.conversationId = b.conversation_id;
  return req;
}

/** OpenAI's effort levels onto the four a local model can tell apart. */
export function toReasoningEffort(effort: string): ReasoningEffort {
  if (effort === "none") return "none";
  if (effort === "minimal") return "low";
  if (effort === "xhigh") return "high";
  return effort as ReasoningEffort;
}

export function toDomainCompletion(b: CompletionRequest): DomainCompletionRequest {
  if (b.echo) throw invalidArgument("echo is not supported by this gateway", "echo", "unsupported_parameter");
  return {
    model: b.model,
    prompt: typeof b.prompt === "string" ? b.prompt : b.prompt[0]!,
    suffix: b.suffix ?? undefined,
    raw: b.raw,
    options: options(b, b.max_tokens),
  };
}

export function wireUsage(u: Usage) {
  return { prompt_tokens: u.promptTokens, completion_tokens: u.completionTokens, total_tokens: u.totalTokens };
}

/** Stream deltas of tool calls; `first` is the number of calls already sent in this stream (indexes never repeat). */
export function wireToolCalls(calls: ToolCall[], first = 0) {
  return calls.map((tc, i) => ({
    index: first + i,
    id: tc.id,
    type: "function" as const,
    function: { name: tc.name, arguments: tc.arguments },
  }));
}

export function chatCompletionBody(r: ChatResult) {
  const message: Record<string, unknown> = { role: "assistant", content: r.message.content, refusal: null };
  if (r.message.toolCalls?.length) {
    message.tool_calls = r.message.toolCalls.map((tc) => ({
      id: tc.id,
      type: "function",
      function: { name: tc.name, arguments: tc.arguments },
    }));
    if (!r.message.content) message.content = null;
  }
  if (r.message.reasoning) message.reasoning_content = r.message.reasoning;
  return {
    id: r.id,
    object: "chat.completion" as const,
    created: r.created,
    model: r.model,
    choices: [{ index: 0, message, finish_reason: r.finishReason, logprobs: null }],
    usage: wireUsage(r.usage),
  };
}

/** One chat.completion.chunk; `usage` is null on every chunk but the usage chunk. */
export function chatChunk(
  head: StreamHead,
  delta: Record<string, unknown>,
  finishReason: FinishReason | null,
  includeUsage: boolean,
) {
  const chunk: Record<string, unknown> = {
    id: head.id,
    object: "chat.completion.chunk",
    created: head.created,
    model: head.model,
    choices: [{ index: 0, delta, finish_reason: finishReason, logprobs: null }],
  };
  if (includeUsage) chunk.usage = null;
  return chunk;
}

export function chatUsageChunk(head: StreamHead, usage: Usage) {
  return {
    id: head.id,
    object: "chat.completion.chunk",
    created: head.created,
    model: head.model,
    choices: [],
    usage: wireUsage(usage),
  };
}

export function completionBody(r: TextResult) {
  return {
    id: r.id,
    object: "text_completion" as const,
    created: r.created,
    model: r.model,
    choices: [{ index: 0, text: r.text, finish_reason: r.finishReason, logprobs: null }],
    usage: wireUsage(r.usage),
  };
}

/** Legacy completions stream chunks are text_completion objects. */
export function completionChunk(head: StreamHead, text: string, finishReason: FinishReason | null) {
  return {
    id: head.id,
    object: "text_completion",
    created: head.created,
    model: head.model,
    choices: [{ index: 0, text, finish_reason: finishReason, logprobs: null }],
  };
}

export function modelObject(m: ModelInfo) {
  return { id: m.id, object: "model" as const, created: m.created, owned_by: m.ownedBy };
}
