/**
 * The request schema of POST /v1/responses (TypeBox: Fastify validates with it and /openapi.json
 * publishes it). The top level is checked here; input items and tools are open-ended unions
 * that keep growing (Codex sends namespace and custom tools, reasoning items with
 * encrypted_content ...), so request.ts checks them one by one and names the exact field at fault.
 */
import { Type, type Static, type TSchema } from "@sinclair/typebox";

const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()]);
const OpenObject = (description: string) => Type.Object({}, { additionalProperties: true, description });

export const ResponsesRequest = Type.Object(
  {
    model: Type.String({ minLength: 1, maxLength: 256 }),
    input: Type.Union(
      [Type.String(), Type.Array(OpenObject("An input item (message, reasoning, tool call or tool output)"))],
      { description: "A user message as a string, or the whole conversation as items (stateless: replay it all)" },
    ),
    instructions: Type.Optional(Nullable(Type.String({ description: "Sent to the model as a system message" }))),
    tools: Type.Optional(
      Type.Array(OpenObject("function, namespace or custom tool; hosted tools are dropped"), { maxItems: 512 }),
    ),
    tool_choice: Type.Optional(Type.Union([Type.String(), OpenObject("a named function or custom tool")])),
    stream: Type.Optional(Nullable(Type.Boolean())),
    temperature: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 2 }))),
    top_p: Type.Optional(Nullable(Type.Number({ minimum: 0, maximum: 1 }))),
    max_output_tokens: Type.Optional(Nullable(Type.Integer({ minimum: 1, maximum: 10_000_000 }))),
    text: Type.Optional(
      Nullable(
        Type.Object(
          {
            format: Type.Optional(Nullable(OpenObject("text, json_object or json_schema"))),
            verbosity: Type.Optional(Nullable(Type.String())),
          },
          { additionalProperties: true },
        ),
      ),
    ),
    reasoning: Type.Optional(
      Nullable(
        Type.Object(
          {
            effort: Type.Optional(Nullable(Type.String())),
            summary: Type.Optional(Nullable(Type.String())),
          },
          { additionalProperties: true },
        ),
      ),
    ),
    previous_response_id: Type.Optional(Nullable(Type.String())),
    conversation: Type.Optional(
      Nullable(
        Type.Union([
          Type.String({ pattern: "^[A-Za-z0-9_.:-]{1,128}$" }),
          Type.Object({ id: Type.String({ pattern: "^[A-Za-z0-9_.:-]{1,128}$" }) }, { additionalProperties: true }),
        ]),
      ),
    ),
    background: Type.Optional(Nullable(Type.Boolean())),
    num_ctx: Type.Optional(
      Type.Integer({ minimum: 1, description: "Extension: context window to load the model with" }),
    ),
  },
  { additionalProperties: true, $id: "CreateResponseRequest" },
);
export type ResponsesRequest = Static<typeof ResponsesRequest>;

/** The Response object, loosely: the route returns what response-builder.ts builds. */
export const ResponseObject = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal("response"),
    status: Type.String(),
    output: Type.Array(OpenObject("an output item")),
  },
  { additionalProperties: true, $id: "Response" },
);
