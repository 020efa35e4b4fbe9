/**
 * JSON Schemas (TypeBox) of the OpenAI-compatible REST routes. Fastify validates
 * requests with them and @fastify/swagger publishes them at /openapi.json, so the
 * document cannot drift from what is enforced. Unknown top-level fields are
 * accepted and ignored (clients such as LiteLLM send extras); known fields are
 * checked strictly.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);

/** A string enum as a plain JSON Schema `enum` (clearer errors than a union of literals). */
const StringEnum = <T extends string[]>(values: [...T], description?: string) =>
  Type.Unsafe<T[number]>({ type: "string", enum: values, description });

const TextPart = Type.Object(
  { type: Type.Literal("text"), text: Type.String() },
  { additionalProperties: false, description: "A text content part" },
);
const ImagePart = Type.Object(
  {
    type: Type.Literal("image_url"),
    image_url: Type.Object({ url: Type.String({ minLength: 1 }), detail: Type.Optional(Type.String()) }),
  },
  { additionalProperties: false, description: "An image content part (data: URL with base64)" },
);
const ContentPart = Type.Union([TextPart, ImagePart]);

const ToolCallSchema = Type.Object(
  {
    id: Type.String({ minLength: 1, maxLength: 256 }),
    type: Type.Literal("function"),
    function: Type.Object({ name: Type.String({ minLength: 1, maxLength: 64 }), arguments: Type.String() }),
  },
  { additionalProperties: false },
);

export const ChatMessageSchema = Type.Object(
  {
    role: StringEnum(["system", "developer", "user", "assistant", "tool"]),
    content: Type.Optional(Nullable(Type.Union([Type.String(), Type.Array(ContentPart)]))),
    name: Type.Optional(Type.String({ maxLength: 256 })),
    tool_calls: Type.Optional(Type.Array(ToolCallSchema, { maxItems: 128 })),
    tool_call_id: Type.Optional(Type.String({ maxLength: 256 })),
    reasoning_content: Type.Optional(Nullable(Type.String())),
    // Fields of a response message that clients echo back in the next turn (OpenAI accepts them on
    // assistant messages); accepted and ignored.
    refusal: Type.Optional(Nullable(Type.String())),
    audio: Type.Optional(Type.Null()),
    function_call: Type.Optional(Type.Null()),
  },
  { additionalProperties: false },
);

const Stop = Type.Optional(
  Nullable(
    Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 4 })], {
      description: "Up to 4 stop sequences",
    }),
  ),
);

const SamplingFields = {
  temperature: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 2 }))),
  top_p: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 1 }))),
  max_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 10_000_000 }))),
  stop: Stop,
  seed: Type.Optional(Nullable(Type.Integer())),
  presence_penalty: Type.Optional(Nullable(Type.Number({ minimum: -2, maximum: 2 }))),
  frequency_penalty: Type.Optional(Nullable(Type.Number({ minimum: -2, maximum: 2 }))),
  n: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1, description: "Only 1 is supported" }))),
  stream: Type.Optional(Nullable(Type.Boolean())),
  stream_options: Type.Optional(
    Nullable(Type.Object({ include_usage: Type.Optional(Type.Boolean()) }, { additionalProperties: false })),
  ),
  user: Type.Optional(Type.String({ maxLength: 256 })),
  top_k: Type.Optional(Type.Integer({ minimum: 1, description: "Extension: sample from the k most likely tokens" })),
  num_ctx: Type.Optional(Type.Integer({ minimum: 1, description: "Extension: context window to load the model with" })),
};

