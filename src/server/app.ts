/**
 * Builds the Fastify app that serves every protocol on one address: Connect,
 * gRPC and gRPC-Web (through @connectrpc/connect-fastify), the OpenAI REST/SSE
 * shim, /healthz, /metrics and /openapi.json. It does not listen; `listen` in
 * server/lifecycle.ts does.
 */
import { fastifyConnectPlugin } from "@connectrpc/connect-fastify";
import { Code, type ConnectRouter } from "@connectrpc/connect";
import { createContextValues } from "@connectrpc/connect";
import fastifySwagger from "@fastify/swagger";
import type http from "node:http";
import http2 from "node:http2";
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyRequest } from "fastify";
import type { Logger } from "pino";
import { asGatewayError, GatewayError, toOpenAIError } from "../errors/gateway-error.js";
import { redactUrl } from "../observability/logger.js";
import type { Metrics } from "../observability/metrics.js";
import { gatewayInterceptor, rpcOutcomeKey, type RpcOutcome } from "../rpc/interceptors.js";
import { nodeHeaders, presentedToken, type TokenAuth } from "./auth.js";
import { createPolyglotServer, type RequestHandler } from "./polyglot-server.js";
import { RateLimiter } from "./rate-limiter.js";
import { newId } from "../util/ids.js";

export interface RouteModule {
  /** REST routes, registered behind auth. */
  rest?(app: FastifyInstance): Promise<void> | void;
  /** Connect services. */
  rpc?(router: ConnectRouter): void;
  /** Fully qualified names of the services `rpc` registers (for auth routing). */
  services?: string[];
}

export interface AppOptions {
  logger: Logger;
  metrics: Metrics;
  auth: TokenAuth;
  limiter: RateLimiter;
  bodyLimitBytes: number;
  rpcMessageLimitBytes: number;
  /** Aborted when the shutdown grace period ends; RPC handlers see it as ctx.signal. */
  shutdown: AbortSignal;
  /** Routes without auth: only /healthz. */
  publicRoutes(app: FastifyInstance): Promise<void> | void;
  modules: RouteModule[];
  version: string;
}

const SAFE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

function protocolOf(req: FastifyRequest, isRpc: boolean): string {
  const ct = String(req.headers["content-type"] ?? "");
  if (ct.startsWith("application/grpc-web")) return "grpc-web";
  if (ct.startsWith("application/grpc")) return "grpc";
  return isRpc ? "connect" : "rest";
}

/** Validates UTF-8 before parsing: a body that is not UTF-8 is a 400, not mojibake. */
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Deepest array/object nesting a REST body may have; deeper bodies are refused before parsing. */
export const MAX_JSON_DEPTH = 128;

/**
 * True when `text` nests arrays/objects deeper than `max`. One linear scan that skips string
 * contents: JSON.parse's reviver and later serialisers recurse, so a 10 000-level body must never
 * reach them (it would overflow the stack).
 */
export function jsonTooDeep(text: string, max: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true;
    } else if (c === 0x7d || c === 0x5d) depth--;
  }
  return false;
}

/** JSON.parse reviver: drops `__proto__` keys and `constructor: {prototype: ...}` objects. */
function dropPoison(key: string, value: unknown): unknown {
  if (key === "__proto__") return undefined;
  if (key === "constructor" && typeof value === "object" && value !== null && "prototype" in value) return undefined;
  return value;
}

/** The Connect code a failed RPC's HTTP status stands for (used when no interceptor saw the call). */
const HTTP_TO_CONNECT: Record<number, string> = {
  400: "invalid_argument",
  401: "unauthenticated",
  403: "permission_denied",
  404: "unimplemented",
  408: "deadline_exceeded",
  409: "aborted",
  413: "resource_exhausted",
  429: "resource_exhausted",
  499: "canceled",
  500: "internal",
  501: "unimplemented",
  503: "unavailable",
  504: "deadline_exceeded",
};

