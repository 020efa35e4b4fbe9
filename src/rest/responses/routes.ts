/**
 * POST /v1/responses: the Responses API over the same backends as /v1/chat/completions, shaped
 * for the Codex CLI (notes/codex.md) and the official SDKs alike.
 *
 * Streaming keeps three promises Codex relies on:
 * - The stream opens only when the upstream has answered or `heartbeatMs` has passed, so a
 *   failure that shows at once (upstream down, unknown model) is a plain HTTP error.
 * - While the upstream is silent (model loading, hidden thinking) a JSON `response.in_progress`
 *   goes out every `heartbeatMs`: SSE comments do not reset Codex's idle timer.
 * - A failure after the stream opened ends it with `response.failed`, never a bare `error`
 *   event, which Codex would ignore and then retry the whole turn.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import type { CompletionGateway } from "../../completion/completion-gateway.js";
import type { ChatEvent, ChatRequest } from "../../completion/types.js";
import { validateChatRequest } from "../../completion/validate.js";
import { asGatewayError, GatewayError } from "../../errors/gateway-error.js";
import type { Metrics } from "../../observability/metrics.js";
import { clientGone } from "../client-gone.js";
import { ClientDisconnected, SseStream } from "../sse.js";
import { errorResponses } from "../openai/schemas.js";
import { toChatRequest } from "./request.js";
import { ResponseBuilder, type ResponseEcho, type ResponseError, type StreamEvent } from "./response-builder.js";
import { ResponseObject, ResponsesRequest } from "./schemas.js";

export interface ResponsesRoutesDeps {
  gateway: CompletionGateway;
  metrics: Metrics;
  shutdown: AbortSignal;
  /** Silence after which a `response.in_progress` keeps the client waiting. */
  heartbeatMs: number;
}

/**
 * Codex retries every 5xx and most 4xx up to 6-30 times (notes/codex.md §4), but a 400 once.
 * A request from Codex that failed before its stream opened would fail the same way again (or
 * should be retried by a person who can see why), so it is answered 400, keeping the error's
 * type and code. 401 and 429 keep their status: Codex handles both once already.
 */
function forClient(request: FastifyRequest, err: unknown): unknown {
  const originator = request.headers.originator;
  const ua = request.headers["user-agent"];
  const fromCodex =
    (typeof originator === "string" && originator.startsWith("codex")) ||
    (typeof ua === "string" && ua.startsWith("codex"));
  if (!fromCodex) return err;
  const g = asGatewayError(err);
  if (g.status === 401 || g.status === 429 || g.status === 400) return g;
  return g.withHttpStatus(400);
}

/**
 * A failure as a Response error. Codes follow OpenAI's ResponseErrorCode where Codex reads them:
 * `rate_limit_exceeded` with "try again in Ns" makes it wait, `server_error` retries the turn.
 */
export function responseError(err: unknown): ResponseError {
  const g = asGatewayError(err);
  if (g.kind === "resource_exhausted") {
    const wait = g.retryAfterSeconds !== undefined ? ` Please try again in ${g.retryAfterSeconds}s.` : "";
    return { code: "rate_limit_exceeded", message: `${g.message}${wait}` };
  }
  if (g.kind === "invalid_argument" || g.kind === "not_found" || g.kind === "failed_precondition") {
    return { code: "invalid_prompt", message: g.message };
  }
  return { code: "server_error", message: g.message };
}

function echoOf(body: ResponsesRequest): ResponseEcho {
  const extra = body as Record<string, unknown>;
  return {
    model: body.model,
    instructions: body.instructions,
    tools: body.tools,
    toolChoice: body.tool_choice,
    temperature: body.temperature,
    topP: body.top_p,
    maxOutputTokens: body.max_output_tokens,
    parallelToolCalls: typeof extra.parallel_tool_calls === "boolean" ? extra.parallel_tool_calls : undefined,
    metadata: extra.metadata ?? undefined,
    reasoningEffort: body.reasoning?.effort,
    text: body.text?.format ? { format: body.text.format } : undefined,
  };
}

const TIMED_OUT = Symbol("timed out");

