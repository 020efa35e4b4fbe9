/**
 * Ollama-compatible routes, so Ollama clients (the `ollama` npm client, `codex --oss`) can use
 * agentgate as their Ollama: /api/version, /api/tags, /api/show, /api/chat, /api/generate,
 * /api/embed and the legacy /api/embeddings, over the same backends and model ids as /v1.
 *
 * An encapsulated plugin under /api with its own error and not-found handlers, so errors here take
 * Ollama's shape (`{"error":"message"}`, docs/api/errors.mdx) while /v1 keeps OpenAI's. Auth and
 * rate limits come from the app's hook, as for every REST route. The routes are left out of
 * /openapi.json, which documents the OpenAI-compatible surface; docs/ollama-compatibility.md
 * documents these.
 */
import { pipeEvents } from "../pipe-events.js";
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { ChatStream } from "../../completion/completion-gateway.js";
import type { CompletionGateway } from "../../completion/completion-gateway.js";
import type { ChatEvent, FinishReason, ModelInfo, ToolCall, Usage } from "../../completion/types.js";
import { validateChatRequest, validateCompletionRequest, validateEmbedRequest } from "../../completion/validate.js";
import { asGatewayError, GatewayError, invalidArgument } from "../../errors/gateway-error.js";
import type { Metrics } from "../../observability/metrics.js";
import { jsonTooDeep, MAX_JSON_DEPTH } from "../../server/app.js";
import { VERSION } from "../../version.js";
import { NdjsonStream, replySignal } from "./ndjson.js";
import {
  OllamaChatRequest,
  OllamaEmbeddingsRequest,
  OllamaEmbedRequest,
  OllamaGenerateRequest,
  OllamaShowRequest,
} from "./schemas.js";
import {
  doneReason,
  Durations,
  loadReason,
  showBody,
  tagsEntry,
  toDomainChat,
  toDomainGenerate,
  wireToolCalls,
} from "./translate.js";

/**
 * The Ollama API version /api/version reports: the newest stable Ollama release, v0.32.15, whose
 * docs/api.md and api/types.go (unchanged up to ollama/ollama@fb30760, the revision the project's
 * notes and Ollama double follow) these routes were written against. Clients gate features on it:
 * `codex --oss` refuses an Ollama older than 0.13.4.
 */
export const OLLAMA_API_VERSION = "0.32.15";

export interface OllamaRoutesDeps {
  gateway: CompletionGateway;
  metrics: Metrics;
  /** Aborted when the shutdown grace period ends: open streams finish with an error line. */
  shutdown: AbortSignal;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

export async function registerOllamaRoutes(app: FastifyInstance, deps: OllamaRoutesDeps): Promise<void> {
  await app.register((api) => ollamaPlugin(api, deps), { prefix: "/api" });
}

async function ollamaPlugin(api: FastifyInstance, deps: OllamaRoutesDeps): Promise<void> {
  const { gateway, metrics, shutdown } = deps;
  const backendKinds = new Map(gateway.router.backends.map((b) => [b.name, b.kind]));
  const hide = { hide: true };

  api.setErrorHandler(sendOllamaError);
  api.setNotFoundHandler((request, reply) => sendOllamaError(unknownRoute(request), request, reply));

  // Ollama reads any body as JSON whatever its content type, and its docs use `curl -d`, which
  // labels the body form-urlencoded: so here every content type (or none) is parsed as JSON, with
  // the same guards as the app's application/json parser.
  const parseJson = api.getDefaultJsonParser("remove", "remove");
  api.addContentTypeParser("*", { parseAs: "buffer" }, (request, body: Buffer, done) => {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      return done(invalidArgument("the request body is not valid UTF-8"), undefined);
    }
    if (jsonTooDeep(text)) {
      return done(invalidArgument(`the request body is nested deeper than ${MAX_JSON_DEPTH} levels`), undefined);
    }
    parseJson(request, text, done);
  });

