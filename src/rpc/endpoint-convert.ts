/**
 * agentgate.v1 EndpointService messages <-> the endpoint domain's types (src/endpoints/types.ts).
 * The REST routes use the same messages in their JSON form (proto field names), so both layers
 * describe an endpoint identically.
 */
import { create, toJson, type JsonObject } from "@bufbuild/protobuf";
import { durationFromMs, durationMs, timestampFromDate } from "@bufbuild/protobuf/wkt";
import { SandboxDriver as PbSandbox } from "../../gen/agentgate/v1/agent_service_pb.js";
import {
  EndpointExampleSchema,
  EndpointFailureKind as PbKind,
  EndpointFailureSchema,
  EndpointHandlerSchema,
  EndpointSchema,
  EndpointStatus as PbStatus,
  EndpointVersionSchema,
  type DreamEndpointRequest,
  type Endpoint as PbEndpoint,
  type EndpointExample as PbExample,
  type ListEndpointsRequest,
} from "../../gen/agentgate/v1/endpoint_service_pb.js";
import { invalidArgument } from "../errors/gateway-error.js";
import type {
  DreamRequest,
  EndpointExample,
  EndpointFailure,
  EndpointHandler,
  EndpointRecord,
  EndpointStatus,
  EndpointVersion,
  FailureKind,
  ListEndpointsQuery,
} from "../endpoints/types.js";
import type { SandboxDriverName } from "../sandbox/types.js";
import { pbLimits } from "./agent-convert.js";
import { pbCallbackAttempt, pbValue, valueJson } from "./job-convert.js";

const STATUSES: Array<[PbStatus, EndpointStatus]> = [
  [PbStatus.DREAMING, "dreaming"],
  [PbStatus.VALIDATING, "validating"],
  [PbStatus.READY, "ready"],
  [PbStatus.FAILED, "failed"],
  [PbStatus.STALE, "stale"],
  [PbStatus.EXPIRED, "expired"],
];
const KINDS: Array<[PbKind, FailureKind]> = [
  [PbKind.JOB_FAILED, "job_failed"],
  [PbKind.MISSING_OUTPUT, "missing_output"],
  [PbKind.INVALID_OPENAPI, "invalid_openapi"],
  [PbKind.HANDLER_ERROR, "handler_error"],
  [PbKind.INVALID_JSON, "invalid_json"],
  [PbKind.SCHEMA_MISMATCH, "schema_mismatch"],
  [PbKind.EXAMPLE_MISMATCH, "example_mismatch"],
  [PbKind.TIMEOUT, "timeout"],
  [PbKind.SANDBOX_VIOLATION, "sandbox_violation"],
];
const SANDBOXES: Array<[PbSandbox, SandboxDriverName]> = [
  [PbSandbox.NONE, "none"],
  [PbSandbox.BWRAP, "bwrap"],
  [PbSandbox.NSJAIL, "nsjail"],
];
const toPb = <P, D>(pairs: Array<[P, D]>, d: D, fallback: P): P => pairs.find(([, x]) => x === d)?.[0] ?? fallback;
const ts = (d: Date | undefined) => (d ? timestampFromDate(d) : undefined);

// --- requests -> domain ---

export function toExample(x: PbExample): EndpointExample {
  return {
    description: x.description,
    pathParams: { ...x.pathParams },
    query: { ...x.query },
    requestBody: valueJson(x.requestBody),
    responseStatus: x.responseStatus,
    responseBody: valueJson(x.responseBody),
  };
}

export function toDreamRequest(r: DreamEndpointRequest): DreamRequest {
  let ttlMs: number | undefined;
  if (r.ttl) {
    ttlMs = durationMs(r.ttl);
    if (!Number.isFinite(ttlMs) || ttlMs < 0) throw invalidArgument("ttl must not be negative", "ttl");
  }
  return {
    method: r.method,
    path: r.path,
    description: r.description,
    requestSchema: r.requestSchema,
    responseSchema: r.responseSchema,
    examples: r.examples.map(toExample),
    callbackUrl: r.callbackUrl,
    ttlMs,
    force: r.force,
    model: r.model,
    labels: { ...r.labels },
    requestId: r.requestId,
  };
}

