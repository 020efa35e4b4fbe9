/**
 * A faithful stand-in for an Ollama server (native /api routes), built from ollama/ollama
 * docs/api.md, docs/api/errors.mdx and server/routes.go @fb30760. Real HTTP on 127.0.0.1; replies are
 * scripted (see ReplyScript) or echo the last user message, without artificial delays.
 *
 * Fidelity notes: `stream` defaults to true; headers are only sent with the first NDJSON line (as
 * gin's c.Stream does), so an error before the first line is a JSON error with its status and an
 * error after it is an `{"error":…}` line after a 200; tool calls arrive whole with object arguments;
 * zero metrics are omitted (Go `omitempty`); error texts are the server's own.
 */
import { createHash } from "node:crypto";

import {
  DoubleServer,
  estimateTokens,
  hashEmbedding,
  normalize,
  isRecord,
  play,
  rawHashVector,
  toolCallId,
  withEcho,
  type DoubleServerOptions,
  type Exchange,
  type ReplyPlan,
  type ReplyScript,
} from "./double-server.js";

export type { RecordedRequest, ReplyScript, ScriptToolCall, StopPoint } from "./double-server.js";

export type Capability = "completion" | "tools" | "thinking" | "embedding" | "vision" | "insert";

export interface ModelSpec {
  /** `name:tag`; a request without a tag matches `name:latest`. */
  name: string;
  /** Also the architecture in /api/show model_info. */
  family?: string;
  contextLength?: number;
  capabilities?: Capability[];
  size?: number;
  parameterSize?: string;
  quantizationLevel?: string;
  /** Length of the vectors /api/embed returns for this model. */
  embeddingLength?: number;
}

export type OllamaModel = Required<ModelSpec> & { digest: string };

export const DEFAULT_OLLAMA_MODELS: readonly ModelSpec[] = [
  {
    name: "qwen3:8b",
    family: "qwen3",
    contextLength: 40_960,
    capabilities: ["completion", "tools", "thinking"],
    size: 5_225_388_164,
    parameterSize: "8.2B",
    embeddingLength: 4096,
  },
  {
    name: "llama3.2:3b",
    family: "llama",
    contextLength: 131_072,
    capabilities: ["completion", "tools"],
    size: 2_019_393_189,
    parameterSize: "3.2B",
    embeddingLength: 3072,
  },
  {
    name: "nomic-embed-text:latest",
    family: "nomic-bert",
    contextLength: 2048,
    capabilities: ["embedding"],
    size: 274_302_450,
    parameterSize: "137M",
    quantizationLevel: "F16",
    embeddingLength: 768,
  },
];

export interface OllamaDoubleOptions extends DoubleServerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  models?: readonly ModelSpec[];
  /** Reported by /api/version. */
  version?: string;
}

const NDJSON = "application/x-ndjson";
const MODIFIED_AT = "2025-05-10T08:06:48.639712648-07:00";

type Body = Record<string, unknown>;
type Route = (ex: Exchange) => Promise<void> | void;

export class OllamaDouble extends DoubleServer {
  readonly models: readonly OllamaModel[];
  readonly version: string;
  /** Models used since the last reset, for /api/ps. */
  private readonly loaded = new Set<OllamaModel>();
  private replies = 0;
  private readonly routes: Record<string, Record<string, Route>>;

  constructor(options: OllamaDoubleOptions = {}) {
    super(options);
    this.models = (options.models ?? DEFAULT_OLLAMA_MODELS).map(resolveModel);
    this.version = options.version ?? "0.32.15";
    const running: Route = (ex) => ex.text(200, "Ollama is running");
    const version: Route = (ex) => ex.json(200, { version: this.version });
    const tags: Route = (ex) => ex.json(200, { models: this.models.map(listEntry) });
    this.routes = {
      "/": { GET: running, HEAD: running },
      "/api/version": { GET: version, HEAD: version },
      "/api/tags": { GET: tags, HEAD: tags },
      "/api/ps": { GET: (ex) => this.ps(ex) },
      "/api/show": { POST: (ex) => this.show(ex) },
      "/api/chat": { POST: (ex) => this.chat(ex) },
      "/api/generate": { POST: (ex) => this.generate(ex) },
      "/api/embed": { POST: (ex) => this.embed(ex) },
      "/api/embeddings": { POST: (ex) => this.legacyEmbeddings(ex) },
    };
  }

  override reset(): void {
    super.reset();
    this.loaded.clear();
    this.replies = 0;
  }

  /** Resolves `name` as Ollama does (missing tag = `latest`). */
  findModel(name: string): OllamaModel | undefined {
    const full = name.includes(":") ? name : `${name}:latest`;
    return this.models.find((m) => m.name === full);
  }