  api.get("/version", { schema: hide }, async () => ({ version: OLLAMA_API_VERSION, agentgate: VERSION }));

  api.get("/tags", { schema: hide }, async (_request, reply) => {
    const listing = await gateway.listModels(replySignal(reply, shutdown));
    if (listing.models.length === 0 && listing.unavailable.length > 0) {
      throw new GatewayError("unavailable", `no backend answered: ${unavailableText(listing.unavailable)}`);
    }
    return { models: listing.models.map((m) => tagsEntry(m, backendKinds.get(m.backend))) };
  });

  api.post<{ Body: OllamaShowRequest }>(
    "/show",
    { schema: { ...hide, body: OllamaShowRequest } },
    async (request, reply) => {
      const name = request.body.model || request.body.name;
      if (!name) throw invalidArgument("model is required", "model");
      const listing = await gateway.listModels(replySignal(reply, shutdown));
      const found = findModel(listing.models, name);
      if (found) return showBody(found, backendKinds.get(found.backend));
      if (listing.unavailable.length > 0) {
        // It may belong to a backend that did not answer: say so instead of "not found".
        throw new GatewayError(
          "unavailable",
          `cannot tell whether model '${name}' exists: ${unavailableText(listing.unavailable)}`,
        );
      }
      throw new GatewayError("not_found", `model '${name}' not found`);
    },
  );

  api.post<{ Body: OllamaChatRequest }>(
    "/chat",
    { schema: { ...hide, body: OllamaChatRequest } },
    async (request, reply) => {
      const body = request.body;
      const durations = new Durations();
      // No messages: Ollama's "load the model" request, answered at once (agentgate loads nothing).
      if (!body.messages?.length) {
        return {
          ...head(body.model),
          message: { role: "assistant", content: "" },
          ...finalFields(loadReason(body.keep_alive)),
        };
      }
      const req = toDomainChat(body);
      validateChatRequest(req);
      const signal = replySignal(reply, shutdown);
      const s = await gateway.chatStream(req, signal);
      durations.markRouted();
      if (body.stream === false) {
        const r = await collectChat(s, durations);
        return {
          ...head(s.model),
          message: assistantMessage(r.content, r.thinking, r.toolCalls),
          ...finalFields(doneReason(r.finishReason)),
          ...durations.metrics(r.usage),
        };
      }
      const out = new NdjsonStream(reply, signal);
      let callsSent = 0;
      await pipeEvents(
        out,
        s.events,
        async (e) => {
          durations.markEvent();
          if (e.type === "delta") {
            await out.send(chatLine(s.model, assistantMessage(e.content ?? "", e.reasoning)));
          } else if (e.type === "tool_calls") {
            await out.send(
              chatLine(s.model, { role: "assistant", content: "", tool_calls: wireToolCalls(e.toolCalls, callsSent) }),
            );
            callsSent += e.toolCalls.length;
          } else {
            await out.send({
              ...head(s.model),
              message: { role: "assistant", content: "" },
              ...finalFields(doneReason(e.finishReason)),
              ...durations.metrics(e.usage),
            });
          }
        },
        metrics.streamStarted("ndjson"),
      );
      return reply;
    },
  );

