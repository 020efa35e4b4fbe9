/**
 * Ollama's native shapes (docs/api.md, api/types.go) <-> the neutral completion types. Request
 * bodies arrive schema-checked; the semantic rules shared with /v1 and RPC run afterwards
 * (completion/validate.ts). Where Ollama and the domain disagree on a representation, the
 * translation lives here: tool-call arguments are objects on the wire and JSON strings in the
 * domain; Ollama pairs a tool result with its call by `tool_name`, the domain by id.
 */
import { createHash } from "node:crypto";
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
  ToolCall,
  Usage,
} from "../../completion/types.js";
import { invalidArgument } from "../../errors/gateway-error.js";
import type { OllamaChatRequest, OllamaGenerateRequest, OllamaMessage, OllamaOptions } from "./schemas.js";

export function toOptions(o: OllamaOptions | null | undefined): GenerationOptions {
  const out: GenerationOptions = {};
  if (!o) return out;
  if (o.temperature !== undefined) out.temperature = o.temperature;
  if (o.top_p !== undefined) out.topP = o.top_p;
  if (o.top_k !== undefined) out.topK = o.top_k;
  // 0, -1 (unlimited) and -2 (fill the context) all mean "no limit of ours": leave it to the model.
  if (o.num_predict !== undefined && o.num_predict > 0) out.maxTokens = o.num_predict;
  if (o.stop?.length) out.stop = o.stop;
  if (o.seed !== undefined) out.seed = o.seed;
  if (o.num_ctx !== undefined) out.contextWindow = o.num_ctx;
  if (o.presence_penalty !== undefined) out.presencePenalty = o.presence_penalty;
  if (o.frequency_penalty !== undefined) out.frequencyPenalty = o.frequency_penalty;
  return out;
}

/**
 * `think` onto the domain's effort: true is Ollama's "medium" (ThinkValue.String), false is "none",
 * and "max" is the highest level the domain has.
 */
export function toReasoningEffort(think: boolean | string | undefined): ReasoningEffort | undefined {
  if (think === undefined) return undefined;
  if (think === true) return "medium";
  if (think === false) return "none";
  return think === "max" ? "high" : (think as ReasoningEffort);
}

function toResponseFormat(format: OllamaChatRequest["format"]): ResponseFormat | undefined {
  if (format === undefined || format === "") return undefined;
  if (format === "json") return { type: "json_object" };
  return { type: "json_schema", schema: format };
}

export function toDomainMessages(messages: OllamaMessage[]): ChatMessage[] {
  // Calls not yet answered, oldest first: an Ollama tool result names its tool (`tool_name`), and
  // may carry no id at all, so it answers the oldest open call of that name.
  const open: ToolCall[] = [];
  return messages.map((m, i) => {
    const lower = m.role.toLowerCase();
    // The domain has no developer role; OpenAI-minded clients send it, and it means system.
    const role = (lower === "developer" ? "system" : lower) as ChatMessage["role"];
    const out: ChatMessage = { role, content: m.content ?? "" };
    if (m.images?.length) out.images = m.images;
    if (m.thinking) out.reasoning = m.thinking;
    if (m.tool_calls?.length) {
      out.toolCalls = m.tool_calls.map((tc, j) => ({
        // Ids are optional in Ollama and required by the domain (and by OpenAI-style upstreams).
        id: tc.id || `call_${i}_${j}`,
        name: tc.function.name,
        arguments: JSON.stringify(tc.function.arguments ?? {}),
      }));
      open.push(...out.toolCalls);
    }
    if (role === "tool") {
      const k = open.findIndex((c) =>
        m.tool_call_id ? c.id === m.tool_call_id : !m.tool_name || c.name === m.tool_name,
      );
      const call = k >= 0 ? open.splice(k, 1)[0] : undefined;
      out.toolCallId = m.tool_call_id || call?.id || `call_${i}`;
      const name = m.tool_name || call?.name;
      if (name) out.name = name;
    }
    return out;
  });
}

function unsupported(field: string, why: string): never {
  throw invalidArgument(`${field} is not supported by agentgate: ${why}`, field, "unsupported_parameter");
}

export function toDomainChat(b: OllamaChatRequest): ChatRequest {
  if (b.logprobs) unsupported("logprobs", "no backend reports them through the gateway");
  const req: ChatRequest = {
    model: b.model,
    messages: toDomainMessages(b.messages ?? []),
    options: toOptions(b.options),
  };
  if (b.tools?.length) {
    req.tools = b.tools.map((t) => ({
      name: t.function.name,
      description: t.function.description,
      parameters: t.function.parameters,
    }));
  }
  const format = toResponseFormat(b.format);
  if (format) req.responseFormat = format;
  const effort = toReasoningEffort(b.think);
  if (effort) req.reasoningEffort = effort;
  return req;
}

const present = (v: unknown) =>
  v !== undefined && v !== null && v !== false && v !== "" && !(Array.isArray(v) && v.length === 0);

/**
 * /api/generate takes one of two routes. Without `raw` or `suffix`, Ollama itself renders the
 * request as a chat of [system, user] (server/routes.go, GenerateHandler), so it becomes a domain
 * chat: every backend then applies its chat template, as Ollama would. With `raw` or `suffix` it is
 * a plain text completion, which carries no system prompt, images, format or thinking.
 */