  protected handle(ex: Exchange): Promise<void> | void {
    const methods = this.routes[ex.record.path];
    // gin's defaults: plain-text 404 for unknown paths, 405 for a known path with another method.
    if (!methods) return ex.text(404, "404 page not found");
    const route = methods[ex.record.method];
    if (!route) return ex.text(405, "405 method not allowed");
    return route(ex);
  }

  private chat(ex: Exchange): Promise<void> | void {
    const body = requestBody(ex, "ChatRequest");
    if (!body) return;
    if (body.messages != null && !Array.isArray(body.messages)) {
      return fail(ex, 400, unmarshalError(body.messages, "Go struct field ChatRequest.messages of type []api.Message"));
    }
    const name = typeof body.model === "string" ? body.model : "";
    if (!name) return fail(ex, 400, "model is required");
    const model = this.findModel(name);
    if (!model) return fail(ex, 404, `model '${name}' not found`);
    const messages = (body.messages ?? []) as unknown[];
    if (messages.length === 0 && body.keep_alive === 0) return ex.json(200, loadReply(name, "unload"));
    const refused = capabilityError(model, name, body, "chat");
    if (refused) return fail(ex, 400, refused);
    if (messages.length === 0) return ex.json(200, loadReply(name, "load"));

    this.loaded.add(model);
    const texts = messages.filter(isRecord).map((m) => ({ role: m.role, content: stringOr(m.content) }));
    const lastUser = texts.filter((m) => m.role === "user").at(-1)?.content ?? "";
    const script = withEcho(this.nextScript(), lastUser, numPredict(body));
    const prompt = texts.map((m) => m.content).join("\n");
    return play(ex, script, this.plan("chat", name, body, script, prompt, thinks(model, body)));
  }

  private generate(ex: Exchange): Promise<void> | void {
    const body = requestBody(ex, "GenerateRequest");
    if (!body) return;
    if (body.prompt != null && typeof body.prompt !== "string") {
      return fail(ex, 400, unmarshalError(body.prompt, "Go struct field GenerateRequest.prompt of type string"));
    }
    const name = typeof body.model === "string" ? body.model : "";
    if (!name) return fail(ex, 400, "model is required");
    const model = this.findModel(name);
    if (!model) return fail(ex, 404, `model '${name}' not found`);
    if (body.raw === true && (body.system || body.template || body.context)) {
      return fail(ex, 400, "raw mode does not support template, system, or context");
    }
    const refused = capabilityError(model, name, body, "generate");
    if (refused) return fail(ex, 400, refused);
    const prompt = stringOr(body.prompt);
    if (prompt === "") {
      const reason = body.keep_alive === 0 ? "unload" : "load";
      return ex.json(200, {
        model: name,
        created_at: new Date().toISOString(),
        response: "",
        done: true,
        done_reason: reason,
      });
    }

    this.loaded.add(model);
    const script = withEcho(this.nextScript(), prompt, numPredict(body));
    return play(
      ex,
      script,
      this.plan("generate", name, body, script, `${stringOr(body.system)}\n${prompt}`, thinks(model, body)),
    );
  }

  /** Frames, final line and aggregated reply for /api/chat and /api/generate. */
  private plan(
    kind: "chat" | "generate",
    model: string,
    body: Body,
    script: ReplyScript,
    prompt: string,
    think: boolean,
  ): ReplyPlan {
    const started = process.hrtime.bigint();
    const reply = ++this.replies;
    const createdAt = new Date().toISOString();
    const thinking = think ? (script.thinking ?? []) : [];
    const content = script.content ?? [];
    const toolCalls =
      kind === "chat"
        ? (script.toolCalls ?? []).map((call, index) => ({
            id: call.id ?? toolCallId(`${reply}:${index}:${call.name}`),
            function: { index, name: call.name, arguments: call.arguments },
          }))
        : [];
    // Chat carries text in `message`, generate in `response`/`thinking`: one shape function each.
    const part = (text: { content?: string; thinking?: string; tool_calls?: unknown[] }): Body =>
      kind === "chat"
        ? { message: { role: "assistant", content: text.content ?? "", ...pick(text, "thinking", "tool_calls") } }
        : { response: text.content ?? "", ...pick(text, "thinking") };
    const frames = [
      ...thinking.map((t) => part({ thinking: t })),
      ...content.map((c) => part({ content: c })),
      ...(toolCalls.length > 0 ? [part({ tool_calls: toolCalls })] : []),
    ].map((p) => ndjson({ model, created_at: createdAt, ...p, done: false }));
    const promptEvalCount = script.promptEvalCount ?? estimateTokens(prompt);
    const evalCount = script.evalCount ?? frames.length;
    const final = (text: Parameters<typeof part>[0]): Body => ({
      model,
      created_at: new Date().toISOString(),
      ...part(text),
      done: true,
      done_reason: script.doneReason ?? "stop",
      ...metrics(started, promptEvalCount, evalCount),
    });
    return {
      stream: body.stream !== false,
      contentType: NDJSON,
      frames,
      tail: () => ndjson(final({})),
      body: () =>
        final({
          content: content.join(""),
          thinking: thinking.join("") || undefined,
          tool_calls: toolCalls.length > 0 ? toolCalls : undefined,
        }),
      errorBody: (message) => ({ error: message }),
      errorFrame: (message) => ndjson({ error: message }),
    };
  }

