/**
 * The endpoint domain's types (proto agentgate.v1 EndpointService <-> src/rpc/endpoint-convert.ts).
 * A dreamed endpoint is an HTTP operation a client described; a Codex job designs it (an OpenAPI 3.1
 * operation, a handler program, examples), agentgate validates the design in its sandbox and serves
 * it at `/dream<path>`. docs/endpoints.md has the life cycle.
 */
import type { CallbackAttempt } from "../jobs/types.js";
import type { ProcessLimits, SandboxDriverName } from "../sandbox/types.js";

export type EndpointStatus = "dreaming" | "validating" | "ready" | "failed" | "stale" | "expired";
export const ENDPOINT_STATUSES: readonly EndpointStatus[] = [
  "dreaming",
  "validating",
  "ready",
  "failed",
  "stale",
  "expired",
];
/** Statuses in which a dream is under way (a job or its validation). */
export const DREAMING_STATUSES: ReadonlySet<EndpointStatus> = new Set(["dreaming", "validating", "stale"]);
/** WatchEndpoint with until_settled ends on these. */
export const SETTLED_STATUSES: ReadonlySet<EndpointStatus> = new Set(["ready", "failed", "expired"]);

/** The status a version reaches; the endpoint's own status adds stale and expired. */
export type VersionStatus = Extract<EndpointStatus, "dreaming" | "validating" | "ready" | "failed">;

export type HttpMethod = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
export const HTTP_METHODS: readonly HttpMethod[] = ["GET", "POST", "PUT", "PATCH", "DELETE"];

export interface EndpointExample {
  description: string;
  pathParams: Record<string, string>;
  query: Record<string, string>;
  /** undefined: no body. */
  requestBody?: unknown;
  /** 0 means the operation's success status. */
  responseStatus: number;
  /** undefined: any body that validates. */
  responseBody?: unknown;
}

export type FailureKind =
  | "job_failed"
  | "missing_output"
  | "invalid_openapi"
  | "handler_error"
  | "invalid_json"
  | "schema_mismatch"
  | "example_mismatch"
  | "timeout"
  | "sandbox_violation";

export interface EndpointFailure {
  kind: FailureKind;
  message: string;
  exampleIndex?: number;
}

export type HandlerRuntime = "node" | "python3" | "sh";

export interface EndpointHandler {
  runtime: HandlerRuntime;
  /** File name within the endpoint's directory ("handler.js"). */
  entrypoint: string;
  source: string;
  sha256: string;
  timeoutMs: number;
  limits: ProcessLimits;
  sandbox: SandboxDriverName;
}

export interface EndpointVersion {
  version: number;
  status: VersionStatus;
  jobId: string;
  /** The description this version was dreamed from. */
  description: string;
  operation?: Record<string, unknown>;
  handler?: EndpointHandler;
  examples: EndpointExample[];
  failureReasons: EndpointFailure[];
  createdAt: Date;
  completedAt?: Date;
}

export interface EndpointRecord {
  id: string;
  method: HttpMethod;
  /** Path template ("/images/{id}/thumbnail"). */
  path: string;
  /** The template with parameters as `{}`: the route's identity (one endpoint per method and key). */
  pathKey: string;
  description: string;
  requestSchema?: Record<string, unknown>;
  responseSchema?: Record<string, unknown>;
  /** The client's examples (the handler must pass them as well as Codex's own). */
  requestedExamples: EndpointExample[];
  status: EndpointStatus;
  /** The served version; 0 while none is READY. */
  servedVersion: number;
  latestVersion: number;
  jobId: string;
  model: string;
  callbackUrl: string;
  callbackAttempts: CallbackAttempt[];
  ttlMs?: number;
  expiresAt?: Date;
  labels: Record<string, string>;
  createdAt: Date;
  updatedAt: Date;
  /** Newest first; only filled by get(). */
  versions: EndpointVersion[];
  /** DreamEndpoint's answer: an existing endpoint was returned. */
  cacheHit: boolean;
  /** Cosine similarity to the call's description or query; 0 otherwise. */
  similarity: number;
}

/** What DreamEndpoint / POST /endpoints asks for. */
export interface DreamRequest {
  method: string;
  path: string;
  description: string;
  requestSchema?: Record<string, unknown>;
  responseSchema?: Record<string, unknown>;
  examples: EndpointExample[];
  callbackUrl: string;
  /** undefined: the server default (ENDPOINT_TTL_SECONDS); 0: never expires. */
  ttlMs?: number;
  force: boolean;
  model: string;
  labels: Record<string, string>;
  requestId: string;
}

export interface ListEndpointsQuery {
  pageSize: number;
  pageToken: string;
  statuses: EndpointStatus[];
  query: string;
  minSimilarity: number;
  method: string;
  labels: Record<string, string>;
}
