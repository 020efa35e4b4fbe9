/**
 * CompletionService RPC handlers: translate, validate, delegate to the
 * completion gateway. Errors become Connect codes in the error interceptor.
 */
import { create } from "@bufbuild/protobuf";
import type { HandlerContext, ServiceImpl } from "@connectrpc/connect";
import {
  BackendErrorSchema,
  ChatResponseSchema,
  ChatStreamResponseSchema,
  CompleteResponseSchema,
  CompleteStreamResponseSchema,
  CompletionService,
  EmbeddingSchema,
  EmbedResponseSchema,
  FinishReason as PbFinishReason,
  GetArtifactResponseSchema,
  ListArtifactsResponseSchema,
  ListModelsResponseSchema,
  type RetrievalResult as PbRetrievalResult,
} from "../../gen/agentgate/v1/completion_service_pb.js";
import type { ChatResult, ChatStream, CompletionGateway } from "../completion/completion-gateway.js";
import type { RetrievalResult } from "../retrieval/types.js";
import { validateChatRequest, validateCompletionRequest, validateEmbedRequest } from "../completion/validate.js";
import type { Metrics } from "../observability/metrics.js";
import type { ArtifactStore } from "../retrieval/artifact-store.js";
import { retrievalRequested, type RetrievalChat } from "../retrieval/retrieval-chat.js";
import { pbArtifact, pbRetrievalResult, toRetrievalOptions } from "./retrieval-convert.js";
import {
  pbFinishReason,
  pbMessage,
  pbModel,
  pbTimestamp,
  pbToolCalls,
  pbUsage,
  toChatRequest,
  toCompletionRequest,
} from "./completion-convert.js";

export interface CompletionServiceDeps {
  gateway: CompletionGateway;
  /** Chats that ask for retrieval (a `retrieval` message or a `context/` model id) go here. */
  retrievalChat: RetrievalChat;
  artifacts: ArtifactStore;
  metrics: Metrics;
}

export function completionService(deps: CompletionServiceDeps): ServiceImpl<typeof CompletionService> {
  const { gateway, retrievalChat, artifacts, metrics } = deps;
  return {
    async chat(request, ctx: HandlerContext) {
      const req = toChatRequest(request);
      validateChatRequest(req);
      const retrieval = retrievalRequested(req.model, toRetrievalOptions(request.retrieval));
      const r: ChatResult & { retrieval?: RetrievalResult } = retrieval
        ? await retrievalChat.chat(req, retrieval.options, ctx.signal)
        : await gateway.chat(req, ctx.signal);
      return create(ChatResponseSchema, {
        id: r.id,
        model: r.model,
        backend: r.backend,
        created: pbTimestamp(r.created),
        message: pbMessage(r.message),
        finishReason: pbFinishReason(r.finishReason),
        usage: pbUsage(r.usage),
        retrieval: r.retrieval && pbRetrievalResult(r.retrieval),
      });
    },

    async *chatStream(request, ctx) {
      const req = toChatRequest(request);
      validateChatRequest(req);
      const retrieval = retrievalRequested(req.model, toRetrievalOptions(request.retrieval));
      const s: ChatStream & { retrieval?: RetrievalResult } = retrieval
        ? await retrievalChat.chatStream(req, retrieval.options, ctx.signal)
        : await gateway.chatStream(req, ctx.signal);
      const end = metrics.streamStarted("rpc");
      // The citations lead the stream, before any delta.
      let first: PbRetrievalResult | undefined = s.retrieval && pbRetrievalResult(s.retrieval);
      try {
        for await (const e of s.events) {
          const frame = create(ChatStreamResponseSchema, { id: s.id, model: s.model, backend: s.backend });
          frame.retrieval = first;
          first = undefined;
          if (e.type === "delta") {
            frame.contentDelta = e.content ?? "";
            frame.reasoningDelta = e.reasoning ?? "";
          } else if (e.type === "tool_calls") {
            frame.toolCalls = pbToolCalls(e.toolCalls);
          } else {
            frame.finishReason = pbFinishReason(e.finishReason);
            frame.usage = pbUsage(e.usage);
          }
          yield frame;
        }
      } finally {
        end();
      }
    },

    async complete(request, ctx) {
      const req = toCompletionRequest(request);
      validateCompletionRequest(req);
      const r = await gateway.complete(req, ctx.signal);
      return create(CompleteResponseSchema, {
        id: r.id,
        model: r.model,
        backend: r.backend,
        created: pbTimestamp(r.created),
        text: r.text,
        finishReason: pbFinishReason(r.finishReason),
        usage: pbUsage(r.usage),
      });
    },

    async *completeStream(request, ctx) {
      const req = toCompletionRequest(request);
      validateCompletionRequest(req);
      const s = await gateway.completeStream(req, ctx.signal);
      const end = metrics.streamStarted("rpc");
      try {
        for await (const e of s.events) {
          yield create(CompleteStreamResponseSchema, {
            id: s.id,
            model: s.model,
            backend: s.backend,
            textDelta: e.type === "delta" ? e.text : "",
            finishReason: e.type === "done" ? pbFinishReason(e.finishReason) : PbFinishReason.UNSPECIFIED,
            usage: e.type === "done" ? pbUsage(e.usage) : undefined,
          });
        }
      } finally {
        end();
      }
    },

    async listModels(request, ctx) {
      const listing = await gateway.listModels(ctx.signal, request.backend || undefined);
      return create(ListModelsResponseSchema, {
        models: listing.models.map(pbModel),
        unavailableBackends: listing.unavailable.map((u) => create(BackendErrorSchema, u)),
      });
    },

    async embed(request, ctx) {
      const req = { model: request.model, inputs: request.inputs, dimensions: request.dimensions };
      validateEmbedRequest(req);
      const r = await gateway.embed(req, ctx.signal);
      return create(EmbedResponseSchema, {
        model: r.requestedModel,
        backend: r.backend,
        embeddings: r.embeddings.map((values) => create(EmbeddingSchema, { values })),
        usage: pbUsage(r.usage),
      });
    },

    async listArtifacts(request) {
      const page = await artifacts.list({
        pageSize: request.pageSize,
        pageToken: request.pageToken,
        model: request.model,
      });
      return create(ListArtifactsResponseSchema, {
        artifacts: page.artifacts.map(pbArtifact),
        nextPageToken: page.nextPageToken,
      });
    },

    async getArtifact(request) {
      return create(GetArtifactResponseSchema, { artifact: pbArtifact(await artifacts.get(request.id)) });
    },
  };
}
