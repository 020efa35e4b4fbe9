/**
 * The OpenAI-compatible REST/SSE shim: /v1/chat/completions, /v1/completions,
 * /v1/models, /v1/models/{id}, /v1/embeddings. Thin: validate, translate, call the
 * completion gateway, translate back.
 */
import type { FastifyInstance, FastifyReply } from "fastify";
import type { ChatStream, CompletionGateway } from "../../completion/completion-gateway.js";
import type { RetrievalResult } from "../../retrieval/types.js";
import { validateChatRequest, validateCompletionRequest, validateEmbedRequest } from "../../completion/validate.js";
import { GatewayError } from "../../errors/gateway-error.js";
import type { Metrics } from "../../observability/metrics.js";
import { codexModelCatalog, type CodexCatalogOptions } from "../../codex/model-catalog.js";
import { retrievalRequested, type RetrievalChat } from "../../retrieval/retrieval-chat.js";
import { clientGone } from "../client-gone.js";
import { pipeEvents } from "../pipe-events.js";
import { SseStream } from "../sse.js";
import {
  ChatCompletionRequest,
  ChatCompletionResponse,
  CompletionRequest,
  CompletionResponse,
  EmbeddingRequest,
  EmbeddingResponse,
  ErrorResponse,
  errorResponses,
  ModelList,
  ModelObject,
} from "./schemas.js";
import {
  chatChunk,
  chatCompletionBody,
  chatUsageChunk,
  completionBody,
  completionChunk,
  modelObject,
  toDomainChat,
  toDomainCompletion,
  wireToolCalls,
  wireUsage,
} from "./translate.js";
import { toRetrievalOptions, wireRetrievalContext } from "./retrieval-translate.js";

export interface OpenAIRoutesDeps {
  gateway: CompletionGateway;
  /** Chats with a `retrieval` field or a `context/` model id go here. */
  retrievalChat: RetrievalChat;
  metrics: Metrics;
  /** Aborted when the shutdown grace period ends: open streams finish with an error event. */
  shutdown: AbortSignal;
  /** How GET /v1/models describes models to the Codex CLI. */
  catalog: CodexCatalogOptions;
}

const TAGS = ["openai"];

