/**
 * A Responses API request -> the neutral ChatRequest. The API is item-based and stateless
 * here: Codex replays the whole conversation every turn (notes/codex.md §1), so items become
 * chat messages again. Consecutive assistant-side items (reasoning, assistant message, tool
 * calls) fold into one assistant message, which is how chat upstreams (Ollama) expect a turn.
 *
 * Tools: flat function tools pass through; `namespace` tools are expanded to
 * `<namespace>__<name>` functions; `custom` tools (Codex's freeform apply_patch) become a
 * function with one string parameter `input`; hosted tools (web_search, tool_search ...) cannot
 * run on a local model and are dropped with a note. `ToolNames` remembers the mapping so the
 * model's calls are turned back into `function_call` (with namespace) or `custom_tool_call`.
 */
import { GatewayError, invalidArgument } from "../../errors/gateway-error.js";
import type { ChatMessage, ChatRequest, ResponseFormat, ToolChoice, ToolSpec } from "../../completion/types.js";
import { toReasoningEffort } from "../openai/translate.js";
import type { ResponsesRequest } from "./schemas.js";

/** What a tool name the model sees stands for on the Responses side. */
export type ToolTarget = { kind: "function"; name: string; namespace?: string } | { kind: "custom"; name: string };

export type ToolNames = Map<string, ToolTarget>;

export interface TranslatedRequest {
  chat: ChatRequest;
  toolNames: ToolNames;
  /** Things dropped or adapted, for the request's log line. */
  notes: string[];
}

/**
 * Item and tool types this translation does not know are skipped (with a note), not refused: new
 * ones appear with every Codex release, and Codex itself skips unknown items. Typical: hosted tools
 * (web_search, tool_search, file_search, code_interpreter, mcp ...), which OpenAI's servers run and a
 * local model cannot, and their replayed calls (web_search_call, tool_search_output ...).
 */
const SKIPPABLE_TYPE = /^[a-z][a-z0-9_]{0,63}$/;

const NAMESPACE_SEPARATOR = "__";

const EFFORTS = new Set(["none", "minimal", "low", "medium", "high", "xhigh"]);

type Item = Record<string, unknown>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

function requireString(v: unknown, param: string): string {
  if (typeof v !== "string") throw invalidArgument(`${param} must be a string`, param);
  return v;
}

/** Text and images of a message's content (a string or an array of parts). */
function contentOf(content: unknown, param: string): { text: string; images: string[] } {
  if (content === undefined || content === null) return { text: "", images: [] };
  if (typeof content === "string") return { text: content, images: [] };
  if (!Array.isArray(content)) throw invalidArgument(`${param} must be a string or an array of content parts`, param);
  const texts: string[] = [];
  const images: string[] = [];
  content.forEach((part: unknown, j) => {
    const p = `${param}[${j}]`;
    if (!isObject(part)) throw invalidArgument(`${p} must be an object`, p);
    switch (part.type) {
      case "input_text":
      case "output_text":
      case "text":
      case "summary_text":
      case "reasoning_text":
        texts.push(requireString(part.text, `${p}.text`));
        break;
      case "refusal":
        texts.push(requireString(part.refusal, `${p}.refusal`));
        break;
      case "input_image": {
        const url = part.image_url;
        const m = typeof url === "string" ? /^data:image\/[a-z0-9.+-]+;base64,([A-Za-z0-9+/=\s]+)$/i.exec(url) : null;
        if (!m) {
          throw invalidArgument(
            "input_image needs image_url as a data: URL with base64 image data; remote URLs and file ids are not fetched",
            `${p}.image_url`,
          );
        }
        images.push(m[1]!.replace(/\s+/g, ""));
        break;
      }
      default:
        throw invalidArgument(
          `${p}.type ${JSON.stringify(part.type)} is not supported (use input_text, output_text or input_image)`,
          `${p}.type`,
        );
    }
  });
  return { text: texts.join("\n"), images };
}

/**
 * Arguments of a replayed function call. A model may have produced arguments that are not a JSON
 * object (the client then answered with an error); the call is kept in the history, wrapped, so
 * the replay is not refused.
 */
function replayedArguments(args: unknown): string {
  const raw = typeof args === "string" ? args : args === undefined ? "{}" : JSON.stringify(args);
  try {
    const parsed: unknown = JSON.parse(raw || "{}");
    if (isObject(parsed)) return raw || "{}";
  } catch {
    // fall through
  }
  return JSON.stringify({ unparsed_arguments: raw });
}

function wireToolName(name: string, namespace?: string): string {
  return namespace ? `${namespace}${NAMESPACE_SEPARATOR}${name}` : name;
}

/**
 * A replayed call's name as chat upstreams accept it. Models sometimes invent names
 * ("functions.exec_command"); the client already answered such a call with an error, and
 * refusing the replay would end the conversation for good.
 */
function replayedToolName(name: string): string {
  return name.replace(/[^a-zA-Z0-9_-]/g, "_").slice(0, 64) || "unnamed_tool";
}