export async function registerResponsesRoutes(app: FastifyInstance, deps: ResponsesRoutesDeps): Promise<void> {
  const { gateway, metrics, shutdown, heartbeatMs } = deps;

  app.post<{ Body: ResponsesRequest }>(
    "/v1/responses",
    {
      schema: {
        tags: ["openai"],
        summary: "Create a model response (Responses API; stream: true answers with server-sent events)",
        body: ResponsesRequest,
        response: { 200: ResponseObject, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      let builder: ResponseBuilder;
      let chat: ChatRequest;
      try {
        const translated = toChatRequest(body);
        validateChatRequest(translated.chat);
        if (translated.notes.length) request.log.info({ notes: translated.notes }, "responses request adapted");
        chat = translated.chat;
        builder = new ResponseBuilder(echoOf(body), translated.toolNames);
      } catch (err) {
        throw forClient(request, err);
      }

      if (!body.stream) {
        try {
          const result = await gateway.chat(chat, clientGone(reply));
          const m = result.message;
          const events: ChatEvent[] = [];
          if (m.reasoning) events.push({ type: "delta", reasoning: m.reasoning });
          if (m.content) events.push({ type: "delta", content: m.content });
          if (m.toolCalls?.length) events.push({ type: "tool_calls", toolCalls: m.toolCalls });
          events.push({ type: "done", finishReason: result.finishReason, usage: result.usage });
          for (const e of events) builder.next(e);
          return builder.response();
        } catch (err) {
          throw forClient(request, err);
        }
      }

      const sse = new SseStream(reply, shutdown);
      const onEnd = metrics.streamStarted("sse");
      let iterator: AsyncIterator<ChatEvent>;
      let first: IteratorResult<ChatEvent> | typeof TIMED_OUT;
      let pendingFirst: Promise<IteratorResult<ChatEvent>>;
      try {
        const stream = await gateway.chatStream(chat, sse.signal);
        iterator = stream.events[Symbol.asyncIterator]();
        pendingFirst = iterator.next();
        let timer: NodeJS.Timeout | undefined;
        first = await Promise.race([
          pendingFirst,
          new Promise<typeof TIMED_OUT>((resolve) => {
            timer = setTimeout(resolve, heartbeatMs, TIMED_OUT);
          }),
        ]).finally(() => clearTimeout(timer));
      } catch (err) {
        onEnd();
        throw forClient(request, err);
      }
      if (first === TIMED_OUT) pendingFirst.catch(() => undefined); // handled when awaited below

      sse.open();
      void streamResponse(sse, builder, iterator, first, pendingFirst, heartbeatMs)
        .catch((err: unknown) => request.log.error({ err }, "responses stream failed"))
        .finally(onEnd);
      return reply;
    },
  );

  app.get<{ Params: { "*": string } }>(
    "/v1/responses/*",
    // Not in /openapi.json: it only ever answers 404, to say why.
    { schema: { hide: true } },
    async () => {
      throw new GatewayError(
        "not_found",
        "agentgate stores no responses (store is ignored): keep the output of the response you created",
        { code: "response_not_found" },
      );
    },
  );
}

/** Writes the whole stream; never throws for upstream failures (they become `response.failed`). */
async function streamResponse(
  sse: SseStream,
  builder: ResponseBuilder,
  iterator: AsyncIterator<ChatEvent>,
  first: IteratorResult<ChatEvent> | typeof TIMED_OUT,
  pendingFirst: Promise<IteratorResult<ChatEvent>>,
  heartbeatMs: number,
): Promise<void> {
  // A batch of events is written with awaits in between (drain); a heartbeat in the middle would
  // break the order of sequence numbers, so it waits for the next quiet moment.
  let writing = false;
  const write = async (events: StreamEvent[]) => {
    writing = true;
    try {
      for (const e of events) await sse.send(e, e.type);
    } finally {
      writing = false;
      heartbeat.refresh();
    }
  };
  const heartbeat = setTimeout(function beat() {
    if (!writing && !sse.signal.aborted) void sse.send(builder.heartbeat(), "response.in_progress");
    heartbeat.refresh();
  }, heartbeatMs);
  try {
    await write(builder.start());
    let r = first === TIMED_OUT ? await pendingFirst : first;
    // Read to the end, also past the terminal event: a backend's generator does its clean-up (the
    // codex model records its thread, releases the conversation) after yielding `done`.
    for (; !r.done; r = await iterator.next()) {
      if (sse.signal.aborted) throw sse.signal.reason;
      if (!builder.finished) await write(builder.next(r.value));
    }
    if (!builder.finished) throw new GatewayError("upstream_error", "the upstream ended without finishing the answer");
    clearTimeout(heartbeat);
    sse.end();
  } catch (err) {
    clearTimeout(heartbeat);
    await iterator.return?.().catch(() => undefined);
    const reason: unknown = sse.signal.reason;
    if (reason instanceof ClientDisconnected) {
      sse.end();
      return;
    }
    const failed = builder.fail(responseError(reason instanceof GatewayError ? reason : err));
    sse.end({ value: failed, event: failed.type });
  }
}