  api.post<{ Body: OllamaGenerateRequest }>(
    "/generate",
    { schema: { ...hide, body: OllamaGenerateRequest } },
    async (request, reply) => {
      const body = request.body;
      const durations = new Durations();
      // An empty prompt is Ollama's "load the model" request, answered at once.
      if (!body.prompt) return { ...head(body.model), response: "", ...finalFields(loadReason(body.keep_alive)) };
      const route = toDomainGenerate(body);
      const signal = replySignal(reply, shutdown);
      // Both routes become one stream of text (and thinking) pieces, then one finish.
      let s: { model: string; events: AsyncIterable<GenerateEvent> };
      if (route.kind === "chat") {
        validateChatRequest(route.req);
        const chat = await gateway.chatStream(route.req, signal);
        s = { model: chat.model, events: chatAsText(chat.events) };
      } else {
        validateCompletionRequest(route.req);
        const text = await gateway.completeStream(route.req, signal);
        s = { model: text.model, events: text.events };
      }
      durations.markRouted();
      if (body.stream === false) {
        let response = "";
        let thinking = "";
        for await (const e of s.events) {
          durations.markEvent();
          if (e.type === "delta") {
            response += e.text;
            thinking += e.thinking ?? "";
            continue;
          }
          return {
            ...head(s.model),
            response,
            ...(thinking ? { thinking } : {}),
            ...finalFields(doneReason(e.finishReason)),
            ...durations.metrics(e.usage),
          };
        }
        throw new GatewayError("upstream_error", "the upstream ended without finishing");
      }
      const out = new NdjsonStream(reply, signal);
      await pipeEvents(
        out,
        s.events,
        async (e) => {
          durations.markEvent();
          if (e.type === "delta") {
            await out.send({
              ...head(s.model),
              response: e.text,
              ...(e.thinking ? { thinking: e.thinking } : {}),
              done: false,
            });
          } else {
            await out.send({
              ...head(s.model),
              response: "",
              ...finalFields(doneReason(e.finishReason)),
              ...durations.metrics(e.usage),
            });
          }
        },
        metrics.streamStarted("ndjson"),
      );
      return reply;
    },
  );

  api.post<{ Body: OllamaEmbedRequest }>(
    "/embed",
    { schema: { ...hide, body: OllamaEmbedRequest } },
    async (request, reply) => {
      const body = request.body;
      const durations = new Durations();
      const input = body.input ?? [];
      const inputs = typeof input === "string" ? (input ? [input] : []) : input;
      // No input: Ollama answers with no vectors (it only loads the model).
      if (inputs.length === 0) return { model: body.model, embeddings: [] };
      // `truncate` is accepted but not passed on: backends truncate as they do by default.
      const req = { model: body.model, inputs, dimensions: body.dimensions };
      validateEmbedRequest(req);
      const result = await gateway.embed(req, replySignal(reply, shutdown));
      return {
        model: body.model,
        embeddings: result.embeddings,
        total_duration: durations.elapsed(),
        // Routing and the upstream call are one step here: nothing to tell apart.
        load_duration: 0,
        prompt_eval_count: result.usage.promptTokens,
      };
    },
  );

  api.post<{ Body: OllamaEmbeddingsRequest }>(
    "/embeddings",
    { schema: { ...hide, body: OllamaEmbeddingsRequest } },
    async (request, reply) => {
      const body = request.body;
      if (!body.prompt) return { embedding: [] };
      const req = { model: body.model, inputs: [body.prompt] };
      validateEmbedRequest(req);
      const result = await gateway.embed(req, replySignal(reply, shutdown));
      return { embedding: result.embeddings[0] };
    },
  );
}

/** A text piece or the finish, whichever route /api/generate took. */
type GenerateEvent =
  { type: "delta"; text: string; thinking?: string } | { type: "done"; finishReason: FinishReason; usage?: Usage };

/** A chat stream as generate events (no tools are offered on /api/generate, so none come back). */
async function* chatAsText(events: AsyncIterable<ChatEvent>): AsyncIterable<GenerateEvent> {
  for await (const e of events) {
    if (e.type === "delta") yield { type: "delta", text: e.content ?? "", thinking: e.reasoning };
    else if (e.type === "done") yield e;
  }
}

async function collectChat(s: ChatStream, durations: Durations) {
  let content = "";
  let thinking = "";
  const toolCalls: ToolCall[] = [];
  for await (const e of s.events) {
    durations.markEvent();
    if (e.type === "delta") {
      content += e.content ?? "";
      thinking += e.reasoning ?? "";
    } else if (e.type === "tool_calls") {
      toolCalls.push(...e.toolCalls);
    } else {
      return { content, thinking, toolCalls, finishReason: e.finishReason, usage: e.usage };
    }
  }
  throw new GatewayError("upstream_error", "the upstream ended without finishing");
}

