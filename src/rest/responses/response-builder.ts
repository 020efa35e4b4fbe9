/**
 * Neutral chat events -> Responses API stream events and the Response object.
 *
 * Every output item goes through `response.output_item.added`, its deltas and
 * `response.output_item.done`: Codex commits an item only on `.done` (notes/codex.md §3), and
 * the openai SDK's stream accumulator needs the `.added` events (and content parts) before
 * any delta. Events carry `sequence_number` as the OpenAI schema requires. Tool calls come
 * back as the client declared the tool: `function_call` (with its namespace) or
 * `custom_tool_call` for freeform tools such as apply_patch.
 */
import type { ChatEvent, FinishReason, ToolCall, Usage } from "../../completion/types.js";
import { newId } from "../../util/ids.js";
import type { ToolNames } from "./request.js";

export type ResponseStatus = "in_progress" | "completed" | "incomplete" | "failed";

export interface ResponseError {
  code: string;
  message: string;
}

/** Request fields the Response object echoes back. */
export interface ResponseEcho {
  model: string;
  instructions?: string | null;
  tools?: unknown[];
  toolChoice?: unknown;
  temperature?: number | null;
  topP?: number | null;
  maxOutputTokens?: number | null;
  parallelToolCalls?: boolean;
  metadata?: unknown;
  reasoningEffort?: string | null;
  text?: unknown;
}

export type StreamEvent = { type: string; sequence_number: number } & Record<string, unknown>;

type OutputItem = Record<string, unknown> & { type: string; id: string };

interface OpenItem {
  kind: "message" | "reasoning";
  index: number;
  item: OutputItem;
  text: string;
}

export function wireResponseUsage(u: Usage) {
  return {
    input_tokens: u.promptTokens,
    input_tokens_details: { cached_tokens: u.cachedTokens ?? 0, cache_write_tokens: 0 },
    output_tokens: u.completionTokens,
    output_tokens_details: { reasoning_tokens: u.reasoningTokens ?? 0 },
    total_tokens: u.totalTokens,
  };
}

/** The string a freeform tool receives, from the arguments of the one-parameter function it was shown as. */
export function customToolInput(args: string): string {
  try {
    const parsed: unknown = JSON.parse(args);
    if (typeof parsed === "string") return parsed;
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) {
      const o = parsed as Record<string, unknown>;
      if (typeof o.input === "string") return o.input;
      // A model that renamed the parameter: take its only string value.
      const strings = Object.values(o).filter((v): v is string => typeof v === "string");
      if (strings.length === 1) return strings[0]!;
    }
  } catch {
    // Not JSON: the model wrote the input itself.
  }
  return args;
}

export class ResponseBuilder {
  readonly id = newId("resp_");
  private readonly createdAt = Math.floor(Date.now() / 1000);
  private seq = 0;
  private readonly output: OutputItem[] = [];
  private open: OpenItem | undefined;
  private status: ResponseStatus = "in_progress";
  private usage: Usage | undefined;
  private error: ResponseError | null = null;
  private incompleteReason: string | null = null;

  constructor(
    private readonly echo: ResponseEcho,
    private readonly toolNames: ToolNames,
  ) {}

  get finished(): boolean {
    return this.status !== "in_progress";
  }

  /**
   * The Response object as it stands. The in-progress snapshots of a stream (created, in_progress,
   * heartbeats) leave the request's tools out (`[]`): Codex sends ~10 KB of them and reads none of
   * it back; the final Response (completed, incomplete, failed, non-streaming) echoes them.
   */
  response(): Record<string, unknown> {
    const response: Record<string, unknown> = {
      id: this.id,
      object: "response",
      created_at: this.createdAt,
      status: this.status,
      completed_at: this.status === "completed" ? Math.floor(Date.now() / 1000) : null,
      error: this.error,
      incomplete_details: this.incompleteReason ? { reason: this.incompleteReason } : null,
      instructions: this.echo.instructions ?? null,
      max_output_tokens: this.echo.maxOutputTokens ?? null,
      model: this.echo.model,
      output: this.output,
      parallel_tool_calls: this.echo.parallelToolCalls ?? true,
      previous_response_id: null,
      reasoning: { effort: this.echo.reasoningEffort ?? null, summary: null },
      store: false,
      temperature: this.echo.temperature ?? null,
      text: this.echo.text ?? { format: { type: "text" } },
      tool_choice: this.echo.toolChoice ?? "auto",
      tools: this.status === "in_progress" ? [] : (this.echo.tools ?? []),
      top_p: this.echo.topP ?? null,
      truncation: "disabled",
      metadata: this.echo.metadata ?? {},
    };
    // Absent until known: the schema's usage is not nullable, and Codex accepts it missing.
    if (this.usage) response.usage = wireResponseUsage(this.usage);
    return response;
  }

  private event(type: string, fields: Record<string, unknown>): StreamEvent {
    return { type, sequence_number: this.seq++, ...fields };
  }

  /** The stream's opening events. */
  start(): StreamEvent[] {
    return [
      this.event("response.created", { response: this.response() }),
      this.event("response.in_progress", { response: this.response() }),
    ];
  }

  /** A keep-alive: JSON events reset Codex's idle timer, SSE comments do not. */
  heartbeat(): StreamEvent {
    return this.event("response.in_progress", { response: this.response() });
  }

