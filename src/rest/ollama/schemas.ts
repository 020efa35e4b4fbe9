/**
 * JSON Schemas (TypeBox) of the Ollama-compatible /api routes, after ollama/ollama docs/api.md and
 * api/types.go (v0.32.15). Like Ollama (Go's encoding/json), unknown fields are accepted and
 * ignored; known fields are type-checked, so a wrong type is a 400 naming the field instead of a
 * confusing failure further down. Ranges follow completion/validate.ts, so the error names the
 * Ollama field (`options.temperature`) rather than the OpenAI one the shared rules use.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

const StringEnum = <T extends string[]>(values: [...T]) => Type.Unsafe<T[number]>({ type: "string", enum: values });

const Model = Type.String({ minLength: 1, maxLength: 256 });

/** Base64-encoded images (the Go client sends []byte, which encodes as base64 strings). */
const Images = Type.Array(Type.String(), { maxItems: 64 });

/** `options`: the Modelfile parameters agentgate maps; any other option is accepted and ignored. */
export const OllamaOptions = Type.Object(
  {
    temperature: Type.Optional(Type.Number({ minimum: 0, maximum: 2 })),
    top_p: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
    top_k: Type.Optional(Type.Integer({ minimum: 1 })),
    // -1 (no limit) and -2 (fill the context) are Ollama's own values.
    num_predict: Type.Optional(Type.Integer({ minimum: -2, maximum: 10_000_000 })),
    stop: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { maxItems: 4 })),
    seed: Type.Optional(Type.Integer()),
    num_ctx: Type.Optional(Type.Integer({ minimum: 1 })),
    presence_penalty: Type.Optional(Type.Number({ minimum: -2, maximum: 2 })),
    frequency_penalty: Type.Optional(Type.Number({ minimum: -2, maximum: 2 })),
  },
  { additionalProperties: true },
);
export type OllamaOptions = Static<typeof OllamaOptions>;

/** `think`: a boolean or a level ("max" is documented since Ollama v0.30.11). */
const Think = Type.Union([Type.Boolean(), StringEnum(["low", "medium", "high", "max"])]);

/** `format`: "json" or a JSON schema ("" means none, as in Go where it is a raw message). */
const Format = Type.Union([Type.Literal("json"), Type.Literal(""), Type.Object({}, { additionalProperties: true })]);

/** A duration ("5m", "1h30m") or a number of seconds; accepted and ignored (agentgate loads nothing). */
const KeepAlive = Type.Union([Type.String({ maxLength: 64 }), Type.Number()]);

const ToolCall = Type.Object({
  id: Type.Optional(Type.String({ maxLength: 256 })),
  function: Type.Object({
    index: Type.Optional(Type.Integer()),
    name: Type.String({ minLength: 1, maxLength: 64 }),
    arguments: Type.Optional(Type.Object({}, { additionalProperties: true })),
  }),
});
export type OllamaToolCall = Static<typeof ToolCall>;

export const OllamaMessage = Type.Object({
  // Ollama lower-cases the role (Message.UnmarshalJSON); the allowed set is checked after that.
  role: Type.String({ minLength: 1, maxLength: 32 }),
  content: Type.Optional(Nullable(Type.String())),
  thinking: Type.Optional(Type.String()),
  images: Type.Optional(Nullable(Images)),
  tool_calls: Type.Optional(Nullable(Type.Array(ToolCall, { maxItems: 128 }))),
  tool_name: Type.Optional(Type.String({ maxLength: 64 })),
  tool_call_id: Type.Optional(Type.String({ maxLength: 256 })),
});
export type OllamaMessage = Static<typeof OllamaMessage>;

const Tool = Type.Object({
  type: Type.Literal("function"),
  function: Type.Object({
    name: Type.String({ pattern: "^[a-zA-Z0-9_-]{1,64}$" }),
    description: Type.Optional(Type.String()),
    parameters: Type.Optional(Type.Object({}, { additionalProperties: true })),
  }),
});

const Common = {
  model: Model,
  stream: Type.Optional(Type.Boolean({ description: "true (the default) answers with application/x-ndjson" })),
  format: Type.Optional(Format),
  options: Type.Optional(Nullable(OllamaOptions)),
  think: Type.Optional(Think),
  keep_alive: Type.Optional(KeepAlive),
  logprobs: Type.Optional(Type.Boolean()),
};

export const OllamaChatRequest = Type.Object(
  {
    ...Common,
    messages: Type.Optional(Nullable(Type.Array(OllamaMessage, { maxItems: 10_000 }))),
    tools: Type.Optional(Nullable(Type.Array(Tool, { maxItems: 128 }))),
  },
  { additionalProperties: true },
);
export type OllamaChatRequest = Static<typeof OllamaChatRequest>;

export const OllamaGenerateRequest = Type.Object(
  {
    ...Common,
    prompt: Type.Optional(Type.String()),
    suffix: Type.Optional(Type.String()),
    system: Type.Optional(Type.String()),
    template: Type.Optional(Type.String()),
    context: Type.Optional(Nullable(Type.Array(Type.Integer()))),
    raw: Type.Optional(Type.Boolean()),
    images: Type.Optional(Nullable(Images)),
  },
  { additionalProperties: true },
);
export type OllamaGenerateRequest = Static<typeof OllamaGenerateRequest>;

export const OllamaEmbedRequest = Type.Object(
  {
    model: Model,
    input: Type.Optional(Type.Union([Type.String(), Type.Array(Type.String(), { maxItems: 2048 })])),
    truncate: Type.Optional(Type.Boolean()),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
    options: Type.Optional(Nullable(OllamaOptions)),
    keep_alive: Type.Optional(KeepAlive),
  },
  { additionalProperties: true },
);
export type OllamaEmbedRequest = Static<typeof OllamaEmbedRequest>;

/** The legacy /api/embeddings: one prompt, one vector. */
export const OllamaEmbeddingsRequest = Type.Object(
  {
    model: Model,
    prompt: Type.Optional(Type.String()),
    options: Type.Optional(Nullable(OllamaOptions)),
    keep_alive: Type.Optional(KeepAlive),
  },
  { additionalProperties: true },
);
export type OllamaEmbeddingsRequest = Static<typeof OllamaEmbeddingsRequest>;

/** `name` is the deprecated spelling of `model`; one of them is required (checked in the handler). */
export const OllamaShowRequest = Type.Object(
  {
    model: Type.Optional(Type.String({ maxLength: 256 })),
    name: Type.Optional(Type.String({ maxLength: 256 })),
    verbose: Type.Optional(Type.Boolean()),
  },
  { additionalProperties: true },
);
export type OllamaShowRequest = Static<typeof OllamaShowRequest>;
