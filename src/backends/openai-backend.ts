/**
 * Any OpenAI-compatible upstream (vLLM, LiteLLM, llama.cpp server, OpenAI itself)
 * over plain fetch: /chat/completions, /completions, /embeddings, /models.
 * Streamed tool-call fragments are assembled by index and emitted whole, so every
 * backend hands the gateway the same event shapes.
 */
import { GatewayError } from "../errors/gateway-error.js";
import type {
  Backend,
  BackendHealth,
  ChatEvent,
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  EmbedRequest,
  EmbedResult,
  FinishReason,
  GenerationOptions,
  ModelInfo,
  TextEvent,
  ToolCall,
  Usage,
} from "../completion/types.js";
import { readSSE } from "../util/sse-reader.js";
import { createHttpFetch, type HttpResponse } from "./http-fetch.js";
import { UpstreamCall, upstreamFailure, upstreamStatusError } from "./upstream-call.js";
import type { CancelSignal } from "../util/cancel-signal.js";

export interface OpenAIBackendOptions {
  name: string;
  /** Base URL including the version prefix, e.g. http://127.0.0.1:8000/v1. */
  baseUrl: string;
  apiKey?: string;
  firstByteTimeoutMs: number;
}

interface WireUsage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  prompt_tokens_details?: { cached_tokens?: number } | null;
  completion_tokens_details?: { reasoning_tokens?: number } | null;
}

interface WireToolCallDelta {
  index?: number;
  id?: string;
  function?: { name?: string; arguments?: string };
}

interface WireChoice {
  index?: number;
  text?: string;
  message?: { content?: string | null; reasoning_content?: string | null; tool_calls?: WireToolCallDelta[] };
  delta?: { content?: string | null; reasoning_content?: string | null; tool_calls?: WireToolCallDelta[] };
  finish_reason?: string | null;
}

interface WireCompletion {
  choices?: WireChoice[];
  usage?: WireUsage | null;
  error?: { message?: string };
}

export class OpenAIBackend implements Backend {
  readonly name: string;
  readonly kind = "openai" as const;
  readonly describe: string;
  private readonly http = createHttpFetch();

  constructor(private readonly opts: OpenAIBackendOptions) {
    this.name = opts.name;
    this.describe = `${opts.name} at ${opts.baseUrl}`;
  }

  private async post(call: UpstreamCall, path: string, body: unknown): Promise<HttpResponse> {
    const res = await this.http(`${this.opts.baseUrl}${path}`, {
      method: "POST",
      headers: this.headers(),
      body: JSON.stringify(body),
      signal: call.signal,
    });
    call.answered();
    if (!res.ok) throw await this.statusError(res);
    return res;
  }

  private headers(): Record<string, string> {
    const h: Record<string, string> = {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    };
    if (this.opts.apiKey) h.authorization = `Bearer ${this.opts.apiKey}`;
    return h;
  }

  private async statusError(res: HttpResponse): Promise<GatewayError> {
    let message = res.statusText;
    try {
      const text = await res.text();
      try {
        const j = JSON.parse(text) as { error?: { message?: string } | string; message?: string };
        message = (typeof j.error === "string" ? j.error : j.error?.message) ?? j.message ?? text;
      } catch {
        message = text.slice(0, 500) || message;
      }
    } catch {
      // Body unreadable: the status says enough.
    }
    return upstreamStatusError(this, res.status, message);
  }

  private async *run<T>(signal: CancelSignal, body: (call: UpstreamCall) => AsyncIterable<T>): AsyncIterable<T> {
    const call = new UpstreamCall(signal, this.opts.firstByteTimeoutMs);
    try {
      yield* body(call);
    } catch (err) {
      throw upstreamFailure(this, err, call.signal);
    } finally {
      call.finish();
    }
  }

