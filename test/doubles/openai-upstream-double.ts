/**
 * A smaller double of an OpenAI-compatible upstream (vLLM, LiteLLM, llama.cpp server): /v1/models,
 * /v1/chat/completions, /v1/completions and /v1/embeddings, non-streaming and SSE. Shares recording,
 * scripting, aborts and lifecycle with the Ollama double (double-server.ts), so a ReplyScript means
 * the same thing here; only the wire format differs. Streamed tool calls are sent the OpenAI way:
 * a first delta with id/name and empty arguments, then argument fragments addressed by `index`.
 */
import {
  DoubleServer,
  estimateTokens,
  hashEmbedding,
  isRecord,
  play,
  toolCallId,
  withEcho,
  type DoubleServerOptions,
  type Exchange,
  type ReplyPlan,
  type ReplyScript,
} from "./double-server.js";

export type { RecordedRequest, ReplyScript, ScriptToolCall, StopPoint } from "./double-server.js";

export interface OpenAIUpstreamDoubleOptions extends DoubleServerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  /** Model ids served; any other id gets 404 model_not_found. */
  models?: readonly string[];
  ownedBy?: string;
  /** When set, every request needs `Authorization: Bearer <apiKey>`. */
  apiKey?: string;
  /** Length of the embedding vectors unless the request asks for fewer `dimensions`. */
  embeddingDimensions?: number;
}

export const DEFAULT_OPENAI_MODELS: readonly string[] = ["Qwen/Qwen3-8B", "BAAI/bge-small-en-v1.5"];

const SSE = "text/event-stream; charset=utf-8";
const DONE = "data: [DONE]\n\n";
/** Fixed so that /v1/models is stable across runs. */
const MODELS_CREATED = 1_735_689_600;

type Body = Record<string, unknown>;
type ErrorType = "invalid_request_error" | "authentication_error" | "rate_limit_error" | "server_error";

export class OpenAIUpstreamDouble extends DoubleServer {
  readonly models: readonly string[];
  private readonly ownedBy: string;
  private readonly apiKey: string | undefined;
  private readonly dimensions: number;
  private replies = 0;

  constructor(options: OpenAIUpstreamDoubleOptions = {}) {
    super(options);
    this.models = options.models ?? DEFAULT_OPENAI_MODELS;
    this.ownedBy = options.ownedBy ?? "vllm";
    this.apiKey = options.apiKey;
    this.dimensions = options.embeddingDimensions ?? 384;
  }

  override reset(): void {
    super.reset();
    this.replies = 0;
  }

  protected handle(ex: Exchange): Promise<void> | void {
    if (this.apiKey !== undefined && ex.req.headers.authorization !== `Bearer ${this.apiKey}`) {
      return fail(ex, 401, "Incorrect API key provided.", { type: "authentication_error", code: "invalid_api_key" });
    }
    const { method, path } = ex.record;
    if (method === "GET" && path === "/v1/models") {
      return ex.json(200, { object: "list", data: this.models.map((id) => this.modelObject(id)) });
    }
    if (method === "GET" && path.startsWith("/v1/models/")) {
      const id = decodeURIComponent(path.slice("/v1/models/".length));
      return this.models.includes(id) ? ex.json(200, this.modelObject(id)) : modelNotFound(ex, id);
    }
    if (method === "POST" && path === "/v1/chat/completions") return this.chat(ex);
    if (method === "POST" && path === "/v1/completions") return this.completions(ex);
    if (method === "POST" && path === "/v1/embeddings") return this.embeddings(ex);
    return fail(ex, 404, `Unknown request URL: ${method} ${path}. Please check the URL for typos.`, {
      code: "unknown_url",
    });
  }

  private modelObject(id: string): Body {
    return { id, object: "model", created: MODELS_CREATED, owned_by: this.ownedBy };
  }

  /** The body and a served model, or undefined after answering with the error. */
  private request(ex: Exchange): { body: Body; model: string } | undefined {
    if (ex.bodyError !== undefined || !isRecord(ex.body)) {
      return void fail(
        ex,
        400,
        "We could not parse the JSON body of your request. The OpenAI API expects a JSON payload.",
      );
    }
    const model = ex.body.model;
    if (typeof model !== "string" || model === "")
      return void fail(ex, 400, "you must provide a model parameter", { param: "model" });
    if (!this.models.includes(model)) return void modelNotFound(ex, model);
    return { body: ex.body, model };
  }