  /** The events one chat event becomes. */
  next(e: ChatEvent): StreamEvent[] {
    const out: StreamEvent[] = [];
    if (e.type === "delta") {
      if (e.reasoning) this.appendText("reasoning", e.reasoning, out);
      if (e.content) this.appendText("message", e.content, out);
    } else if (e.type === "tool_calls") {
      this.closeOpen(out);
      for (const call of e.toolCalls) this.toolCall(call, out);
    } else {
      this.closeOpen(out);
      out.push(this.finish(e.finishReason, e.usage));
    }
    return out;
  }

  /** Ends the response as failed; items already done stay in `output`. */
  fail(error: ResponseError): StreamEvent {
    this.open = undefined;
    this.status = "failed";
    this.error = error;
    return this.event("response.failed", { response: this.response() });
  }

  private finish(reason: FinishReason, usage: Usage | undefined): StreamEvent {
    this.usage = usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 };
    if (reason === "length" || reason === "content_filter") {
      this.status = "incomplete";
      this.incompleteReason = reason === "length" ? "max_output_tokens" : "content_filter";
      return this.event("response.incomplete", { response: this.response() });
    }
    this.status = "completed";
    return this.event("response.completed", { response: this.response() });
  }

  private appendText(kind: "message" | "reasoning", delta: string, out: StreamEvent[]): void {
    if (this.open?.kind !== kind) {
      this.closeOpen(out);
      this.openItem(kind, out);
    }
    const open = this.open!;
    open.text += delta;
    // The per-token hot path: one object literal per event, no spreads.
    out.push(
      kind === "message"
        ? {
            type: "response.output_text.delta",
            sequence_number: this.seq++,
            item_id: open.item.id,
            output_index: open.index,
            content_index: 0,
            delta,
            logprobs: [],
          }
        : {
            type: "response.reasoning_text.delta",
            sequence_number: this.seq++,
            item_id: open.item.id,
            output_index: open.index,
            content_index: 0,
            delta,
          },
    );
  }

  private openItem(kind: "message" | "reasoning", out: StreamEvent[]): void {
    const item: OutputItem =
      kind === "message"
        ? { type: "message", id: newId("msg_"), status: "in_progress", role: "assistant", content: [] }
        : { type: "reasoning", id: newId("rs_"), status: "in_progress", summary: [], content: [] };
    const index = this.output.length;
    this.output.push(item);
    this.open = { kind, index, item, text: "" };
    out.push(this.event("response.output_item.added", { output_index: index, item: { ...item } }));
    const part =
      kind === "message"
        ? { type: "output_text", text: "", annotations: [], logprobs: [] }
        : { type: "reasoning_text", text: "" };
    out.push(
      this.event("response.content_part.added", { item_id: item.id, output_index: index, content_index: 0, part }),
    );
  }

  private closeOpen(out: StreamEvent[]): void {
    const open = this.open;
    if (!open) return;
    this.open = undefined;
    const where = { item_id: open.item.id, output_index: open.index, content_index: 0 };
    let part: Record<string, unknown>;
    if (open.kind === "message") {
      part = { type: "output_text", text: open.text, annotations: [], logprobs: [] };
      out.push(this.event("response.output_text.done", { ...where, text: open.text, logprobs: [] }));
    } else {
      part = { type: "reasoning_text", text: open.text };
      out.push(this.event("response.reasoning_text.done", { ...where, text: open.text }));
    }
    out.push(this.event("response.content_part.done", { ...where, part }));
    open.item.content = [part];
    open.item.status = "completed";
    out.push(this.event("response.output_item.done", { output_index: open.index, item: open.item }));
  }

  private toolCall(call: ToolCall, out: StreamEvent[]): void {
    const target = this.toolNames.get(call.name);
    const index = this.output.length;
    const callId = call.id || newId("call_");
    if (target?.kind === "custom") {
      const input = customToolInput(call.arguments);
      const item: OutputItem = {
        type: "custom_tool_call",
        id: newId("ctc_"),
        call_id: callId,
        name: target.name,
        input,
      };
      this.output.push(item);
      out.push(this.event("response.output_item.added", { output_index: index, item: { ...item, input: "" } }));
      const where = { item_id: item.id, output_index: index };
      out.push(this.event("response.custom_tool_call_input.delta", { ...where, delta: input }));
      out.push(this.event("response.custom_tool_call_input.done", { ...where, input }));
      out.push(this.event("response.output_item.done", { output_index: index, item }));
      return;
    }
    // Unknown names pass through as functions: the client answers them (Codex: "unsupported call").
    const name = target?.name ?? call.name;
    const item: OutputItem = {
      type: "function_call",
      id: newId("fc_"),
      call_id: callId,
      name,
      arguments: call.arguments,
    };
    if (target?.kind === "function" && target.namespace) item.namespace = target.namespace;
    item.status = "completed";
    this.output.push(item);
    out.push(
      this.event("response.output_item.added", {
        output_index: index,
        item: { ...item, arguments: "", status: "in_progress" },
      }),
    );
    const where = { item_id: item.id, output_index: index };
    out.push(this.event("response.function_call_arguments.delta", { ...where, delta: call.arguments }));
    out.push(this.event("response.function_call_arguments.done", { ...where, name, arguments: call.arguments }));
    out.push(this.event("response.output_item.done", { output_index: index, item }));
  }
}