export async function registerOpenAIRoutes(app: FastifyInstance, deps: OpenAIRoutesDeps): Promise<void> {
  const { gateway, retrievalChat, metrics, shutdown, catalog } = deps;

  app.post<{ Body: ChatCompletionRequest }>(
    "/v1/chat/completions",
    {
      schema: {
        tags: TAGS,
        summary: "Create a chat completion (stream: true answers with server-sent events)",
        body: ChatCompletionRequest,
        response: { 200: ChatCompletionResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const req = toDomainChat(body);
      validateChatRequest(req);
      const retrieval = retrievalRequested(req.model, toRetrievalOptions(body.retrieval));
      if (!body.stream) {
        if (!retrieval) return chatCompletionBody(await gateway.chat(req, clientGone(reply)));
        const result = await retrievalChat.chat(req, retrieval.options, clientGone(reply));
        return { ...chatCompletionBody(result), retrieval_context: wireRetrievalContext(result.retrieval) };
      }
      const includeUsage = body.stream_options?.include_usage === true;
      const sse = new SseStream(reply, shutdown);
      const s: ChatStream & { retrieval?: RetrievalResult } = retrieval
        ? await retrievalChat.chatStream(req, retrieval.options, sse.signal)
        : await gateway.chatStream(req, sse.signal);
      let roleSent = false;
      let toolCallsSent = 0;
      await pipeEvents(
        sse,
        s.events,
        async (e) => {
          if (!roleSent) {
            roleSent = true;
            const first = chatChunk(s, { role: "assistant", content: "" }, null, includeUsage);
            // The citations ride on the first chunk, before any text.
            if (s.retrieval) first.retrieval_context = wireRetrievalContext(s.retrieval);
            await sse.send(first);
          }
          if (e.type === "delta") {
            const delta: Record<string, unknown> = {};
            if (e.content) delta.content = e.content;
            if (e.reasoning) delta.reasoning_content = e.reasoning;
            await sse.send(chatChunk(s, delta, null, includeUsage));
          } else if (e.type === "tool_calls") {
            const calls = wireToolCalls(e.toolCalls, toolCallsSent);
            toolCallsSent += calls.length;
            await sse.send(chatChunk(s, { tool_calls: calls }, null, includeUsage));
          } else {
            await sse.send(chatChunk(s, {}, e.finishReason, includeUsage));
            if (includeUsage) {
              await sse.send(chatUsageChunk(s, e.usage ?? { promptTokens: 0, completionTokens: 0, totalTokens: 0 }));
            }
          }
        },
        metrics.streamStarted("sse"),
      );
      return reply;
    },
  );

  app.post<{ Body: CompletionRequest }>(
    "/v1/completions",
    {
      schema: {
        tags: TAGS,
        summary: "Create a text completion (legacy; stream: true answers with server-sent events)",
        body: CompletionRequest,
        response: { 200: CompletionResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const req = toDomainCompletion(body);
      validateCompletionRequest(req);
      if (!body.stream) return completionBody(await gateway.complete(req, clientGone(reply)));
      const includeUsage = body.stream_options?.include_usage === true;
      const sse = new SseStream(reply, shutdown);
      const s = await gateway.completeStream(req, sse.signal);
      await pipeEvents(
        sse,
        s.events,
        async (e) => {
          if (e.type === "delta") {
            await sse.send(completionChunk(s, e.text, null));
            return;
          }
          await sse.send(completionChunk(s, "", e.finishReason));
          if (includeUsage && e.usage)
            await sse.send({ ...completionChunk(s, "", null), choices: [], usage: wireUsage(e.usage) });
        },
        metrics.streamStarted("sse"),
      );
      return reply;
    },
  );

  app.get(
    "/v1/models",
    {
      schema: {
        tags: TAGS,
        summary: "List the models of every backend",
        response: { 200: ModelList, ...errorResponses },
      },
    },
    async (_request, reply) => {
      const listing = await gateway.listModels(clientGone(reply));
      if (listing.models.length === 0 && listing.unavailable.length > 0) {
        throw new GatewayError(
          "unavailable",
          `no backend answered: ${listing.unavailable.map((u) => u.message).join("; ")}`,
        );
      }
      // One body for both readers: OpenAI clients read `data`, the Codex CLI's model_catalog_url `models`.
      return {
        object: "list",
        data: listing.models.map(modelObject),
        models: codexModelCatalog(listing.models, catalog).models,
      };
    },
  );

  app.get<{ Params: { "*": string } }>(
    "/v1/models/*",
    {
      schema: {
        tags: TAGS,
        summary: "Describe one model (ids may contain slashes)",
        response: { 200: ModelObject, 404: ErrorResponse, 502: ErrorResponse, 503: ErrorResponse },
      },
    },
    async (request, reply) => {
      const id = request.params["*"];
      const listing = await gateway.listModels(clientGone(reply));
      const found = listing.models.find((m) => m.id === id);
      if (!found) {
        if (listing.unavailable.length > 0) {
          // The model may belong to a backend that did not answer: say so instead of "does not exist".
          throw new GatewayError(
            "unavailable",
            `cannot tell whether ${JSON.stringify(id)} exists: ${listing.unavailable.map((u) => u.message).join("; ")}`,
            { code: "upstream_unavailable" },
          );
        }
        throw new GatewayError("not_found", `the model ${JSON.stringify(id)} does not exist`, {
          param: "model",
          code: "model_not_found",
        });
      }
      return modelObject(found);
    },
  );

  app.post<{ Body: EmbeddingRequest }>(
    "/v1/embeddings",
    {
      schema: {
        tags: TAGS,
        summary: "Create embeddings",
        body: EmbeddingRequest,
        response: { 200: EmbeddingResponse, ...errorResponses },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const inputs = typeof body.input === "string" ? [body.input] : body.input;
      const req = { model: body.model, inputs, dimensions: body.dimensions };
      validateEmbedRequest(req);
      const result = await gateway.embed(req, clientGone(reply));
      const base64 = body.encoding_format === "base64";
      return {
        object: "list",
        model: result.requestedModel,
        data: result.embeddings.map((embedding, index) => ({
          object: "embedding",
          index,
          embedding: base64 ? Buffer.from(new Float32Array(embedding).buffer).toString("base64") : embedding,
        })),
        usage: { prompt_tokens: result.usage.promptTokens, total_tokens: result.usage.totalTokens },
      };
    },
  );
}