export function toEndpointStatuses(statuses: PbStatus[]): EndpointStatus[] {
  return statuses.map((s) => {
    const d = STATUSES.find(([p]) => p === s)?.[1];
    if (!d) throw invalidArgument("statuses must be DREAMING, VALIDATING, READY, FAILED, STALE or EXPIRED", "statuses");
    return d;
  });
}

export function toListQuery(r: ListEndpointsRequest): ListEndpointsQuery {
  if (r.pageSize > 500) throw invalidArgument("page_size must be at most 500", "page_size");
  return {
    pageSize: r.pageSize,
    pageToken: r.pageToken,
    statuses: toEndpointStatuses(r.statuses),
    query: r.query,
    minSimilarity: r.minSimilarity,
    method: r.method,
    labels: { ...r.labels },
  };
}

// --- domain -> responses ---

export function pbStatus(s: EndpointStatus): PbStatus {
  return toPb(STATUSES, s, PbStatus.UNSPECIFIED);
}

function pbExample(x: EndpointExample) {
  return create(EndpointExampleSchema, {
    description: x.description,
    pathParams: x.pathParams,
    query: x.query,
    requestBody: pbValue(x.requestBody),
    responseStatus: x.responseStatus,
    responseBody: pbValue(x.responseBody),
  });
}

function pbFailure(f: EndpointFailure) {
  return create(EndpointFailureSchema, {
    kind: toPb(KINDS, f.kind, PbKind.UNSPECIFIED),
    message: f.message,
    exampleIndex: f.exampleIndex,
  });
}

function pbHandler(h: EndpointHandler | undefined, withSource: boolean) {
  if (!h) return undefined;
  return create(EndpointHandlerSchema, {
    runtime: h.runtime,
    entrypoint: h.entrypoint,
    source: withSource ? h.source : "",
    sha256: h.sha256,
    timeout: durationFromMs(h.timeoutMs),
    limits: pbLimits(h.limits),
    sandbox: toPb(SANDBOXES, h.sandbox, PbSandbox.UNSPECIFIED),
  });
}

function pbVersion(v: EndpointVersion) {
  return create(EndpointVersionSchema, {
    version: v.version,
    status: pbStatus(v.status),
    jobId: v.jobId,
    openapiOperation: v.operation as JsonObject | undefined,
    handler: pbHandler(v.handler, true),
    examples: v.examples.map(pbExample),
    failureReasons: v.failureReasons.map(pbFailure),
    createdAt: ts(v.createdAt),
    completedAt: ts(v.completedAt),
  });
}

/**
 * The record as the API shows it. `full` (GetEndpoint, DreamEndpoint, WatchEndpoint) carries the
 * handler source and every version; list entries leave both out.
 */
export function pbEndpoint(e: EndpointRecord, full: boolean): PbEndpoint {
  const served = e.versions.find((v) => v.version === e.servedVersion && e.servedVersion > 0);
  const latest = e.versions.find((v) => v.version === e.latestVersion);
  const shown = served ?? latest;
  return create(EndpointSchema, {
    id: e.id,
    method: e.method,
    path: e.path,
    description: e.description,
    requestSchema: e.requestSchema as JsonObject | undefined,
    responseSchema: e.responseSchema as JsonObject | undefined,
    status: pbStatus(e.status),
    cacheHit: e.cacheHit,
    similarity: e.similarity,
    version: e.servedVersion,
    openapiOperation: shown?.operation as JsonObject | undefined,
    handler: pbHandler(shown?.handler, full),
    examples: (shown?.examples ?? []).map(pbExample),
    failureReasons: (latest?.status === "failed" ? latest.failureReasons : []).map(pbFailure),
    versions: full ? e.versions.map(pbVersion) : [],
    callbackUrl: e.callbackUrl,
    callbackAttempts: e.callbackAttempts.map(pbCallbackAttempt),
    jobId: e.jobId,
    invokePath: `/dream${e.path}`,
    createdAt: ts(e.createdAt),
    updatedAt: ts(e.updatedAt),
    expiresAt: ts(e.expiresAt),
    ttl: e.ttlMs ? durationFromMs(e.ttlMs) : undefined,
    labels: e.labels,
  });
}

/** The JSON form used by REST and callbacks: proto field names (snake_case), enums as names, every field present. */
export function endpointJson(e: EndpointRecord, full = true): JsonObject {
  return toJson(EndpointSchema, pbEndpoint(e, full), {
    useProtoFieldName: true,
    alwaysEmitImplicit: true,
  }) as JsonObject;
}