function head(model: string) {
  return { model, created_at: new Date().toISOString() };
}

function finalFields(reason: string) {
  return { done: true as const, done_reason: reason };
}

function assistantMessage(content: string, thinking?: string, toolCalls?: ToolCall[]) {
  const message: Record<string, unknown> = { role: "assistant", content };
  if (thinking) message.thinking = thinking;
  if (toolCalls?.length) message.tool_calls = wireToolCalls(toolCalls);
  return message;
}

function chatLine(model: string, message: Record<string, unknown>) {
  return { ...head(model), message, done: false };
}

/** As Ollama resolves names: a name without a tag means `:latest`. */
function findModel(models: ModelInfo[], name: string): ModelInfo | undefined {
  const exact = models.find((m) => m.id === name);
  if (exact) return exact;
  const lastSegment = name.slice(name.lastIndexOf("/") + 1);
  return lastSegment.includes(":") ? undefined : models.find((m) => m.id === `${name}:latest`);
}

function unavailableText(unavailable: { message: string }[]): string {
  return unavailable.map((u) => u.message).join("; ");
}

/** /api/pull, /api/ps and the like: managing models is the upstream's business. */
function unknownRoute(request: FastifyRequest): GatewayError {
  const path = request.url.split("?", 1)[0];
  return new GatewayError(
    "not_found",
    `agentgate does not serve ${request.method} ${path} (see docs/ollama-compatibility.md)`,
  );
}

/** Any failure as Ollama's `{"error":"message"}` with the matching status. */
function sendOllamaError(error: unknown, request: FastifyRequest, reply: FastifyReply): void {
  const { status, failure } = classify(error, request);
  if (failure.kind === "internal") request.log.error({ err: error }, "request failed");
  else if (failure.kind === "unavailable" || failure.kind === "upstream_error")
    request.log.warn({ error: failure.message }, "upstream failed");
  if (reply.sent || reply.raw.headersSent) return;
  if (failure.kind === "unauthenticated") reply.header("www-authenticate", 'Bearer realm="agentgate"');
  if (failure.retryAfterSeconds !== undefined) reply.header("retry-after", String(failure.retryAfterSeconds));
  void reply.code(status).type("application/json").send({ error: failure.message });
}

function classify(error: unknown, request: FastifyRequest): { status: number; failure: GatewayError } {
  const e = error as Partial<FastifyError> & { validation?: unknown[] };
  const refusedCaller = error instanceof GatewayError && ["unauthenticated", "resource_exhausted"].includes(error.kind);
  if (request.is404 && !refusedCaller) {
    // No such route: say so, whatever was wrong with the body the 404 handler parsed.
    return { status: 404, failure: unknownRoute(request) };
  }
  if (error instanceof GatewayError) return { status: error.status, failure: error };
  if (e.validation) return { status: 400, failure: invalidArgument(validationMessage(e.validation)) };
  if (e.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || e.code === "FST_ERR_CTP_INVALID_JSON_BODY") {
    return { status: 400, failure: invalidArgument("the request body is not valid JSON") };
  }
  if (e.code?.startsWith("FST_ERR_CTP") || (e.statusCode && e.statusCode >= 400 && e.statusCode < 500)) {
    return { status: e.statusCode ?? 400, failure: invalidArgument(e.message ?? "bad request") };
  }
  const failure = asGatewayError(error);
  return { status: failure.status, failure };
}

/** The first Ajv error as "invalid request: messages[0].role must be string". */
function validationMessage(errors: unknown[]): string {
  const first = (errors[0] ?? {}) as { instancePath?: string; message?: string; params?: { missingProperty?: string } };
  const segments = (first.instancePath ?? "").split("/").filter(Boolean);
  if (first.params?.missingProperty) segments.push(first.params.missingProperty);
  const field = segments.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), "");
  const what = first.params?.missingProperty ? "is required" : (first.message ?? "is invalid");
  return `invalid request: ${field || "body"} ${what}`;
}