  chat(req: ChatRequest, signal: CancelSignal): AsyncIterable<ChatEvent> {
    const body: Record<string, unknown> = {
      model: req.model,
      messages: req.messages.map(toWireMessage),
      stream: true,
      stream_options: { include_usage: true },
      ...wireOptions(req.options),
    };
    if (req.tools?.length) {
      body.tools = req.tools.map((t) => ({
        type: "function",
        function: { name: t.name, description: t.description, parameters: t.parameters, strict: t.strict },
      }));
      if (req.toolChoice) {
        body.tool_choice =
          typeof req.toolChoice === "object"
            ? { type: "function", function: { name: req.toolChoice.name } }
            : req.toolChoice;
      }
    }
    if (req.reasoningEffort) body.reasoning_effort = req.reasoningEffort;
    if (req.responseFormat && req.responseFormat.type !== "text") {
      body.response_format =
        req.responseFormat.type === "json_object"
          ? { type: "json_object" }
          : {
              type: "json_schema",
              json_schema: {
                name: req.responseFormat.name ?? "response",
                schema: req.responseFormat.schema,
                strict: req.responseFormat.strict,
              },
            };
    }
    return this.run(signal, (call) => this.chatEvents(call, body));
  }

  private async *chatEvents(call: UpstreamCall, body: Record<string, unknown>): AsyncIterable<ChatEvent> {
    const res = await this.post(call, "/chat/completions", body);
    const fragments: WireToolCallDelta[] = [];
    let finish: string | null | undefined;
    let usage: Usage | undefined;
    for await (const data of readSSE(res.body)) {
      call.progress();
      if (data === "[DONE]") break;
      const j = this.parseChunk(data);
      if (j.usage) usage = mapUsage(j.usage);
      const choice = j.choices?.[0];
      if (!choice) continue;
      const d = choice.delta;
      if (d?.content || d?.reasoning_content)
        yield { type: "delta", content: d.content || undefined, reasoning: d.reasoning_content || undefined };
      if (d?.tool_calls) fragments.push(...d.tool_calls);
      if (choice.finish_reason) finish = choice.finish_reason;
    }
    if (finish === undefined) {
      throw new GatewayError("upstream_error", `upstream ${this.describe} closed the stream before it was done`);
    }
    call.complete();
    const calls = assembleToolCalls(fragments);
    if (calls.length) yield { type: "tool_calls", toolCalls: calls };
    yield { type: "done", finishReason: mapFinish(finish, calls.length > 0), usage };
  }

  complete(req: CompletionRequest, signal: CancelSignal): AsyncIterable<TextEvent> {
    const body: Record<string, unknown> = {
      model: req.model,
      prompt: req.prompt,
      stream: true,
      stream_options: { include_usage: true },
      ...wireOptions(req.options),
    };
    if (req.suffix) body.suffix = req.suffix;
    return this.run(signal, (call) => this.textEvents(call, body));
  }

  private async *textEvents(call: UpstreamCall, body: Record<string, unknown>): AsyncIterable<TextEvent> {
    const res = await this.post(call, "/completions", body);
    let finish: string | null | undefined;
    let usage: Usage | undefined;
    for await (const data of readSSE(res.body)) {
      call.progress();
      if (data === "[DONE]") break;
      const j = this.parseChunk(data);
      if (j.usage) usage = mapUsage(j.usage);
      const choice = j.choices?.[0];
      if (choice?.text) yield { type: "delta", text: choice.text };
      if (choice?.finish_reason) finish = choice.finish_reason;
    }
    if (finish === undefined)
      throw new GatewayError("upstream_error", `upstream ${this.describe} closed the stream before it was done`);
    call.complete();
    yield { type: "done", finishReason: mapFinish(finish, false), usage };
  }

  /** One SSE `data:` payload; an `error` object mid-stream fails the call. */
  private parseChunk(data: string): WireCompletion {
    let j: WireCompletion;
    try {
      j = JSON.parse(data) as WireCompletion;
    } catch {
      throw new GatewayError("upstream_error", `upstream ${this.describe} sent an event that is not JSON`);
    }
    if (j.error)
      throw new GatewayError(
        "upstream_error",
        `upstream ${this.describe} failed mid-stream: ${j.error.message ?? "error"}`,
      );
    return j;
  }

  async embed(req: EmbedRequest, signal: CancelSignal): Promise<EmbedResult> {
    const call = new UpstreamCall(signal, this.opts.firstByteTimeoutMs);
    try {
      const res = await this.post(call, "/embeddings", {
        model: req.model,
        input: req.inputs,
        dimensions: req.dimensions,
        encoding_format: "float",
      });
      const j = (await res.json()) as {
        model?: string;
        data?: { index: number; embedding: number[] }[];
        usage?: WireUsage;
      };
      call.complete();
      const data = [...(j.data ?? [])].sort((a, b) => a.index - b.index);
      return {
        model: j.model ?? req.model,
        embeddings: data.map((d) => d.embedding),
        usage: mapUsage(j.usage) ?? zeroUsage(),
      };
    } catch (err) {
      throw upstreamFailure(this, err, call.signal);
    } finally {
      call.finish();
    }
  }

