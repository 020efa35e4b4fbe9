/**
 * agentgate.v1 CompletionService messages <-> the neutral completion types.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import {
  ChatMessageSchema,
  FinishReason as PbFinishReason,
  ModelCapability as PbCapability,
  ModelSchema,
  ReasoningEffort as PbReasoningEffort,
  ResponseFormatType,
  Role as PbRole,
  ToolCallSchema,
  ToolChoiceMode,
  UsageSchema,
  type ChatMessage as PbChatMessage,
  type ChatRequest as PbChatRequest,
  type CompleteRequest as PbCompleteRequest,
  type GenerationOptions as PbOptions,
  type Model as PbModel,
  type ToolCall as PbToolCall,
  type Usage as PbUsage,
} from "../../gen/agentgate/v1/completion_service_pb.js";
import { invalidArgument } from "../errors/gateway-error.js";
import type {
  ChatMessage,
  ChatRequest,
  CompletionRequest,
  FinishReason,
  GenerationOptions,
  ModelCapability,
  ModelInfo,
  ReasoningEffort,
  ResponseFormat,
  Role,
  ToolCall,
  ToolChoice,
  Usage,
} from "../completion/types.js";

const ROLES: Partial<Record<PbRole, Role>> = {
  [PbRole.SYSTEM]: "system",
  [PbRole.USER]: "user",
  [PbRole.ASSISTANT]: "assistant",
  [PbRole.TOOL]: "tool",
};

function toMessage(m: PbChatMessage, i: number): ChatMessage {
  const role = ROLES[m.role];
  if (!role)
    throw invalidArgument(
      `messages[${i}].role must be set (ROLE_SYSTEM, ROLE_USER, ROLE_ASSISTANT or ROLE_TOOL)`,
      `messages[${i}].role`,
    );
  const out: ChatMessage = { role, content: m.content };
  if (m.toolCalls.length)
    out.toolCalls = m.toolCalls.map((tc) => ({ id: tc.id, name: tc.name, arguments: tc.arguments || "{}" }));
  if (m.toolCallId) out.toolCallId = m.toolCallId;
  if (m.name) out.name = m.name;
  if (m.reasoning) out.reasoning = m.reasoning;
  if (m.images.length) out.images = m.images.map((b) => Buffer.from(b).toString("base64"));
  return out;
}

function toOptions(o: PbOptions | undefined): GenerationOptions {
  if (!o) return {};
  const out: GenerationOptions = {};
  if (o.temperature !== undefined) out.temperature = o.temperature;
  if (o.topP !== undefined) out.topP = o.topP;
  if (o.maxTokens !== undefined) out.maxTokens = o.maxTokens;
  if (o.stop.length) out.stop = o.stop;
  if (o.seed !== undefined) out.seed = Number(o.seed);
  if (o.presencePenalty !== undefined) out.presencePenalty = o.presencePenalty;
  if (o.frequencyPenalty !== undefined) out.frequencyPenalty = o.frequencyPenalty;
  if (o.topK !== undefined) out.topK = o.topK;
  if (o.contextWindow !== undefined) out.contextWindow = o.contextWindow;
  return out;
}

/** ChatRequest and ChatStreamRequest share their fields. */
export function toChatRequest(r: Omit<PbChatRequest, "$typeName">): ChatRequest {
  const req: ChatRequest = { model: r.model, messages: r.messages.map(toMessage), options: toOptions(r.options) };
  if (r.tools.length) {
    req.tools = r.tools.map((t) => ({
      name: t.name,
      description: t.description || undefined,
      parameters: t.parameters as Record<string, unknown> | undefined,
      strict: t.strict || undefined,
    }));
  }
  const choice = r.toolChoice?.choice;
  if (choice?.case === "functionName") req.toolChoice = { name: choice.value };
  else if (choice?.case === "mode") {
    const modes: Partial<Record<ToolChoiceMode, ToolChoice>> = {
      [ToolChoiceMode.AUTO]: "auto",
      [ToolChoiceMode.NONE]: "none",
      [ToolChoiceMode.REQUIRED]: "required",
    };
    req.toolChoice = modes[choice.value];
  }
  const f = r.responseFormat;
  if (f && f.type !== ResponseFormatType.UNSPECIFIED) {
    const formats: Record<ResponseFormatType, () => ResponseFormat> = {
      [ResponseFormatType.UNSPECIFIED]: () => ({ type: "text" }),
      [ResponseFormatType.TEXT]: () => ({ type: "text" }),
      [ResponseFormatType.JSON_OBJECT]: () => ({ type: "json_object" }),
      [ResponseFormatType.JSON_SCHEMA]: () => {
        if (!f.jsonSchema)
          throw invalidArgument(
            "response_format.json_schema is required for RESPONSE_FORMAT_TYPE_JSON_SCHEMA",
            "response_format.json_schema",
          );
        return {
          type: "json_schema",
          schema: f.jsonSchema as Record<string, unknown>,
          name: f.schemaName || undefined,
          strict: f.strict || undefined,
        };
      },
    };
    req.responseFormat = formats[f.type]();
  }
  const effort = EFFORTS[r.reasoningEffort];
  if (effort) req.reasoningEffort = effort;
  if (r.conversationId) req.conversationId = r.conversationId;
  return req;
}