export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const { logger, metrics, auth, limiter } = opts;
  const rpcServices = new Set(opts.modules.flatMap((m) => m.services ?? []));
  const outcomes = new WeakMap<FastifyRequest, RpcOutcome>();

  const app: FastifyInstance = Fastify({
    loggerInstance: logger as unknown as FastifyBaseLogger,
    // One line per request comes from the onResponse hook below instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: opts.bodyLimitBytes,
    // Typed as a plain HTTP/1 server so routes get Fastify's default types; at run
    // time requests may be HTTP/2 (Fastify and connect-fastify accept both).
    serverFactory: (handler) => createPolyglotServer(handler as RequestHandler) as unknown as http.Server,
    forceCloseConnections: "idle",
    return503OnClosing: true,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && SAFE_REQUEST_ID.test(given) ? given : newId("req", 16);
    },
    ajv: { customOptions: { allErrors: false, coerceTypes: false, removeAdditional: false, useDefaults: false } },
  });

  const isRpc = (url: string) => {
    const first = url.split("/", 2)[1] ?? "";
    return rpcServices.has(first);
  };

  // Both hooks are callback-style: an async hook costs a promise and its resolution per request.
  app.addHook("onRequest", (request, reply, done) => {
    reply.header("x-request-id", request.id);
    const stream = (request.raw as { stream?: http2.ServerHttp2Stream }).stream;
    if (stream) releaseWhenAnswered(stream);
    const url = request.url.split("?", 1)[0]!;
    // RPCs are checked by the interceptor, in Connect's error format; an unknown method under a
    // service's path never reaches it, so it is checked here (no method discovery without a token).
    if (url === "/healthz" || (isRpc(url) && !request.is404)) return done();
    // Scrapes must not eat the token's request budget.
    const limited = limiter.enabled && url !== "/metrics";
    if (!auth.enabled && !limited) return done();
    const headers = nodeHeaders(request.headers);
    try {
      auth.check(headers);
    } catch (err) {
      return done(err as Error);
    }
    if (!limited) return done();
    try {
      limiter.take(RateLimiter.callerKey(presentedToken(headers), request.ip));
    } catch (err) {
      metrics.rateLimited.inc();
      return done(err as Error);
    }
    done();
  });

  // The per-request line carries only fields that hold no secrets (the URL goes through redactUrl),
  // so it skips pino's path redaction, which with wildcard paths runs every field through the
  // redactor: ~6 µs -> ~1.5 µs per line (measured). Same line as request.log wrote (reqId first).
  const accessLog = logger.child({}, { redact: [] });

  app.addHook("onResponse", (request, reply, done) => {
    const url = request.url.split("?", 1)[0]!;
    const rpc = isRpc(url);
    const route = rpc ? url : (request.routeOptions.url ?? "unmatched");
    const protocol = protocolOf(request, rpc);
    const outcome = outcomes.get(request);
    // Requests Connect rejects before any interceptor runs (undecodable or oversized messages,
    // unknown methods) keep the initial "ok": the HTTP status tells the real outcome.
    const status = rpc ? rpcStatus(outcome, request, reply.statusCode) : String(reply.statusCode);
    metrics.requests.inc({ protocol, route, status });
    metrics.requestDuration.observe({ protocol, route }, reply.elapsedTime / 1000);
    accessLog.info(
      {
        reqId: request.id,
        method: request.method,
        url: redactUrl(request.url),
        protocol,
        status,
        ms: Math.round(reply.elapsedTime * 100) / 100,
        remote: request.ip ?? request.raw.socket?.remoteAddress,
      },
      "request",
    );
    done();
  });

  app.setErrorHandler((error, request, reply) => {
    const err = error as Error & {
      code?: string;
      statusCode?: number;
      validation?: unknown[];
      validationContext?: string;
    };
    let mapped: GatewayError;
    if (request.is404 && !(error instanceof GatewayError) && err.code?.startsWith("FST_ERR_CTP")) {
      // No such route: say so, whatever was wrong with the body the 404 handler parsed
      // (auth failures keep their 401: unknown routes are not discoverable without a token).
      return sendError(reply, unknownRoute(request));
    } else if (err.validation) {
      mapped = validationError(err);
    } else if (err.code === "FST_ERR_CTP_BODY_TOO_LARGE") {
      mapped = new GatewayError("invalid_argument", `the request body is larger than ${opts.bodyLimitBytes} bytes`, {
        code: "request_too_large",
      });
      return sendError(reply, mapped, 413);
    } else if (err.code === "FST_ERR_CTP_INVALID_MEDIA_TYPE") {
      mapped = new GatewayError(
        "invalid_argument",
        `unsupported content type ${JSON.stringify(request.headers["content-type"] ?? "")}; send application/json`,
        { code: "unsupported_media_type" },
      );
      return sendError(reply, mapped, 415);
    } else if (err.code === "FST_ERR_CTP_EMPTY_JSON_BODY" || err.code === "FST_ERR_CTP_INVALID_JSON_BODY") {
      mapped = new GatewayError("invalid_argument", "the request body is not valid JSON", { code: "invalid_json" });
    } else if (
      err.code?.startsWith("FST_ERR_CTP") ||
      (err.statusCode && err.statusCode >= 400 && err.statusCode < 500 && !(err instanceof GatewayError))
    ) {
      mapped = new GatewayError("invalid_argument", err.message, { code: "bad_request" });
      return sendError(reply, mapped, err.statusCode ?? 400);
    } else {
      mapped = asGatewayError(err);
    }
    if (mapped.kind === "internal") request.log.error({ err }, "request failed");
    else if (mapped.kind === "unavailable" || mapped.kind === "upstream_error")
      request.log.warn({ error: mapped.message }, "upstream failed");
    return sendError(reply, mapped);
  });

  app.setNotFoundHandler((request, reply) => {
    sendError(reply, unknownRoute(request));
  });

  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "agentgate REST API",
        version: opts.version,
        description:
          "OpenAI-compatible REST/SSE routes of agentgate. The typed API is Connect/gRPC: see proto/agentgate/v1.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    hideUntagged: true,
  });

  await opts.publicRoutes(app);

  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());

  app.get("/metrics", { schema: { tags: ["operations"], summary: "Prometheus metrics" } }, async (_request, reply) => {
    reply.header("content-type", metrics.registry.contentType);
    return metrics.registry.metrics();
  });

  // REST routes live in their own scope: their strict JSON parser must not leak into the
  // Connect plugin's scope, which installs pass-through parsers of its own.
  await app.register(async (rest) => {
    // Only JSON: the inherited text/plain parser would hand a string body to the schema (a 400
    // "body must be object") where the right answer is 415.
    rest.removeAllContentTypeParsers();
    rest.addContentTypeParser("application/json", { parseAs: "buffer" }, (_req, body: Buffer, done) => {
      let text: string;
      try {
        text = utf8.decode(body);
      } catch {
        done(
          new GatewayError("invalid_argument", "the request body is not valid UTF-8", { code: "invalid_encoding" }),
          undefined,
        );
        return;
      }
      if (text.trim() === "") {
        done(
          new GatewayError("invalid_argument", "the request body is empty; send a JSON object", {
            code: "invalid_json",
          }),
          undefined,
        );
        return;
      }
      if (jsonTooDeep(text)) {
        done(
          new GatewayError("invalid_argument", `the request body is nested deeper than ${MAX_JSON_DEPTH} levels`, {
            code: "invalid_json",
          }),
          undefined,
        );
        return;
      }
      try {
        // Prototype-poisoning keys are dropped by the reviver (only when they may be present,
        // escapes included: a reviver makes parsing several times slower). A plain "constructor" field, say a property of a
        // tool's JSON schema, is data and stays.
        const poisoned = text.includes("__proto__") || text.includes("prototype") || text.includes("\\u");
        done(null, poisoned ? JSON.parse(text, dropPoison) : JSON.parse(text));
      } catch (err) {
        done(
          new GatewayError("invalid_argument", `the request body is not valid JSON: ${(err as Error).message}`, {
            code: "invalid_json",
          }),
          undefined,
        );
      }
    });
    for (const m of opts.modules) if (m.rest) await m.rest(rest);
  });

  await app.register(fastifyConnectPlugin, {
    routes: (router) => {
      for (const m of opts.modules) m.rpc?.(router);
    },
    interceptors: [gatewayInterceptor(auth, limiter, logger)],
    readMaxBytes: opts.rpcMessageLimitBytes,
    writeMaxBytes: opts.rpcMessageLimitBytes,
    shutdownSignal: opts.shutdown,
    contextValues: (req) => {
      const outcome: RpcOutcome = { code: "ok", remoteAddress: req.ip };
      outcomes.set(req, outcome);
      return createContextValues().set(rpcOutcomeKey, outcome);
    },
  });

  return app;
}