export function toDomainGenerate(
  b: OllamaGenerateRequest,
): { kind: "chat"; req: ChatRequest } | { kind: "complete"; req: CompletionRequest } {
  if (b.logprobs) unsupported("logprobs", "no backend reports them through the gateway");
  if (present(b.template)) unsupported("template", "backends apply their own prompt template");
  if (present(b.context)) unsupported("context", "it is deprecated in Ollama; send the history to /api/chat");
  if (b.raw || b.suffix) {
    for (const field of ["system", "images", "format", "think"] as const) {
      if (present(b[field])) unsupported(field, `not together with ${b.raw ? "raw" : "suffix"}`);
    }
    return {
      kind: "complete",
      req: {
        model: b.model,
        prompt: b.prompt ?? "",
        suffix: b.suffix || undefined,
        raw: b.raw || undefined,
        options: toOptions(b.options),
      },
    };
  }
  const messages: ChatMessage[] = [];
  if (b.system) messages.push({ role: "system", content: b.system });
  const user: ChatMessage = { role: "user", content: b.prompt ?? "" };
  if (b.images?.length) user.images = b.images;
  messages.push(user);
  const req: ChatRequest = { model: b.model, messages, options: toOptions(b.options) };
  const format = toResponseFormat(b.format);
  if (format) req.responseFormat = format;
  const effort = toReasoningEffort(b.think);
  if (effort) req.reasoningEffort = effort;
  return { kind: "chat", req };
}

/** keep_alive 0 with nothing to generate is Ollama's "unload" request; anything else is "load". */
export function loadReason(keepAlive: string | number | undefined): "load" | "unload" {
  return keepAlive === 0 || (typeof keepAlive === "string" && /^0+(\.0*)?[a-z]*$/i.test(keepAlive)) ? "unload" : "load";
}

/** Ollama's tool calls: whole, with object arguments, indexed within the reply. */
export function wireToolCalls(calls: ToolCall[], first = 0) {
  return calls.map((tc, i) => ({
    id: tc.id,
    function: { index: first + i, name: tc.name, arguments: parseArguments(tc.arguments) },
  }));
}

/**
 * Domain arguments are a JSON string. An upstream that produced something other than a JSON object
 * (an OpenAI-compatible model can) gets its text passed on as it is: dropping it to `{}` would hide
 * the fault from the caller, and failing the whole answer for it would lose the rest.
 */
function parseArguments(args: string): unknown {
  try {
    const parsed: unknown = JSON.parse(args || "{}");
    if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) return parsed;
  } catch {
    // fall through
  }
  return args;
}

/** Ollama says "stop" also when the model called tools; it has no other reasons of its own. */
export function doneReason(r: FinishReason): string {
  return r === "tool_calls" ? "stop" : r;
}

/**
 * The durations of a reply, measured at the gateway in nanoseconds. Ollama's split does not exist
 * here, so each is the nearest thing agentgate can see: load = routing the request to a backend,
 * prompt eval = waiting for the upstream's first event (which includes any model load upstream),
 * eval = first event to last.
 */
export class Durations {
  private readonly start = process.hrtime.bigint();
  private routed: bigint | undefined;
  private first: bigint | undefined;

  markRouted(): void {
    this.routed ??= process.hrtime.bigint();
  }

  markEvent(): void {
    this.first ??= process.hrtime.bigint();
  }

  metrics(usage: Usage | undefined) {
    const end = process.hrtime.bigint();
    const routed = this.routed ?? end;
    const first = this.first ?? end;
    return {
      total_duration: Number(end - this.start),
      load_duration: Number(routed - this.start),
      prompt_eval_count: usage?.promptTokens ?? 0,
      prompt_eval_duration: Number(first - routed),
      eval_count: usage?.completionTokens ?? 0,
      eval_duration: Number(end - first),
    };
  }

  /** Nanoseconds since the request was taken up. */
  elapsed(): number {
    return Number(process.hrtime.bigint() - this.start);
  }
}

const CAPABILITY: Record<ModelCapability, string | undefined> = {
  chat: "completion",
  completion: "completion",
  embedding: "embedding",
  tools: "tools",
  vision: "vision",
  thinking: "thinking",
};

function modifiedAt(m: ModelInfo): string {
  return new Date(m.created * 1000).toISOString();
}

/** `details` of /api/tags and /api/show. Only Ollama backends serve GGUF files. */
function details(m: ModelInfo, backendKind: string | undefined) {
  return {
    parent_model: "",
    format: backendKind === "ollama" ? "gguf" : "",
    family: m.family ?? "",
    families: m.family ? [m.family] : [],
    parameter_size: m.parameterSize ?? "",
    quantization_level: m.quantization ?? "",
  };
}

/** One /api/tags entry. */
export function tagsEntry(m: ModelInfo, backendKind: string | undefined) {
  return {
    name: m.id,
    model: m.id,
    modified_at: modifiedAt(m),
    size: m.sizeBytes ?? 0,
    // The listing carries no content digest: a stable stand-in that changes when the model does.
    digest: createHash("sha256")
      .update(`${m.id}\n${m.created}\n${m.sizeBytes ?? 0}`)
      .digest("hex"),
    details: details(m, backendKind),
  };
}

/** The /api/show body: what the listing knows (no Modelfile, template or parameters). */
export function showBody(m: ModelInfo, backendKind: string | undefined) {
  const arch = m.family || "unknown";
  const modelInfo: Record<string, unknown> = { "general.architecture": arch };
  if (m.contextWindow) modelInfo[`${arch}.context_length`] = m.contextWindow;
  const capabilities = [...new Set(m.capabilities.map((c) => CAPABILITY[c]).filter((c) => c !== undefined))];
  return {
    details: details(m, backendKind),
    model_info: modelInfo,
    capabilities,
    modified_at: modifiedAt(m),
  };
}
