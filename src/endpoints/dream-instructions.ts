/**
 * What a dreaming job is asked to do: the prompt (rendered from the request) and its context files
 * (similar endpoints already dreamed, and the previous failed attempt with its reasons). The job
 * writes three files into `output/`; endpoint-validator.ts reads them back from the job record.
 */
import type { ContextFile } from "../jobs/types.js";
import type { EndpointExample, EndpointFailure, EndpointRecord, EndpointVersion } from "./types.js";

export const OPERATION_FILE = "operation.json";
export const EXAMPLES_FILE = "examples.json";
/** Handler file names Codex may write, and the runtime each one runs with. */
export const HANDLER_FILES = {
  "handler.js": "node",
  "handler.mjs": "node",
  "handler.cjs": "node",
  "handler.py": "python3",
  "handler.sh": "sh",
} as const;

const fence = (v: unknown): string => "```json\n" + JSON.stringify(v, null, 2) + "\n```";

export interface DreamContext {
  endpoint: Pick<
    EndpointRecord,
    "method" | "path" | "description" | "requestSchema" | "responseSchema" | "requestedExamples"
  >;
  handlerTimeoutMs: number;
  similar: Array<{ endpoint: EndpointRecord; version: EndpointVersion; similarity: number }>;
  previous?: EndpointVersion;
}

export function renderDreamPrompt(c: DreamContext): string {
  const e = c.endpoint;
  const takesBody = e.method !== "GET" && e.method !== "DELETE";
  const parts: string[] = [];
  parts.push(
    "# Design an HTTP endpoint\n\n" +
      `agentgate will serve the endpoint \`${e.method} ${e.path}\` (at \`/dream${e.path}\`) by running a handler ` +
      "program you write, once per request, in a sandbox without network access.",
  );
  const req = [`- Method: \`${e.method}\``, `- Path template: \`${e.path}\``, `- What it does: ${e.description}`];
  parts.push("## The request\n\n" + req.join("\n"));
  if (e.requestSchema)
    parts.push("Request body JSON Schema (use it unchanged in the operation):\n\n" + fence(e.requestSchema));
  if (e.responseSchema)
    parts.push("Response body JSON Schema (use it unchanged in the operation):\n\n" + fence(e.responseSchema));
  if (e.requestedExamples.length)
    parts.push(
      "Examples from the client; the handler must answer each exactly as shown:\n\n" +
        fence(e.requestedExamples.map(exampleJson)),
    );
  parts.push(
    "## Write three files into `output/` (relative to the current directory)\n\n" +
      `1. \`output/${OPERATION_FILE}\`: one OpenAPI 3.1 Operation Object (not a whole document) for ` +
      `\`${e.method.toLowerCase()} ${e.path}\`, with \`summary\`, \`description\`, every \`{parameter}\` of the path ` +
      "declared `in: path` with `required: true`, query parameters if any" +
      (takesBody ? ", a `requestBody` with `content.application/json.schema`" : "") +
      ", and `responses` with exactly one 2XX response whose `content.application/json.schema` describes the " +
      "response body. No `$ref`.\n" +
      "2. The handler, exactly one of `output/handler.js` (Node.js 20, CommonJS), `output/handler.mjs` (Node.js, " +
      "ES module), `output/handler.py` (Python 3) or `output/handler.sh` (POSIX sh). It reads ONE JSON object " +
      'from standard input, `{"method", "path", "path_params", "query", "headers", "body"}` (path and query ' +
      "parameters already converted to the types the operation declares), writes the response body as one JSON " +
      "value to standard output and exits with code 0. Standard library only; no network; write files only in " +
      `its current directory; finish within ${Math.round(c.handlerTimeoutMs / 1000)} seconds.\n` +
      `3. \`output/${EXAMPLES_FILE}\`: a JSON array of 2 to 5 examples, each ` +
      '`{"description", "path_params", "query", "request_body", "response_body"}`, where `response_body` is ' +
      "exactly what the handler writes for that request. agentgate runs the handler on every example (and on " +
      "the client's) and checks the output against the response schema and the example.",
  );
  const ctx: string[] = [];
  if (c.similar.length)
    ctx.push(
      "- `context/similar/`: endpoints already dreamed that resemble this one (operation, handler, examples). " +
        "Reuse what fits.",
    );
  if (c.previous)
    ctx.push(
      "- `context/previous-attempt.json`: the previous attempt at this endpoint and why agentgate rejected it:\n" +
        c.previous.failureReasons.map((f) => `  - ${describeFailure(f)}`).join("\n") +
        "\n  Fix every one of these problems.",
    );
  if (ctx.length) parts.push("## Context\n\n" + ctx.join("\n"));
  return parts.join("\n\n") + "\n";
}

export function dreamContextFiles(c: DreamContext): ContextFile[] {
  const files: ContextFile[] = c.similar.map((s, i) => ({
    path: `similar/${i + 1}-${s.endpoint.method.toLowerCase()}${s.endpoint.path.replace(/[^A-Za-z0-9]+/g, "-")}.json`,
    contents: JSON.stringify(
      {
        method: s.endpoint.method,
        path: s.endpoint.path,
        description: s.endpoint.description,
        similarity: Number(s.similarity.toFixed(3)),
        operation: s.version.operation,
        handler: s.version.handler && { file: s.version.handler.entrypoint, source: s.version.handler.source },
        examples: s.version.examples.map(exampleJson),
      },
      null,
      2,
    ),
  }));
  if (c.previous)
    files.push({
      path: "previous-attempt.json",
      contents: JSON.stringify(
        {
          version: c.previous.version,
          failure_reasons: c.previous.failureReasons.map((f) => ({
            kind: f.kind,
            message: f.message,
            ...(f.exampleIndex !== undefined ? { example_index: f.exampleIndex } : {}),
          })),
          operation: c.previous.operation,
          handler: c.previous.handler && { file: c.previous.handler.entrypoint, source: c.previous.handler.source },
          examples: c.previous.examples.map(exampleJson),
        },
        null,
        2,
      ),
    });
  return files;
}

/** An example in the snake_case form of examples.json. */
export function exampleJson(x: EndpointExample): Record<string, unknown> {
  return {
    ...(x.description ? { description: x.description } : {}),
    ...(Object.keys(x.pathParams).length ? { path_params: x.pathParams } : {}),
    ...(Object.keys(x.query).length ? { query: x.query } : {}),
    ...(x.requestBody !== undefined ? { request_body: x.requestBody } : {}),
    ...(x.responseStatus ? { response_status: x.responseStatus } : {}),
    ...(x.responseBody !== undefined ? { response_body: x.responseBody } : {}),
  };
}

export function describeFailure(f: EndpointFailure): string {
  return `${f.kind}${f.exampleIndex !== undefined ? ` (example ${f.exampleIndex})` : ""}: ${f.message}`;
}