  private embed(ex: Exchange): void {
    const started = process.hrtime.bigint();
    const body = requestBody(ex, "EmbedRequest");
    if (!body) return;
    const name = typeof body.model === "string" ? body.model : "";
    if (!name) return fail(ex, 400, "model is required");
    const input = body.input;
    const inputs =
      typeof input === "string" ? (input ? [input] : []) : Array.isArray(input) ? input : input == null ? [] : null;
    if (!inputs || !inputs.every((s): s is string => typeof s === "string")) return fail(ex, 400, "invalid input type");
    const model = this.findModel(name);
    if (!model) return fail(ex, 404, `model '${name}' not found`);
    if (inputs.length === 0) return ex.json(200, { model: name, embeddings: [] });
    if (body.truncate === false && inputs.some((s) => estimateTokens(s) > model.contextLength)) {
      return fail(ex, 400, "the input length exceeds the context length");
    }
    this.loaded.add(model);
    const dims =
      typeof body.dimensions === "number" && body.dimensions > 0
        ? Math.min(body.dimensions, model.embeddingLength)
        : model.embeddingLength;
    // Ollama truncates the model's full vector, then re-normalises, for `dimensions`.
    const embeddings = inputs.map((s) => {
      const full = hashEmbedding(s, model.embeddingLength);
      return dims === full.length ? full : normalize(full.slice(0, dims));
    });
    const promptEvalCount = inputs.reduce((n, s) => n + estimateTokens(s), 0);
    const { total_duration, load_duration } = metrics(started, 0, 0);
    ex.json(200, { model: name, embeddings, total_duration, load_duration, prompt_eval_count: promptEvalCount });
  }

  private legacyEmbeddings(ex: Exchange): void {
    const body = requestBody(ex, "EmbeddingRequest");
    if (!body) return;
    const name = typeof body.model === "string" ? body.model : "";
    if (!name) return fail(ex, 400, "model is required");
    const model = this.findModel(name);
    // This route goes through handleScheduleError, hence the other wording.
    if (!model) return fail(ex, 404, `model "${name}" not found, try pulling it first`);
    const prompt = stringOr(body.prompt);
    if (prompt) this.loaded.add(model);
    ex.json(200, { embedding: prompt ? rawHashVector(prompt, model.embeddingLength) : [] });
  }

  private show(ex: Exchange): void {
    const body = requestBody(ex, "ShowRequest");
    if (!body) return;
    const name = stringOr(body.model) || stringOr(body.name);
    if (!name) return fail(ex, 400, "model is required");
    const model = this.findModel(name);
    if (!model) return fail(ex, 404, `model '${name}' not found`);
    const arch = model.family;
    ex.json(200, {
      modelfile: `# Modelfile generated by "ollama show"\nFROM ${model.name}\nPARAMETER num_ctx ${model.contextLength}`,
      parameters: "temperature                    0.6\ntop_p                          0.95",
      template: "{{ .Prompt }}",
      details: details(model),
      model_info: {
        "general.architecture": arch,
        "general.parameter_count": parameterCount(model.parameterSize),
        [`${arch}.context_length`]: model.contextLength,
        [`${arch}.embedding_length`]: model.embeddingLength,
      },
      capabilities: model.capabilities,
      modified_at: MODIFIED_AT,
    });
  }

  private ps(ex: Exchange): void {
    const expiresAt = new Date(Date.now() + 5 * 60_000).toISOString();
    ex.json(200, {
      models: [...this.loaded].map((m) => ({
        name: m.name,
        model: m.name,
        size: m.size,
        digest: m.digest,
        details: details(m),
        expires_at: expiresAt,
        size_vram: m.size,
        // Ollama's default context below 24 GiB of VRAM (docs/context-length.mdx).
        context_length: Math.min(m.contextLength, 4096),
      })),
    });
  }
}

/** Starts an Ollama double on 127.0.0.1 (ephemeral port unless `options.port`). */
export async function startOllamaDouble(options: OllamaDoubleOptions = {}): Promise<OllamaDouble> {
  const double = new OllamaDouble(options);
  await double.listen(options.port ?? 0);
  return double;
}

