/**
 * Serves READY endpoints (`ANY /dream/<path>`): finds the endpoint whose route matches the method and
 * path (most specific template first), checks the request against its operation (parameters, body),
 * runs the handler in the sandbox with its per-call limits, and checks the response against the
 * response schemas before it leaves. A stale endpoint (past its expiry) is still served, marked stale.
 */
import { GatewayError } from "../errors/gateway-error.js";
import { isStale } from "./endpoint-catalog.js";
import type { EndpointStore } from "./endpoint-store.js";
import type { HandlerInput, HandlerRunner } from "./handler-runner.js";
import { checkOperation, coerceParameters, type SchemaValidator } from "./openapi-check.js";
import { candidateKeys, matchPath, parsePathTemplate, type PathTemplate } from "./path-template.js";
import type { EndpointHandler, EndpointRecord } from "./types.js";

export interface InvokeRequest {
  method: string;
  /** The path after `/dream`, without the query string. */
  path: string;
  query: Record<string, string | string[]>;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON body; undefined when the request had none. */
  body: unknown;
}

export interface InvokeResult {
  status: number;
  body: unknown;
  endpointId: string;
  version: number;
  stale: boolean;
  handlerMs: number;
}

/** What an endpoint's served version needs per call, prepared once per version. */
interface Prepared {
  template: PathTemplate;
  operation: Record<string, unknown>;
  handler: EndpointHandler;
  successStatus: number;
  requestSchemas: object[];
  responseSchemas: object[];
  bodyRequired: boolean;
}

const PREPARED_CACHE = 1000;
/** Request headers never passed to a handler: credentials for agentgate itself. */
const HIDDEN_HEADERS = new Set(["authorization", "proxy-authorization", "cookie", "x-api-key", "api-key"]);

export class EndpointInvoker {
  private readonly prepared = new Map<string, Prepared>();

  constructor(private readonly o: { store: EndpointStore; handlers: HandlerRunner; schemas: SchemaValidator }) {}

  async invoke(req: InvokeRequest, signal?: AbortSignal): Promise<InvokeResult> {
    const method = req.method.toUpperCase();
    const rec = await this.o.store.servedByRoute(method, candidateKeys(req.path));
    if (!rec)
      throw new GatewayError("not_found", `no dreamed endpoint serves ${method} /dream${req.path}`, {
        code: "endpoint_not_found",
      });
    const p = await this.prepare(rec);
    const pathParams = matchPath(p.template, req.path);
    if (!pathParams)
      throw new GatewayError("not_found", `no dreamed endpoint serves ${method} /dream${req.path}`, {
        code: "endpoint_not_found",
      });
    const params = coerceParameters(p.operation, { pathParams, query: req.query }, this.o.schemas);
    if (params.errors.length)
      throw badRequest(`the request's parameters do not match the operation: ${params.errors.join("; ")}`);
    if (req.body === undefined && p.bodyRequired) throw badRequest("this endpoint requires a JSON request body");
    if (req.body !== undefined)
      for (const schema of p.requestSchemas) {
        const errors = this.o.schemas.validate(schema, req.body, "body");
        if (errors.length)
          throw badRequest(`the request body does not match the endpoint's schema: ${errors.join("; ")}`);
      }
    const input: HandlerInput = {
      method,
      path: req.path,
      path_params: params.pathParams,
      query: params.query,
      headers: visibleHeaders(req.headers),
      body: req.body ?? null,
    };
    const outcome = await this.o.handlers.run(p.handler, input, signal);
    if (!outcome.ok) {
      if (outcome.kind === "timeout")
        throw new GatewayError("deadline_exceeded", `the endpoint's handler timed out: ${outcome.message}`, {
          code: "handler_timeout",
        });
      throw new GatewayError("upstream_error", `the endpoint's handler failed (${outcome.kind}): ${outcome.message}`, {
        code: "handler_failed",
      });
    }
    for (const schema of p.responseSchemas) {
      const errors = this.o.schemas.validate(schema, outcome.body, "response");
      if (errors.length)
        throw new GatewayError(
          "upstream_error",
          `the endpoint's handler answered something its schema does not allow: ${errors.join("; ")}`,
          { code: "handler_invalid_response" },
        );
    }
    return {
      status: p.successStatus,
      body: outcome.body,
      endpointId: rec.id,
      version: rec.servedVersion,
      stale: isStale(rec),
      handlerMs: outcome.durationMs,
    };
  }

  private async prepare(rec: EndpointRecord): Promise<Prepared> {
    const key = `${rec.id}:${rec.servedVersion}`;
    const hit = this.prepared.get(key);
    if (hit) return hit;
    const v = await this.o.store.version(rec.id, rec.servedVersion);
    if (!v?.operation || !v.handler)
      throw new GatewayError("not_found", `endpoint ${rec.id} has no served version`, { code: "endpoint_not_found" });
    // The stored operation passed this check when it was validated; it is repeated for the schemas.
    const check = await checkOperation({ method: rec.method, path: rec.path, operation: v.operation }, this.o.schemas);
    if (!check.ok)
      throw new GatewayError("internal", `endpoint ${rec.id}'s operation no longer validates: ${check.problems[0]}`);
    const requestBody = check.operation.requestBody as { required?: unknown } | undefined;
    const prepared: Prepared = {
      template: parsePathTemplate(rec.path),
      operation: check.operation,
      handler: v.handler,
      successStatus: check.successStatus,
      requestSchemas: [rec.requestSchema, check.requestSchema].filter(
        (s): s is object => typeof s === "object" && s !== null,
      ),
      responseSchemas: [rec.responseSchema, check.responseSchema].filter(
        (s): s is object => typeof s === "object" && s !== null,
      ),
      bodyRequired: requestBody?.required === true,
    };
    if (this.prepared.size >= PREPARED_CACHE) this.prepared.delete(this.prepared.keys().next().value!);
    this.prepared.set(key, prepared);
    return prepared;
  }
}

function badRequest(message: string): GatewayError {
  return new GatewayError("invalid_argument", message, { code: "invalid_endpoint_request" });
}

function visibleHeaders(h: Record<string, string | string[] | undefined>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) {
    const name = k.toLowerCase();
    if (v === undefined || HIDDEN_HEADERS.has(name) || name.startsWith("x-agentgate")) continue;
    out[name] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}