const FunctionTool = Type.Object(
  {
    type: Type.Literal("function"),
    function: Type.Object(
      {
        name: Type.String({ pattern: "^[a-zA-Z0-9_-]{1,64}$" }),
        description: Type.Optional(Type.String()),
        parameters: Type.Optional(Type.Object({}, { additionalProperties: true })),
        strict: Type.Optional(Nullable(Type.Boolean())),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);

const ToolChoiceSchema = Type.Union([
  Type.Literal("none"),
  Type.Literal("auto"),
  Type.Literal("required"),
  Type.Object(
    { type: Type.Literal("function"), function: Type.Object({ name: Type.String({ minLength: 1 }) }) },
    { additionalProperties: false },
  ),
]);

const ResponseFormatSchema = Type.Union([
  Type.Object({ type: Type.Literal("text") }, { additionalProperties: false }),
  Type.Object({ type: Type.Literal("json_object") }, { additionalProperties: false }),
  Type.Object(
    {
      type: Type.Literal("json_schema"),
      json_schema: Type.Object(
        {
          name: Type.String({ pattern: "^[a-zA-Z0-9_-]{1,64}$" }),
          description: Type.Optional(Type.String()),
          schema: Type.Optional(Type.Object({}, { additionalProperties: true })),
          strict: Type.Optional(Nullable(Type.Boolean())),
        },
        { additionalProperties: false },
      ),
    },
    { additionalProperties: false },
  ),
]);

/** Extension: retrieval-augmented generation (the earlier codex-context), src/retrieval/. */
const RetrievalRequestSchema = Type.Union(
  [
    Type.Boolean(),
    Type.Object(
      {
        query: Type.Optional(
          Type.String({ maxLength: 4000, description: "What to retrieve for; default the last user message" }),
        ),
        root: Type.Optional(Type.String({ maxLength: 4096, description: "Search root name; default every root" })),
        max_context_tokens: Type.Optional(
          Type.Integer({ minimum: 0, maximum: 32_768, description: "Budget in estimated tokens; 0 or unset: 2048" }),
        ),
        max_citations: Type.Optional(Type.Integer({ minimum: 0, maximum: 64, description: "0 or unset: 16" })),
        sources: Type.Optional(
          Type.Array(StringEnum(["search", "symbols", "grep"]), { maxItems: 3, description: "Default all three" }),
        ),
        path_globs: Type.Optional(Type.Array(Type.String({ maxLength: 1024 }), { maxItems: 100 })),
        skip_artifact: Type.Optional(Type.Boolean({ description: "Do not record the exchange as an artifact" })),
      },
      { additionalProperties: false },
    ),
  ],
  {
    description:
      "Extension: retrieve context from the search roots, cite it as path:start-end in a system message, return the citations in retrieval_context and record the exchange (model ids context/<model> turn it on too)",
  },
);

const CitationSchema = Type.Object({
  label: Type.String({ description: "path:start-end, as the prompt cites it" }),
  root: Type.String(),
  path: Type.String(),
  start_line: Type.Integer(),
  end_line: Type.Integer(),
  sources: Type.Array(Type.String()),
  score: Type.Number(),
  symbol: Type.String(),
  text: Type.String(),
});

const RetrievalContextSchema = Type.Object(
  {
    citations: Type.Array(CitationSchema),
    tokens_injected: Type.Integer({ description: "Estimated tokens of the injected context" }),
    artifact_id: Type.String({
      description: "The recorded exchange (CompletionService.GetArtifact); empty with skip_artifact",
    }),
    notices: Type.Array(Type.String()),
  },
  { description: "Extension: the context a retrieval-augmented answer was given (on the first chunk when streaming)" },
);

export const ChatCompletionRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 256 }),
    messages: Type.Array(ChatMessageSchema, { minItems: 1, maxItems: 10_000 }),
    ...SamplingFields,
    max_completion_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 10_000_000 }))),
    tools: Type.Optional(Type.Array(FunctionTool, { maxItems: 128 })),
    tool_choice: Type.Optional(ToolChoiceSchema),
    parallel_tool_calls: Type.Optional(Type.Boolean()),
    response_format: Type.Optional(ResponseFormatSchema),
    logprobs: Type.Optional(Nullable(Type.Boolean())),
    reasoning_effort: Type.Optional(Nullable(StringEnum(["none", "minimal", "low", "medium", "high", "xhigh"]))),
    conversation_id: Type.Optional(
      Type.String({
        pattern: "^[A-Za-z0-9_.:-]{1,128}$",
        description:
          "Extension: keeps a stateful backend's conversation (a Codex thread) across requests; later requests need only the new messages",
      }),
    ),
    retrieval: Type.Optional(RetrievalRequestSchema),
  },
  { additionalProperties: true, $id: "CreateChatCompletionRequest" },
);
export type ChatCompletionRequest = Static<typeof ChatCompletionRequest>;

