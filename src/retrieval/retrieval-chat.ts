/**
 * Retrieval-augmented chat: retrieve context for the question, put it in a system message after the
 * client's own, answer through the completion gateway, return the citations with the answer and
 * record the exchange as an artifact (also when it fails or the client goes away).
 */
import type { Logger } from "pino";
import type { ChatResult, ChatStream, CompletionGateway } from "../completion/completion-gateway.js";
import type { ChatEvent, ChatMessage, ChatRequest, FinishReason, ToolCall, Usage } from "../completion/types.js";
import { asGatewayError, GatewayError } from "../errors/gateway-error.js";
import type { CancelSignal } from "../util/cancel-signal.js";
import { newId } from "../util/ids.js";
import type { ArtifactStore } from "./artifact-store.js";
import type { ContextRetriever } from "./context-retriever.js";
import type { Artifact, RetrievalOptions, RetrievalResult, RetrievedContext } from "./types.js";

/** A model id `context/<model>` asks for retrieval with the default options. */
export const CONTEXT_MODEL_PREFIX = "context/";

/**
 * Whether a chat asks for retrieval: explicit options, or a `context/` model id. Undefined when it
 * does not; else the model to route (prefix removed) and the options.
 */
export function retrievalRequested(
  model: string,
  options: RetrievalOptions | undefined,
): { model: string; options: RetrievalOptions } | undefined {
  if (model.startsWith(CONTEXT_MODEL_PREFIX))
    return { model: model.slice(CONTEXT_MODEL_PREFIX.length), options: options ?? {} };
  return options ? { model, options } : undefined;
}

export interface RetrievalChatResult extends ChatResult {
  retrieval: RetrievalResult;
}

export interface RetrievalChatStream extends ChatStream {
  retrieval: RetrievalResult;
}

const NO_ANSWER = { completionId: "", backend: "", answer: { role: "assistant", content: "" } } as const;

/** What the exchange was, before the answer. */
interface Exchange {
  artifactId: string;
  createdAt: Date;
  model: string;
  messages: ChatMessage[];
  context: RetrievedContext;
}

export class RetrievalChat {
  constructor(
    private readonly o: {
      gateway: CompletionGateway;
      retriever: ContextRetriever;
      artifacts: ArtifactStore;
      logger?: Logger;
    },
  ) {}

  /** `req.model` is the id as the client sent it (a `context/` prefix included). */
  async chat(req: ChatRequest, options: RetrievalOptions, signal: CancelSignal): Promise<RetrievalChatResult> {
    const { exchange, augmented } = await this.prepare(req, options, signal);
    let result: ChatResult;
    try {
      result = await this.o.gateway.chat(augmented, signal);
    } catch (err) {
      await this.record(exchange, NO_ANSWER, err);
      throw err;
    }
    await this.record(exchange, {
      completionId: result.id,
      backend: result.backend,
      answer: result.message,
      finishReason: result.finishReason,
      usage: result.usage,
    });
    return { ...result, model: exchange.model, retrieval: retrievalResult(exchange) };
  }

  async chatStream(req: ChatRequest, options: RetrievalOptions, signal: CancelSignal): Promise<RetrievalChatStream> {
    const { exchange, augmented } = await this.prepare(req, options, signal);
    let s: ChatStream;
    try {
      s = await this.o.gateway.chatStream(augmented, signal);
    } catch (err) {
      await this.record(exchange, NO_ANSWER, err);
      throw err;
    }
    return {
      ...s,
      model: exchange.model,
      retrieval: retrievalResult(exchange),
      events: this.recorded(exchange, s, signal),
    };
  }

  private async prepare(
    req: ChatRequest,
    options: RetrievalOptions,
    signal: CancelSignal,
  ): Promise<{ exchange: Exchange; augmented: ChatRequest }> {
    const routed = retrievalRequested(req.model, options)!;
    const abort = signal instanceof AbortSignal ? signal : undefined;
    const context = await this.o.retriever.retrieve(lastUserText(req.messages), options, abort);
    const exchange: Exchange = {
      artifactId: options.skipArtifact ? "" : newId("art"),
      createdAt: new Date(),
      model: req.model,
      messages: req.messages,
      context,
    };
    const messages = withContext(req.messages, context.prompt);
    return { exchange, augmented: { ...req, model: routed.model, messages } };
  }

  /** Passes the events through, collecting the answer; records the exchange however the stream ends. */
  private async *recorded(exchange: Exchange, s: ChatStream, signal: CancelSignal): AsyncIterable<ChatEvent> {
    let content = "";
    let reasoning = "";
    const toolCalls: ToolCall[] = [];
    let finishReason: FinishReason | undefined;
    let usage: Usage | undefined;
    let failure: unknown;
    try {
      for await (const e of s.events) {
        if (e.type === "delta") {
          content += e.content ?? "";
          reasoning += e.reasoning ?? "";
        } else if (e.type === "tool_calls") toolCalls.push(...e.toolCalls);
        else {
          finishReason = e.finishReason;
          usage = e.usage;
        }
        yield e;
      }
    } catch (err) {
      failure = err;
      throw err;
    } finally {
      const answer: ChatMessage = { role: "assistant", content };
      if (reasoning) answer.reasoning = reasoning;
      if (toolCalls.length) answer.toolCalls = toolCalls;
      // Neither finished nor failed: the consumer stopped reading (the client went away).
      const stopped = !finishReason && failure === undefined;
      const error = stopped
        ? new GatewayError("canceled", "the client stopped reading before the answer was complete")
        : failure;
      await this.record(exchange, { completionId: s.id, backend: s.backend, answer, finishReason, usage }, error);
    }
  }

  /** A failed insert is logged, never thrown: the client has its answer either way. */
  private async record(
    exchange: Exchange,
    outcome: Pick<Artifact, "completionId" | "backend" | "answer" | "finishReason" | "usage">,
    error?: unknown,
  ): Promise<void> {
    if (!exchange.artifactId) return;
    const e = error === undefined ? undefined : asGatewayError(error);
    const status = e === undefined ? "completed" : e.kind === "canceled" ? "canceled" : "failed";
    try {
      await this.o.artifacts.record({
        id: exchange.artifactId,
        createdAt: exchange.createdAt,
        model: exchange.model,
        query: exchange.context.query,
        messages: exchange.messages,
        contextPrompt: exchange.context.prompt,
        citations: exchange.context.citations,
        contextTokens: exchange.context.tokens,
        ...outcome,
        status,
        error: e?.message ?? "",
      });
    } catch (err) {
      this.o.logger?.warn({ err, artifactId: exchange.artifactId }, "recording a retrieval artifact failed");
    }
  }
}

function retrievalResult(x: Exchange): RetrievalResult {
  return {
    citations: x.context.citations,
    contextTokens: x.context.tokens,
    artifactId: x.artifactId,
    notices: x.context.notices,
  };
}

function lastUserText(messages: readonly ChatMessage[]): string {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === "user") return messages[i]!.content;
  return "";
}

/** The context goes after the client's own system messages, so their instructions come first. */
export function withContext(messages: readonly ChatMessage[], prompt: string): ChatMessage[] {
  let i = 0;
  while (i < messages.length && messages[i]!.role === "system") i++;
  return [...messages.slice(0, i), { role: "system", content: prompt }, ...messages.slice(i)];
}