const EFFORTS: Partial<Record<PbReasoningEffort, ReasoningEffort>> = {
  [PbReasoningEffort.NONE]: "none",
  [PbReasoningEffort.LOW]: "low",
  [PbReasoningEffort.MEDIUM]: "medium",
  [PbReasoningEffort.HIGH]: "high",
};

export function toCompletionRequest(r: Omit<PbCompleteRequest, "$typeName">): CompletionRequest {
  return {
    model: r.model,
    prompt: r.prompt,
    suffix: r.suffix || undefined,
    raw: r.raw || undefined,
    options: toOptions(r.options),
  };
}

export function pbToolCalls(calls: ToolCall[] | undefined): PbToolCall[] {
  return (calls ?? []).map((tc) => create(ToolCallSchema, { id: tc.id, name: tc.name, arguments: tc.arguments }));
}

export function pbMessage(m: ChatMessage): PbChatMessage {
  return create(ChatMessageSchema, {
    role: PbRole.ASSISTANT,
    content: m.content,
    toolCalls: pbToolCalls(m.toolCalls),
    reasoning: m.reasoning ?? "",
  });
}

export function pbUsage(u: Usage | undefined): PbUsage | undefined {
  return u
    ? create(UsageSchema, {
        promptTokens: u.promptTokens,
        completionTokens: u.completionTokens,
        totalTokens: u.totalTokens,
        cachedPromptTokens: u.cachedTokens ?? 0,
        reasoningTokens: u.reasoningTokens ?? 0,
      })
    : undefined;
}

export function pbFinishReason(f: FinishReason): PbFinishReason {
  return {
    stop: PbFinishReason.STOP,
    length: PbFinishReason.LENGTH,
    tool_calls: PbFinishReason.TOOL_CALLS,
    content_filter: PbFinishReason.CONTENT_FILTER,
  }[f];
}

export const pbTimestamp = (unixSeconds: number) => timestampFromMs(unixSeconds * 1000);

const CAPS: Record<ModelCapability, PbCapability> = {
  chat: PbCapability.CHAT,
  completion: PbCapability.COMPLETION,
  embedding: PbCapability.EMBEDDING,
  tools: PbCapability.TOOLS,
  vision: PbCapability.VISION,
  thinking: PbCapability.THINKING,
};

export function pbModel(m: ModelInfo): PbModel {
  return create(ModelSchema, {
    id: m.id,
    backend: m.backend,
    ownedBy: m.ownedBy,
    created: pbTimestamp(m.created),
    contextWindow: m.contextWindow ?? 0,
    capabilities: m.capabilities.map((c) => CAPS[c]),
    family: m.family ?? "",
    parameterSize: m.parameterSize ?? "",
    quantization: m.quantization ?? "",
    sizeBytes: BigInt(m.sizeBytes ?? 0),
  });
}