/**
 * An HTTP/2 request whose body Connect stopped reading (an oversized or undecodable message) keeps
 * its stream, and the buffered bytes, alive until the session closes: the compat request is gone,
 * so nothing consumes the rest and Node never ends the stream; the response's 'finish', the
 * request log line and the metric never come. Once the response is written, discard the rest of
 * the request. (Resetting the stream at once would race the trailers, which Node sends after
 * 'finish'; a client still sending a second later is told to stop with RST_STREAM NO_ERROR.)
 */
function releaseWhenAnswered(stream: http2.ServerHttp2Stream): void {
  stream.once("finish", () => {
    if (stream.destroyed || stream.readableEnded) return;
    stream.removeAllListeners("data"); // the compat layer's reader, which pauses on its dead request
    stream.on("data", () => {});
    stream.resume();
    setTimeout(() => {
      if (!stream.closed && !stream.destroyed) stream.close(http2.constants.NGHTTP2_NO_ERROR);
    }, 1_000).unref();
  });
}

/**
 * The Connect code of a finished RPC. The interceptor records failures it sees; calls Connect
 * refuses before any interceptor runs (undecodable or oversized messages, unknown methods) keep
 * the initial "ok", so the sent grpc-status trailer or the HTTP status tells the real outcome.
 */
function rpcStatus(outcome: RpcOutcome | undefined, request: FastifyRequest, httpStatus: number): string {
  if (outcome && outcome.code !== "ok") return outcome.code;
  const trailers = (request.raw as { stream?: http2.ServerHttp2Stream }).stream?.sentTrailers;
  const grpcStatus = Number(trailers?.["grpc-status"] ?? 0);
  if (grpcStatus > 0) return Code[grpcStatus] ? connectCodeName(grpcStatus as Code) : "unknown";
  if (httpStatus >= 400) return HTTP_TO_CONNECT[httpStatus] ?? "unknown";
  return outcome?.code ?? "ok";
}

