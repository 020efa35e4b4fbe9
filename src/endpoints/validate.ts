/** Checks a DreamEndpoint / POST /endpoints request before anything is stored. */
import { validateCallbackUrl } from "../callbacks/callback-sender.js";
import { GatewayError, invalidArgument } from "../errors/gateway-error.js";
import type { SchemaValidator } from "./openapi-check.js";
import { parsePathTemplate, type PathTemplate } from "./path-template.js";
import { HTTP_METHODS, type DreamRequest, type HttpMethod } from "./types.js";

export const MAX_DESCRIPTION_CHARS = 4000;
export const MAX_REQUEST_EXAMPLES = 20;
const MAX_TTL_MS = 10 * 365 * 24 * 3600 * 1000;

export interface CheckedDream {
  method: HttpMethod;
  template: PathTemplate;
}

export function validateDreamRequest(r: DreamRequest, schemas: SchemaValidator): CheckedDream {
  const method = r.method.trim().toUpperCase() as HttpMethod;
  if (!HTTP_METHODS.includes(method))
    throw invalidArgument(
      `method must be one of ${HTTP_METHODS.join(", ")}, got ${JSON.stringify(r.method)}`,
      "method",
    );
  const template = parsePathTemplate(r.path);
  if (!r.description.trim()) throw invalidArgument("description is required", "description");
  if (r.description.length > MAX_DESCRIPTION_CHARS)
    throw invalidArgument(`description is longer than ${MAX_DESCRIPTION_CHARS} characters`, "description");
  for (const [name, schema] of [
    ["request_schema", r.requestSchema],
    ["response_schema", r.responseSchema],
  ] as const) {
    if (schema === undefined) continue;
    const c = schemas.compile(schema);
    if (!c.ok) throw invalidArgument(`${name} is not a valid JSON Schema: ${c.message}`, name);
  }
  if (r.requestSchema && (method === "GET" || method === "DELETE"))
    throw invalidArgument(`a ${method} endpoint takes no request body, so no request_schema`, "request_schema");
  if (r.examples.length > MAX_REQUEST_EXAMPLES)
    throw invalidArgument(`at most ${MAX_REQUEST_EXAMPLES} examples`, "examples");
  r.examples.forEach((x, i) => {
    const param = `examples[${i}]`;
    for (const k of Object.keys(x.pathParams))
      if (!template.params.includes(k))
        throw invalidArgument(`${param}.path_params.${k} is not a parameter of ${r.path}`, `${param}.path_params`);
    for (const k of template.params)
      if (x.pathParams[k] === undefined)
        throw invalidArgument(`${param} gives no value for {${k}}`, `${param}.path_params`);
    if (x.responseStatus !== 0 && (x.responseStatus < 200 || x.responseStatus > 299))
      throw invalidArgument(
        `${param}.response_status must be a 2xx status (a handler answers only its success status)`,
        `${param}.response_status`,
      );
    const check = (schema: object | undefined, value: unknown, what: string) => {
      if (schema === undefined || value === undefined) return;
      const errors = schemas.validate(schema, value);
      if (errors.length)
        throw invalidArgument(`${param}.${what} does not match the schema: ${errors.join("; ")}`, `${param}.${what}`);
    };
    check(r.requestSchema, x.requestBody, "request_body");
    check(r.responseSchema, x.responseBody, "response_body");
  });
  if (r.callbackUrl) validateCallbackUrl(r.callbackUrl);
  if (r.ttlMs !== undefined && (!Number.isFinite(r.ttlMs) || r.ttlMs < 0 || r.ttlMs > MAX_TTL_MS))
    throw invalidArgument("ttl must be between 0 and 10 years", "ttl");
  if (r.model.length > 200) throw invalidArgument("model is longer than 200 characters", "model");
  if (r.requestId.length > 200) throw invalidArgument("request_id is longer than 200 characters", "request_id");
  const labels = Object.entries(r.labels);
  if (labels.length > 64) throw invalidArgument("at most 64 labels", "labels");
  for (const [k, v] of labels)
    if (!/^[A-Za-z0-9_.\-/]{1,63}$/.test(k) || v.length > 256)
      throw invalidArgument(
        `label ${JSON.stringify(k)} is invalid (keys: 1-63 of [A-Za-z0-9_.-/], values up to 256 chars)`,
        "labels",
      );
  return { method, template };
}

export function notFound(id: string): GatewayError {
  return new GatewayError("not_found", `endpoint ${id} not found`, {
    param: "endpoint_id",
    code: "endpoint_not_found",
  });
}