export const CompletionRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 256 }),
    prompt: Type.Union([Type.String(), Type.Array(Type.String(), { minItems: 1, maxItems: 1 })], {
      description: "One prompt (a one-element array is accepted)",
    }),
    suffix: Type.Optional(Nullable(Type.String())),
    echo: Type.Optional(Nullable(Type.Boolean())),
    best_of: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 1 }))),
    logprobs: Type.Optional(Nullable(Type.Integer({ minimum: 0, maximum: 0 }))),
    raw: Type.Optional(Type.Boolean({ description: "Extension: skip the model's prompt template" })),
    ...SamplingFields,
  },
  { additionalProperties: true, $id: "CreateCompletionRequest" },
);
export type CompletionRequest = Static<typeof CompletionRequest>;

export const EmbeddingRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 256 }),
    input: Type.Union([
      Type.String({ minLength: 1 }),
      Type.Array(Type.String({ minLength: 1 }), { minItems: 1, maxItems: 2048 }),
    ]),
    encoding_format: Type.Optional(StringEnum(["float", "base64"])),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536 })),
    user: Type.Optional(Type.String({ maxLength: 256 })),
  },
  { additionalProperties: true, $id: "CreateEmbeddingRequest" },
);
export type EmbeddingRequest = Static<typeof EmbeddingRequest>;

/* Responses: documented for /openapi.json; serialisation follows them. */

export const ErrorResponse = Type.Object(
  {
    error: Type.Object({
      message: Type.String(),
      type: Type.String(),
      param: Nullable(Type.String()),
      code: Nullable(Type.String()),
    }),
  },
  { $id: "ErrorResponse" },
);

const UsageSchema = Type.Object({
  prompt_tokens: Type.Integer(),
  completion_tokens: Type.Integer(),
  total_tokens: Type.Integer(),
});

export const ModelObject = Type.Object({
  id: Type.String(),
  object: Type.Literal("model"),
  created: Type.Integer(),
  owned_by: Type.String(),
});

export const ModelList = Type.Object({
  object: Type.Literal("list"),
  data: Type.Array(ModelObject),
  models: Type.Array(Type.Object({ slug: Type.String() }, { additionalProperties: true }), {
    description:
      "The same models as a Codex CLI model catalog (`model_catalog_url` may point here): context window, apply_patch tool type, base instructions",
  }),
});

export const ChatCompletionResponse = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("chat.completion"),
    created: Type.Integer(),
    model: Type.String(),
    choices: Type.Array(
      Type.Object({
        index: Type.Integer(),
        message: Type.Object({
          role: Type.Literal("assistant"),
          content: Nullable(Type.String()),
          refusal: Nullable(Type.String()),
          tool_calls: Type.Optional(Type.Array(ToolCallSchema)),
          reasoning_content: Type.Optional(Type.String()),
        }),
        finish_reason: Type.String(),
        logprobs: Type.Null(),
      }),
    ),
    usage: UsageSchema,
    retrieval_context: Type.Optional(RetrievalContextSchema),
  },
  {
    description:
      "A chat completion; with stream: true, text/event-stream of chat.completion.chunk objects ending with data: [DONE]",
  },
);

export const CompletionResponse = Type.Object({
  id: Type.String(),
  object: Type.Literal("text_completion"),
  created: Type.Integer(),
  model: Type.String(),
  choices: Type.Array(
    Type.Object({ index: Type.Integer(), text: Type.String(), finish_reason: Type.String(), logprobs: Type.Null() }),
  ),
  usage: UsageSchema,
});

export const EmbeddingResponse = Type.Object({
  object: Type.Literal("list"),
  model: Type.String(),
  data: Type.Array(
    Type.Object({
      object: Type.Literal("embedding"),
      index: Type.Integer(),
      embedding: Type.Union([Type.Array(Type.Number()), Type.String()]),
    }),
  ),
  usage: Type.Object({ prompt_tokens: Type.Integer(), total_tokens: Type.Integer() }),
});

export const errorResponses = {
  400: ErrorResponse,
  401: ErrorResponse,
  404: ErrorResponse,
  413: ErrorResponse,
  429: ErrorResponse,
  502: ErrorResponse,
  503: ErrorResponse,
  504: ErrorResponse,
};