const connectCodeName = (code: Code) =>
  Code[code].replace(/[A-Z]/g, (c, i: number) => (i ? "_" : "") + c.toLowerCase());

function unknownRoute(request: FastifyRequest): GatewayError {
  return new GatewayError("not_found", `no route for ${request.method} ${request.url.split("?", 1)[0]}`, {
    code: "unknown_route",
  });
}

function sendError(reply: import("fastify").FastifyReply, err: GatewayError, status?: number) {
  const { status: mappedStatus, body } = toOpenAIError(err);
  if (reply.sent || reply.raw.headersSent) return;
  if (err.kind === "unauthenticated") reply.header("www-authenticate", 'Bearer realm="agentgate"');
  if (err.retryAfterSeconds !== undefined) reply.header("retry-after", String(err.retryAfterSeconds));
  reply
    .code(status ?? mappedStatus)
    .type("application/json")
    .send(body);
}

/** Turns the first Ajv error into an OpenAI-style message and `param`. */
function validationError(err: { validation?: unknown[]; validationContext?: string }): GatewayError {
  const first = (err.validation?.[0] ?? {}) as {
    instancePath?: string;
    message?: string;
    keyword?: string;
    params?: { missingProperty?: string; allowedValues?: unknown[]; additionalProperty?: string };
  };
  const segments = (first.instancePath ?? "").split("/").filter(Boolean);
  if (first.params?.missingProperty) segments.push(first.params.missingProperty);
  const param = segments.reduce((acc, s) => (/^\d+$/.test(s) ? `${acc}[${s}]` : acc ? `${acc}.${s}` : s), "");
  let message = first.message ?? "is invalid";
  if (first.keyword === "required") message = `${param} is required`;
  else if (first.params?.allowedValues)
    message = `${param || "value"} must be one of ${first.params.allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
  else if (first.params?.additionalProperty)
    message = `${param ? `${param}: ` : ""}unknown field ${first.params.additionalProperty}`;
  else message = `${param || "body"} ${message}`;
  const where = err.validationContext && err.validationContext !== "body" ? ` (in ${err.validationContext})` : "";
  return new GatewayError("invalid_argument", `invalid request: ${message}${where}`, {
    param: param || undefined,
    code: "invalid_value",
  });
}