function toMessages(body: ResponsesRequest, notes: string[]): ChatMessage[] {
  const out: ChatMessage[] = [];
  if (body.instructions) out.push({ role: "system", content: body.instructions });
  if (typeof body.input === "string") {
    out.push({ role: "user", content: body.input });
    return out;
  }
  let turn: ChatMessage | undefined; // the assistant turn being assembled
  const assistant = (): ChatMessage => {
    if (!turn) {
      turn = { role: "assistant", content: "" };
      out.push(turn);
    }
    return turn;
  };
  const dropped = new Map<string, number>();
  body.input.forEach((raw, i) => {
    const item = raw as Item;
    const param = `input[${i}]`;
    const type = item.type ?? (item.role !== undefined ? "message" : undefined);
    switch (type) {
      case "message": {
        const role = item.role;
        const { text, images } = contentOf(item.content, `${param}.content`);
        if (role === "assistant") {
          const t = assistant();
          t.content = t.content ? `${t.content}\n${text}` : text;
          return;
        }
        if (role !== "user" && role !== "system" && role !== "developer") {
          throw invalidArgument(
            `${param}.role must be user, assistant, system or developer, not ${JSON.stringify(role)}`,
            `${param}.role`,
          );
        }
        turn = undefined;
        const m: ChatMessage = { role: role === "developer" ? "system" : role, content: text };
        if (images.length) m.images = images;
        out.push(m);
        return;
      }
      case "reasoning": {
        // Our own reasoning items carry the text in `content`; OpenAI's carry a summary.
        const parts = Array.isArray(item.content) && item.content.length ? item.content : item.summary;
        const { text } = contentOf(parts ?? [], `${param}.content`);
        if (!text) return;
        const t = assistant();
        t.reasoning = t.reasoning ? `${t.reasoning}\n${text}` : text;
        return;
      }
      case "function_call": {
        const name = requireString(item.name, `${param}.name`);
        const namespace = typeof item.namespace === "string" && item.namespace ? item.namespace : undefined;
        const t = assistant();
        (t.toolCalls ??= []).push({
          id: requireString(item.call_id, `${param}.call_id`),
          name: replayedToolName(wireToolName(name, namespace)),
          arguments: replayedArguments(item.arguments),
        });
        return;
      }
      case "custom_tool_call": {
        const t = assistant();
        (t.toolCalls ??= []).push({
          id: requireString(item.call_id, `${param}.call_id`),
          name: replayedToolName(requireString(item.name, `${param}.name`)),
          arguments: JSON.stringify({ input: requireString(item.input, `${param}.input`) }),
        });
        return;
      }
      case "function_call_output":
      case "custom_tool_call_output": {
        turn = undefined;
        const { text, images } = contentOf(item.output, `${param}.output`);
        const m: ChatMessage = {
          role: "tool",
          content: text,
          toolCallId: requireString(item.call_id, `${param}.call_id`),
        };
        if (images.length) m.images = images;
        out.push(m);
        return;
      }
      case "item_reference":
        throw new GatewayError(
          "invalid_argument",
          "item_reference is not supported: agentgate stores no responses; replay the items themselves",
          { param: `${param}.type`, code: "unsupported_parameter" },
        );
      default:
        if (typeof type === "string" && SKIPPABLE_TYPE.test(type)) {
          dropped.set(type, (dropped.get(type) ?? 0) + 1);
          return;
        }
        throw invalidArgument(`${param}.type must be a string naming an input item type`, `${param}.type`);
    }
  });
  for (const [type, n] of dropped) notes.push(`dropped ${n} ${type} input item(s)`);
  // A turn that only thought (or replayed an empty message) says nothing a chat model can take.
  return out.filter((m) => m.role !== "assistant" || m.content || m.toolCalls?.length);
}

function customToolDescription(tool: Item): string {
  const description = typeof tool.description === "string" ? tool.description : "";
  const format = isObject(tool.format) ? tool.format : undefined;
  let text = `${description}\nPass the tool's whole input as the string parameter "input".`.trim();
  if (format?.type === "grammar" && typeof format.definition === "string") {
    // The grammar is what tells a model the exact input syntax (e.g. apply_patch's patch format).
    const syntax = typeof format.syntax === "string" ? format.syntax : "grammar";
    text += `\nThe input must follow this ${syntax} grammar:\n${format.definition.slice(0, 8_000)}`;
  }
  return text;
}

function functionSpec(tool: Item, param: string, wireName: string): ToolSpec {
  const spec: ToolSpec = { name: wireName };
  if (typeof tool.description === "string") spec.description = tool.description;
  if (tool.parameters !== undefined && tool.parameters !== null) {
    if (!isObject(tool.parameters)) throw invalidArgument(`${param}.parameters must be a JSON Schema object`, param);
    spec.parameters = tool.parameters;
  }
  if (tool.strict === true) spec.strict = true;
  return spec;
}

