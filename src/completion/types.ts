/**
 * Backend-neutral completion types. REST (OpenAI shapes), RPC (protobuf) and the
 * backends (Ollama, OpenAI-compatible) all translate to and from these, so each
 * translation is written once.
 */
import type { CancelSignal } from "../util/cancel-signal.js";

export type Role = "system" | "user" | "assistant" | "tool";

export interface ToolCall {
  id: string;
  name: string;
  /** A JSON object serialised as a string (OpenAI's form). */
  arguments: string;
}

export interface ChatMessage {
  role: Role;
  content: string;
  toolCalls?: ToolCall[];
  toolCallId?: string;
  name?: string;
  reasoning?: string;
  /** Base64-encoded images for vision models. */
  images?: string[];
}

export interface ToolSpec {
  name: string;
  description?: string;
  parameters?: Record<string, unknown>;
  strict?: boolean;
}

export type ToolChoice = "auto" | "none" | "required" | { name: string };

export type ResponseFormat =
  | { type: "text" }
  | { type: "json_object" }
  | { type: "json_schema"; schema: Record<string, unknown>; name?: string; strict?: boolean };

export interface GenerationOptions {
  temperature?: number;
  topP?: number;
  maxTokens?: number;
  stop?: string[];
  seed?: number;
  presencePenalty?: number;
  frequencyPenalty?: number;
  topK?: number;
  contextWindow?: number;
}

export type ReasoningEffort = "none" | "low" | "medium" | "high";

export interface ChatRequest {
  /**
   * Model id as the backend knows it (routing prefix already removed). Empty when the id
   * named only a backend ("codex"): that backend's own default model.
   */
  model: string;
  messages: ChatMessage[];
  tools?: ToolSpec[];
  toolChoice?: ToolChoice;
  responseFormat?: ResponseFormat;
  options: GenerationOptions;
  /** Unset: the model's default. */
  reasoningEffort?: ReasoningEffort;
  /**
   * A client-chosen conversation id. Stateful backends (Codex) keep their thread under it and
   * then need only the messages after their last answer; stateless backends ignore it.
   */
  conversationId?: string;
}

export interface CompletionRequest {
  model: string;
  prompt: string;
  suffix?: string;
  raw?: boolean;
  options: GenerationOptions;
}

export type FinishReason = "stop" | "length" | "tool_calls" | "content_filter";

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  totalTokens: number;
  /** Of promptTokens, served from the upstream's prompt cache (when it says). */
  cachedTokens?: number;
  /** Of completionTokens, spent on reasoning (when the upstream says). */
  reasoningTokens?: number;
}

/** One step of a streamed chat answer. `done` is always last. */
export type ChatEvent =
  | { type: "delta"; content?: string; reasoning?: string }
  | { type: "tool_calls"; toolCalls: ToolCall[] }
  | { type: "done"; finishReason: FinishReason; usage?: Usage };

/** One step of a streamed text completion. `done` is always last. */
export type TextEvent = { type: "delta"; text: string } | { type: "done"; finishReason: FinishReason; usage?: Usage };

export interface EmbedRequest {
  model: string;
  inputs: string[];
  dimensions?: number;
}

export interface EmbedResult {
  model: string;
  embeddings: number[][];
  usage: Usage;
}

export type ModelCapability = "chat" | "completion" | "embedding" | "tools" | "vision" | "thinking";

export interface ModelInfo {
  /** The id clients send: unique across backends. */
  id: string;
  backend: string;
  ownedBy: string;
  /** Unix seconds. */
  created: number;
  contextWindow?: number;
  capabilities: ModelCapability[];
  family?: string;
  parameterSize?: string;
  quantization?: string;
  sizeBytes?: number;
}

export interface BackendHealth {
  ok: boolean;
  detail: string;
  latencyMs: number;
}

export interface Backend {
  readonly name: string;
  readonly kind: "ollama" | "openai" | "codex";
  /** Human-readable upstream, used in error messages ("ollama at http://..."). */
  readonly describe: string;
  /**
   * Backends always stream from their upstream, also for callers that want one
   * reply: the idle timeout then bounds silence, not the whole generation.
   */
  chat(req: ChatRequest, signal: CancelSignal): AsyncIterable<ChatEvent>;
  complete(req: CompletionRequest, signal: CancelSignal): AsyncIterable<TextEvent>;
  embed(req: EmbedRequest, signal: CancelSignal): Promise<EmbedResult>;
  listModels(signal: CancelSignal): Promise<ModelInfo[]>;
  health(signal: CancelSignal): Promise<BackendHealth>;
}