  private chat(ex: Exchange): Promise<void> | void {
    const request = this.request(ex);
    if (!request) return;
    const { body, model } = request;
    if (!Array.isArray(body.messages) || body.messages.length === 0) {
      return fail(ex, 400, `${JSON.stringify(body.messages ?? null)} is too short - 'messages'`, { param: "messages" });
    }
    const messages = body.messages.filter(isRecord).map((m) => ({ role: m.role, text: textOf(m.content) }));
    const lastUser = messages.filter((m) => m.role === "user").at(-1)?.text ?? "";
    const script = withEcho(this.nextScript(), lastUser, maxTokens(body));
    const prompt = messages.map((m) => m.text).join("\n");
    return play(ex, script, this.chatPlan(model, body, script, prompt));
  }

  private chatPlan(model: string, body: Body, script: ReplyScript, prompt: string): ReplyPlan {
    const id = `chatcmpl-${++this.replies}`;
    const created = Math.floor(Date.now() / 1000);
    const includeUsage = wantsUsage(body);
    const thinking = script.thinking ?? [];
    const content = script.content ?? [];
    const calls = (script.toolCalls ?? []).map((call, index) => ({
      id: call.id ?? toolCallId(`${id}:${index}:${call.name}`),
      type: "function" as const,
      function: { name: call.name, arguments: JSON.stringify(call.arguments) },
    }));
    const finishReason = calls.length > 0 ? "tool_calls" : (script.doneReason ?? "stop");
    const usage = usageOf(script, prompt, thinking.length + content.length + calls.length);
    const chunk = (choices: Body[], extra: Body = {}): string =>
      sse({
        id,
        object: "chat.completion.chunk",
        created,
        model,
        system_fingerprint: null,
        choices,
        ...(includeUsage ? { usage: null } : {}),
        ...extra,
      });
    const delta = (d: Body, finish: string | null = null): string =>
      chunk([{ index: 0, delta: d, logprobs: null, finish_reason: finish }]);
    const frames = [
      delta({ role: "assistant", content: "" }),
      ...thinking.map((t) => delta({ reasoning_content: t })),
      ...content.map((c) => delta({ content: c })),
      ...calls.flatMap((call, index) => [
        delta({
          tool_calls: [{ index, id: call.id, type: "function", function: { name: call.function.name, arguments: "" } }],
        }),
        ...fragments(call.function.arguments).map((f) =>
          delta({ tool_calls: [{ index, function: { arguments: f } }] }),
        ),
      ]),
    ];
    const message: Body = {
      role: "assistant",
      content: content.length > 0 || calls.length === 0 ? content.join("") : null,
      refusal: null,
      ...(thinking.length > 0 ? { reasoning_content: thinking.join("") } : {}),
      ...(calls.length > 0 ? { tool_calls: calls } : {}),
    };
    return {
      stream: body.stream === true,
      contentType: SSE,
      frames,
      tail: () => delta({}, finishReason) + (includeUsage ? chunk([], { usage }) : "") + DONE,
      body: () => ({
        id,
        object: "chat.completion",
        created,
        model,
        system_fingerprint: null,
        choices: [{ index: 0, message, logprobs: null, finish_reason: finishReason }],
        usage,
      }),
      errorBody,
      errorFrame: streamError,
    };
  }

  private completions(ex: Exchange): Promise<void> | void {
    const request = this.request(ex);
    if (!request) return;
    const { body, model } = request;
    const prompt = Array.isArray(body.prompt) ? body.prompt[0] : body.prompt;
    if (typeof prompt !== "string") return fail(ex, 400, "you must provide a prompt parameter", { param: "prompt" });
    const script = withEcho(this.nextScript(), prompt, maxTokens(body));
    const id = `cmpl-${++this.replies}`;
    const created = Math.floor(Date.now() / 1000);
    const content = script.content ?? [];
    const finishReason = script.doneReason ?? "stop";
    const usage = usageOf(script, prompt, content.length);
    const includeUsage = wantsUsage(body);
    const chunk = (choices: Body[], extra: Body = {}): string =>
      sse({
        id,
        object: "text_completion",
        created,
        model,
        choices,
        ...(includeUsage ? { usage: null } : {}),
        ...extra,
      });
    const choice = (text: string, finish: string | null): Body => ({
      index: 0,
      text,
      logprobs: null,
      finish_reason: finish,
    });
    return play(ex, script, {
      stream: body.stream === true,
      contentType: SSE,
      frames: content.map((c) => chunk([choice(c, null)])),
      tail: () => chunk([choice("", finishReason)]) + (includeUsage ? chunk([], { usage }) : "") + DONE,
      body: () => ({
        id,
        object: "text_completion",
        created,
        model,
        choices: [choice(content.join(""), finishReason)],
        usage,
      }),
      errorBody,
      errorFrame: streamError,
    });
  }