function toTools(tools: ResponsesRequest["tools"], notes: string[]): { specs: ToolSpec[]; names: ToolNames } {
  const specs: ToolSpec[] = [];
  const names: ToolNames = new Map();
  const add = (spec: ToolSpec, target: ToolTarget, param: string) => {
    if (names.has(spec.name)) throw invalidArgument(`tool name ${JSON.stringify(spec.name)} is used twice`, param);
    names.set(spec.name, target);
    specs.push(spec);
  };
  const droppedTools: string[] = [];
  (tools ?? []).forEach((raw, i) => {
    const tool = raw as Item;
    const param = `tools[${i}]`;
    const type = tool.type;
    if (type === "function") {
      const name = requireString(tool.name, `${param}.name`);
      add(functionSpec(tool, param, name), { kind: "function", name }, param);
    } else if (type === "namespace") {
      const namespace = requireString(tool.name, `${param}.name`);
      if (!Array.isArray(tool.tools)) throw invalidArgument(`${param}.tools must be an array`, `${param}.tools`);
      tool.tools.forEach((inner: unknown, j) => {
        const p = `${param}.tools[${j}]`;
        if (!isObject(inner) || (inner.type !== undefined && inner.type !== "function")) {
          throw invalidArgument(`${p} must be a function tool`, p);
        }
        const name = requireString(inner.name, `${p}.name`);
        add(functionSpec(inner, p, wireToolName(name, namespace)), { kind: "function", name, namespace }, p);
      });
    } else if (type === "custom") {
      const name = requireString(tool.name, `${param}.name`);
      add(
        {
          name,
          description: customToolDescription(tool),
          parameters: {
            type: "object",
            properties: { input: { type: "string", description: "The tool's complete input" } },
            required: ["input"],
          },
        },
        { kind: "custom", name },
        param,
      );
    } else if (typeof type === "string" && SKIPPABLE_TYPE.test(type)) {
      droppedTools.push(type);
    } else {
      throw invalidArgument(`${param}.type must be a string naming a tool type`, `${param}.type`);
    }
  });
  if (droppedTools.length) notes.push(`dropped hosted tools a local model cannot run: ${droppedTools.join(", ")}`);
  return { specs, names };
}

function toToolChoice(choice: ResponsesRequest["tool_choice"]): ToolChoice | undefined {
  if (choice === undefined) return undefined;
  if (typeof choice === "string") {
    if (choice === "auto" || choice === "none" || choice === "required") return choice;
    throw invalidArgument("tool_choice must be auto, none, required or a named tool", "tool_choice");
  }
  const named = choice as Record<string, unknown>;
  if ((named.type === "function" || named.type === "custom") && typeof named.name === "string") {
    return { name: named.name };
  }
  // allowed_tools and hosted-tool choices: the model still decides.
  return "auto";
}

function toResponseFormat(text: ResponsesRequest["text"]): ResponseFormat | undefined {
  const format = text?.format as Record<string, unknown> | null | undefined;
  if (!format) return undefined;
  if (format.type === "text") return { type: "text" };
  if (format.type === "json_object") return { type: "json_object" };
  if (format.type === "json_schema") {
    if (!isObject(format.schema)) throw invalidArgument("text.format.schema must be an object", "text.format.schema");
    return {
      type: "json_schema",
      schema: format.schema,
      name: typeof format.name === "string" ? format.name : undefined,
      strict: format.strict === true || undefined,
    };
  }
  throw invalidArgument("text.format.type must be text, json_object or json_schema", "text.format.type");
}

export function toChatRequest(body: ResponsesRequest): TranslatedRequest {
  if (body.previous_response_id) {
    throw new GatewayError(
      "invalid_argument",
      "previous_response_id is not supported: agentgate stores no responses; send the whole conversation as input",
      { param: "previous_response_id", code: "unsupported_parameter" },
    );
  }
  if (body.background) {
    throw new GatewayError("invalid_argument", "background responses are not supported", {
      param: "background",
      code: "unsupported_parameter",
    });
  }
  const notes: string[] = [];
  const { specs, names } = toTools(body.tools, notes);
  const chat: ChatRequest = { model: body.model, messages: toMessages(body, notes), options: {} };
  if (chat.messages.length === 0) throw invalidArgument("input holds no message", "input");
  if (specs.length) chat.tools = specs;
  const toolChoice = toToolChoice(body.tool_choice);
  if (toolChoice && specs.length) chat.toolChoice = toolChoice;
  const format = toResponseFormat(body.text);
  if (format) chat.responseFormat = format;
  if (body.temperature != null) chat.options.temperature = body.temperature;
  if (body.top_p != null) chat.options.topP = body.top_p;
  if (body.max_output_tokens != null) chat.options.maxTokens = body.max_output_tokens;
  if (body.num_ctx != null) chat.options.contextWindow = body.num_ctx;
  const effort = body.reasoning?.effort;
  if (effort) {
    if (!EFFORTS.has(effort)) {
      throw invalidArgument(`reasoning.effort must be one of ${[...EFFORTS].join(", ")}`, "reasoning.effort");
    }
    chat.reasoningEffort = toReasoningEffort(effort);
  }
  const conversation = typeof body.conversation === "string" ? body.conversation : body.conversation?.id;
  if (conversation) chat.conversationId = conversation;
  return { chat, toolNames: names, notes };
}