  async listModels(signal: CancelSignal): Promise<ModelInfo[]> {
    const call = new UpstreamCall(signal, this.opts.firstByteTimeoutMs);
    try {
      const res = await this.http(`${this.opts.baseUrl}/models`, { headers: this.headers(), signal: call.signal });
      call.answered();
      if (!res.ok) throw await this.statusError(res);
      const j = (await res.json()) as { data?: { id: string; created?: number; owned_by?: string }[] };
      call.complete();
      return (j.data ?? []).map((m) => ({
        id: m.id,
        backend: this.name,
        ownedBy: m.owned_by ?? this.name,
        created: m.created ?? 0,
        capabilities: ["chat", "completion"],
      }));
    } catch (err) {
      throw upstreamFailure(this, err, call.signal);
    } finally {
      call.finish();
    }
  }

  async health(signal: CancelSignal): Promise<BackendHealth> {
    const started = performance.now();
    try {
      const models = await this.listModels(signal);
      return { ok: true, detail: `${models.length} models`, latencyMs: performance.now() - started };
    } catch (err) {
      return { ok: false, detail: (err as Error).message, latencyMs: performance.now() - started };
    }
  }
}

function toWireMessage(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: m.content };
  if (m.images?.length) {
    out.content = [
      { type: "text", text: m.content },
      ...m.images.map((b64) => ({ type: "image_url", image_url: { url: `data:image/png;base64,${b64}` } })),
    ];
  }
  if (m.name) out.name = m.name;
  if (m.toolCallId) out.tool_call_id = m.toolCallId;
  if (m.toolCalls?.length) {
    out.tool_calls = m.toolCalls.map((tc) => ({
      id: tc.id,
      type: "function",
      function: { name: tc.name, arguments: tc.arguments },
    }));
    if (!m.content) out.content = null;
  }
  return out;
}

function wireOptions(o: GenerationOptions): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (o.temperature !== undefined) out.temperature = o.temperature;
  if (o.topP !== undefined) out.top_p = o.topP;
  if (o.maxTokens !== undefined) out.max_tokens = o.maxTokens;
  if (o.stop?.length) out.stop = o.stop;
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.presencePenalty !== undefined) out.presence_penalty = o.presencePenalty;
  if (o.frequencyPenalty !== undefined) out.frequency_penalty = o.frequencyPenalty;
  return out;
}

function assembleToolCalls(fragments: WireToolCallDelta[]): ToolCall[] {
  const byIndex = new Map<number, ToolCall>();
  fragments.forEach((f, i) => {
    const index = f.index ?? i;
    const tc = byIndex.get(index) ?? { id: "", name: "", arguments: "" };
    if (f.id) tc.id = f.id;
    if (f.function?.name) tc.name += f.function.name;
    if (f.function?.arguments) tc.arguments += f.function.arguments;
    byIndex.set(index, tc);
  });
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([i, tc]) => ({ ...tc, id: tc.id || `call_${i}` }));
}

function mapFinish(reason: string | null | undefined, hadToolCalls: boolean): FinishReason {
  if (reason === "tool_calls" || reason === "function_call" || hadToolCalls) return "tool_calls";
  if (reason === "length") return "length";
  if (reason === "content_filter") return "content_filter";
  return "stop";
}

function zeroUsage(): Usage {
  return { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
}

function mapUsage(u: WireUsage | null | undefined): Usage | undefined {
  if (!u) return undefined;
  const promptTokens = u.prompt_tokens ?? 0;
  const completionTokens = u.completion_tokens ?? 0;
  const usage: Usage = {
    promptTokens,
    completionTokens,
    totalTokens: u.total_tokens ?? promptTokens + completionTokens,
  };
  const cached = u.prompt_tokens_details?.cached_tokens;
  const reasoning = u.completion_tokens_details?.reasoning_tokens;
  if (cached) usage.cachedTokens = cached;
  if (reasoning) usage.reasoningTokens = reasoning;
  return usage;
}