  private embeddings(ex: Exchange): void {
    const request = this.request(ex);
    if (!request) return;
    const { body, model } = request;
    const texts = embeddingInputs(body.input);
    if (!texts)
      return fail(ex, 400, "'input' must be a non-empty string, array of strings or array of token arrays", {
        param: "input",
      });
    const format = body.encoding_format ?? "float";
    if (format !== "float" && format !== "base64") {
      return fail(ex, 400, `${JSON.stringify(format)} is not one of ['float', 'base64'] - 'encoding_format'`, {
        param: "encoding_format",
      });
    }
    const dims =
      typeof body.dimensions === "number" && body.dimensions > 0
        ? Math.min(body.dimensions, this.dimensions)
        : this.dimensions;
    const data = texts.map((text, index) => {
      const vector = hashEmbedding(text, dims);
      // The openai SDK asks for base64 by default: little-endian float32, as OpenAI sends it.
      const embedding = format === "base64" ? Buffer.from(new Float32Array(vector).buffer).toString("base64") : vector;
      return { object: "embedding", index, embedding };
    });
    const tokens = texts.reduce((n, t) => n + estimateTokens(t), 0);
    ex.json(200, { object: "list", data, model, usage: { prompt_tokens: tokens, total_tokens: tokens } });
  }
}

/** Starts an OpenAI-compatible upstream double on 127.0.0.1 (ephemeral port unless `options.port`). */
export async function startOpenAIUpstreamDouble(
  options: OpenAIUpstreamDoubleOptions = {},
): Promise<OpenAIUpstreamDouble> {
  const double = new OpenAIUpstreamDouble(options);
  await double.listen(options.port ?? 0);
  return double;
}

function errorType(status: number): ErrorType {
  if (status === 401) return "authentication_error";
  if (status === 429) return "rate_limit_error";
  return status >= 500 ? "server_error" : "invalid_request_error";
}

function errorBody(message: string, status: number): Body {
  return { error: { message, type: errorType(status), param: null, code: null } };
}

/** vLLM's way: an error event in the stream, then [DONE]. */
function streamError(message: string): string {
  return sse(errorBody(message, 500)) + DONE;
}

function fail(
  ex: Exchange,
  status: number,
  message: string,
  extra: { type?: ErrorType; param?: string; code?: string } = {},
): void {
  ex.json(status, {
    error: { message, type: extra.type ?? errorType(status), param: extra.param ?? null, code: extra.code ?? null },
  });
}

function modelNotFound(ex: Exchange, model: string): void {
  fail(ex, 404, `The model \`${model}\` does not exist or you do not have access to it.`, {
    param: "model",
    code: "model_not_found",
  });
}

function sse(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}

function wantsUsage(body: Body): boolean {
  return isRecord(body.stream_options) && body.stream_options.include_usage === true;
}

function maxTokens(body: Body): number | undefined {
  const value = body.max_completion_tokens ?? body.max_tokens;
  return typeof value === "number" ? value : undefined;
}

function usageOf(script: ReplyScript, prompt: string, frames: number): Body {
  const promptTokens = script.promptEvalCount ?? estimateTokens(prompt);
  const completionTokens = script.evalCount ?? frames;
  return {
    prompt_tokens: promptTokens,
    completion_tokens: completionTokens,
    total_tokens: promptTokens + completionTokens,
  };
}

/** Message content is a string or an array of parts; only text parts matter here. */
function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((part) => (isRecord(part) && typeof part.text === "string" ? part.text : "")).join("");
}

/** Three pieces cut mid-token, as real servers stream arguments. */
function fragments(args: string): string[] {
  if (args.length < 3) return [args];
  const a = Math.ceil(args.length / 3);
  const b = Math.ceil((2 * args.length) / 3);
  return [args.slice(0, a), args.slice(a, b), args.slice(b)];
}

/** string | string[] | number[] | number[][] as texts to hash; undefined when invalid or empty. */
function embeddingInputs(input: unknown): string[] | undefined {
  if (typeof input === "string") return input ? [input] : undefined;
  if (!Array.isArray(input) || input.length === 0) return undefined;
  if (input.every((x) => typeof x === "string")) return input as string[];
  if (input.every((x) => typeof x === "number")) return [JSON.stringify(input)];
  if (input.every((x) => Array.isArray(x) && x.every((n) => typeof n === "number")))
    return input.map((x) => JSON.stringify(x));
  return undefined;
}