function resolveModel(spec: ModelSpec): OllamaModel {
  const family = spec.family ?? spec.name.split(/[:/]/)[0].replace(/[^a-z0-9]+$/i, "");
  return {
    name: spec.name.includes(":") ? spec.name : `${spec.name}:latest`,
    family,
    contextLength: spec.contextLength ?? 8192,
    capabilities: spec.capabilities ?? ["completion"],
    size: spec.size ?? 1_000_000_000,
    parameterSize: spec.parameterSize ?? "1B",
    quantizationLevel: spec.quantizationLevel ?? "Q4_K_M",
    embeddingLength: spec.embeddingLength ?? 768,
    digest: createDigest(spec.name),
  };
}

function createDigest(name: string): string {
  return createHash("sha256").update(name).digest("hex");
}

function details(m: OllamaModel): Body {
  return {
    parent_model: "",
    format: "gguf",
    family: m.family,
    families: [m.family],
    parameter_size: m.parameterSize,
    quantization_level: m.quantizationLevel,
  };
}

function listEntry(m: OllamaModel): Body {
  return { name: m.name, model: m.name, modified_at: MODIFIED_AT, size: m.size, digest: m.digest, details: details(m) };
}

function parameterCount(size: string): number {
  const match = /^([\d.]+)([KMBT])$/i.exec(size);
  if (!match) return 0;
  const scale: Record<string, number> = { K: 1e3, M: 1e6, B: 1e9, T: 1e12 };
  return Math.round(Number(match[1]) * scale[match[2].toUpperCase()]);
}

/** Checks in the order ChatHandler/GenerateHandler do; returns Ollama's message or undefined. */
function capabilityError(model: OllamaModel, name: string, body: Body, verb: "chat" | "generate"): string | undefined {
  const has = (c: Capability): boolean => model.capabilities.includes(c);
  if (!has("thinking") && thinkRequested(body.think)) return `"${name}" does not support thinking`;
  if (!has("completion")) return `"${name}" does not support ${verb}`;
  if (verb === "chat" && Array.isArray(body.tools) && body.tools.length > 0 && !has("tools")) {
    // scheduleRunner prefixes the fully qualified model name.
    const qualified = model.name.includes("/") ? model.name : `library/${model.name}`;
    return `registry.ollama.ai/${qualified} does not support tools`;
  }
  return undefined;
}

/** `think` is a bool or a level ("low" … "max"); any level counts as on. */
function thinkRequested(think: unknown): boolean {
  return think === true || (typeof think === "string" && think !== "");
}

/** Thinking models think unless told `think: false`. */
function thinks(model: OllamaModel, body: Body): boolean {
  return model.capabilities.includes("thinking") && body.think !== false;
}

function numPredict(body: Body): number | undefined {
  const options = body.options;
  return isRecord(options) && typeof options.num_predict === "number" ? options.num_predict : undefined;
}

function loadReply(model: string, reason: "load" | "unload"): Body {
  return {
    model,
    created_at: new Date().toISOString(),
    message: { role: "assistant", content: "" },
    done: true,
    done_reason: reason,
  };
}

/** Durations in ns, apportioned from the real elapsed time so they add up; zeros omitted like Go. */
function metrics(started: bigint, promptEvalCount: number, evalCount: number): Body {
  const total = Number(process.hrtime.bigint() - started) + 1;
  const out: Body = {
    total_duration: total,
    load_duration: Math.ceil(total * 0.05),
    prompt_eval_count: promptEvalCount,
    prompt_eval_duration: Math.ceil(total * 0.15),
    eval_count: evalCount,
    eval_duration: Math.floor(total * 0.75),
  };
  for (const key of Object.keys(out)) if (out[key] === 0) delete out[key];
  return out;
}

/** The parsed object body, or undefined after answering 400 as gin's ShouldBindJSON would. */
function requestBody(ex: Exchange, goType: string): Body | undefined {
  if (ex.body === undefined) return void fail(ex, 400, "missing request body");
  if (ex.bodyError !== undefined) return void fail(ex, 400, ex.bodyError);
  if (!isRecord(ex.body)) return void fail(ex, 400, unmarshalError(ex.body, `Go value of type api.${goType}`));
  return ex.body;
}

function unmarshalError(value: unknown, target: string): string {
  const kind = Array.isArray(value)
    ? "array"
    : value === null
      ? "null"
      : typeof value === "boolean"
        ? "bool"
        : typeof value;
  return `json: cannot unmarshal ${kind} into ${target}`;
}

function fail(ex: Exchange, status: number, error: string): void {
  ex.json(status, { error });
}

function ndjson(value: unknown): string {
  return `${JSON.stringify(value)}\n`;
}

function stringOr(value: unknown): string {
  return typeof value === "string" ? value : "";
}

function pick<T extends object, K extends keyof T>(source: T, ...keys: K[]): Partial<Pick<T, K>> {
  const out: Partial<Pick<T, K>> = {};
  for (const key of keys) if (source[key] !== undefined) out[key] = source[key];
  return out;
}
