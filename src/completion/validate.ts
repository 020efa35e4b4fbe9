/**
 * Semantic rules of a completion request that both REST and RPC enforce (REST
 * checks types and ranges with JSON Schema first; RPC arrives typed but unchecked).
 * Field names in errors follow the OpenAI request, which both APIs mirror.
 */
import { invalidArgument } from "../errors/gateway-error.js";
import type { ChatRequest, CompletionRequest, EmbedRequest, GenerationOptions } from "./types.js";

const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
const MAX_MODEL_ID = 256;

function checkRange(value: number | undefined, min: number, max: number, param: string): void {
  if (value === undefined) return;
  if (!Number.isFinite(value) || value < min || value > max) {
    throw invalidArgument(`${param} must be between ${min} and ${max}, got ${value}`, param);
  }
}

function checkModel(model: string): void {
  if (model.length > MAX_MODEL_ID) throw invalidArgument(`model id is longer than ${MAX_MODEL_ID} characters`, "model");
  if (/[\s\x00-\x1f]/.test(model))
    throw invalidArgument("model id must not contain whitespace or control characters", "model");
}

export function validateOptions(o: GenerationOptions): void {
  checkRange(o.temperature, 0, 2, "temperature");
  checkRange(o.topP, 0, 1, "top_p");
  checkRange(o.presencePenalty, -2, 2, "presence_penalty");
  checkRange(o.frequencyPenalty, -2, 2, "frequency_penalty");
  if (o.maxTokens !== undefined && (!Number.isInteger(o.maxTokens) || o.maxTokens < 1)) {
    throw invalidArgument("max_tokens must be a positive integer", "max_tokens");
  }
  if (o.stop && o.stop.length > 4) throw invalidArgument("at most 4 stop sequences are allowed", "stop");
  if (o.stop?.some((s) => s.length === 0)) throw invalidArgument("stop sequences must not be empty", "stop");
  if (o.seed !== undefined && !Number.isSafeInteger(o.seed)) throw invalidArgument("seed must be an integer", "seed");
}

export function validateChatRequest(req: ChatRequest): void {
  checkModel(req.model);
  if (req.messages.length === 0) throw invalidArgument("messages must contain at least one message", "messages");
  const offeredCalls = new Set<string>();
  req.messages.forEach((m, i) => {
    const param = `messages[${i}]`;
    if (!["system", "user", "assistant", "tool"].includes(m.role)) {
      throw invalidArgument(`${param}.role must be one of system, developer, user, assistant, tool`, `${param}.role`);
    }
    if (m.role === "tool") {
      if (!m.toolCallId) throw invalidArgument("a tool message needs tool_call_id", `${param}.tool_call_id`);
    } else if (m.toolCallId) {
      throw invalidArgument("tool_call_id is only valid on tool messages", `${param}.tool_call_id`);
    }
    if (m.toolCalls?.length) {
      if (m.role !== "assistant")
        throw invalidArgument("only assistant messages carry tool_calls", `${param}.tool_calls`);
      m.toolCalls.forEach((tc, j) => {
        if (!tc.id) throw invalidArgument("a tool call needs an id", `${param}.tool_calls[${j}].id`);
        if (!TOOL_NAME.test(tc.name))
          throw invalidArgument("invalid function name", `${param}.tool_calls[${j}].function.name`);
        offeredCalls.add(tc.id);
      });
    }
    // A tool may legitimately return nothing (a command with no output): only system and user need text.
    if ((m.role === "system" || m.role === "user") && m.content.length === 0 && !m.images?.length) {
      throw invalidArgument(`${param}.content must not be empty`, `${param}.content`);
    }
    if (m.role === "assistant" && m.content.length === 0 && !m.toolCalls?.length) {
      throw invalidArgument("an assistant message needs content or tool_calls", `${param}.content`);
    }
  });
  const last = req.messages[req.messages.length - 1]!;
  if (last.role === "system" && req.messages.every((m) => m.role === "system")) {
    throw invalidArgument("messages must contain a user, assistant or tool message", "messages");
  }
  validateOptions(req.options);
  const names = new Set<string>();
  req.tools?.forEach((t, i) => {
    if (!TOOL_NAME.test(t.name)) {
      throw invalidArgument(
        "function names are 1-64 letters, digits, underscores or dashes",
        `tools[${i}].function.name`,
      );
    }
    if (names.has(t.name)) throw invalidArgument(`duplicate function name ${t.name}`, `tools[${i}].function.name`);
    names.add(t.name);
  });
  const choice = req.toolChoice;
  if (typeof choice === "object" && !names.has(choice.name)) {
    throw invalidArgument(`tool_choice names ${choice.name}, which is not in tools`, "tool_choice");
  }
  if ((choice === "required" || typeof choice === "object") && names.size === 0) {
    throw invalidArgument("tool_choice requires tools", "tool_choice");
  }
}

export function validateCompletionRequest(req: CompletionRequest): void {
  checkModel(req.model);
  validateOptions(req.options);
}

export function validateEmbedRequest(req: EmbedRequest): void {
  checkModel(req.model);
  if (req.inputs.length === 0) throw invalidArgument("input must not be empty", "input");
  if (req.inputs.length > 2048) throw invalidArgument("at most 2048 inputs per request", "input");
  req.inputs.forEach((s, i) => {
    if (s.length === 0) throw invalidArgument("inputs must not be empty strings", `input[${i}]`);
  });
}
