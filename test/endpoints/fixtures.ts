/** Designs a fake Codex "writes" for dreamed-endpoint tests (test/doubles/fake-codex.mjs writeFiles). */

export const TRUNCATE_OPERATION = {
  summary: "Truncate a text",
  description: "Cuts a text to at most `width` characters.",
  requestBody: {
    required: true,
    content: {
      "application/json": {
        schema: {
          type: "object",
          required: ["text", "width"],
          properties: { text: { type: "string" }, width: { type: "integer", minimum: 0 } },
          additionalProperties: false,
        },
      },
    },
  },
  responses: {
    "200": {
      description: "The truncated text",
      content: {
        "application/json": {
          schema: {
            type: "object",
            required: ["text", "length"],
            properties: { text: { type: "string" }, length: { type: "integer" } },
          },
        },
      },
    },
  },
};

export const TRUNCATE_HANDLER = `const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
const { text, width } = input.body;
const out = text.slice(0, width);
process.stdout.write(JSON.stringify({ text: out, length: out.length }));
`;

export const TRUNCATE_EXAMPLES = [
  { description: "cut", request_body: { text: "hello world", width: 5 }, response_body: { text: "hello", length: 5 } },
  { description: "short", request_body: { text: "hi", width: 5 }, response_body: { text: "hi", length: 2 } },
];

/** A fake-codex turn that writes an operation, a handler and examples into output/. */
export function designTurn(
  o: { operation?: unknown; handler?: string; handlerFile?: string; examples?: unknown; omit?: string[] } = {},
): Record<string, unknown> {
  const files: Record<string, unknown> = {
    "output/operation.json": o.operation ?? TRUNCATE_OPERATION,
    [`output/${o.handlerFile ?? "handler.js"}`]: o.handler ?? TRUNCATE_HANDLER,
    "output/examples.json": o.examples ?? TRUNCATE_EXAMPLES,
  };
  for (const f of o.omit ?? []) delete files[`output/${f}`];
  return { messages: ["I wrote the operation, the handler and the examples."], writeFiles: files };
}

/** A GET operation with a path parameter: /greetings/{name}?times=N. */
export const GREETING_OPERATION = {
  summary: "Greet someone",
  parameters: [{ name: "times", in: "query", required: false, schema: { type: "integer", minimum: 1, maximum: 3 } }],
  responses: {
    "200": {
      description: "A greeting",
      content: {
        "application/json": {
          schema: { type: "object", required: ["greeting"], properties: { greeting: { type: "string" } } },
        },
      },
    },
  },
};

export const GREETING_HANDLER = `import json, sys
req = json.load(sys.stdin)
times = req["query"].get("times", 1)
print(json.dumps({"greeting": " ".join(["hello " + req["path_params"]["name"]] * times)}))
`;

export const GREETING_EXAMPLES = [
  { path_params: { name: "ada" }, response_body: { greeting: "hello ada" } },
  { path_params: { name: "bob" }, query: { times: "2" }, response_body: { greeting: "hello bob hello bob" } },
];
