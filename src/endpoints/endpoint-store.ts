/**
 * SQL for dreamed endpoints (migration 0009): the `endpoints` row per route and its
 * `endpoint_versions`. Status changes that several replicas could race on are single conditional
 * UPDATEs (claimVersion, expireDue), so exactly one replica acts on each.
 */
import type { CallbackAttempt } from "../jobs/types.js";
import type { Database, Queryable } from "../storage/database.js";
import { keysetPage } from "../storage/page-token.js";
import type {
  EndpointExample,
  EndpointFailure,
  EndpointHandler,
  EndpointRecord,
  EndpointStatus,
  EndpointVersion,
  HttpMethod,
  VersionStatus,
} from "./types.js";

type Json<T> = T | string;
const json = <T>(v: Json<T>): T => (typeof v === "string" ? (JSON.parse(v) as T) : v);
const jsonOrUndefined = <T>(v: Json<T> | null | undefined): T | undefined =>
  v === null || v === undefined ? undefined : json(v);
const date = (v: Date | string | null): Date | undefined => (v === null ? undefined : new Date(v));
const toJsonb = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));

interface EndpointRow {
  id: string;
  method: HttpMethod;
  path: string;
  path_key: string;
  description: string;
  request_schema: Json<Record<string, unknown>> | null;
  response_schema: Json<Record<string, unknown>> | null;
  requested_examples: Json<EndpointExample[]>;
  status: EndpointStatus;
  served_version: number;
  latest_version: number;
  job_id: string;
  model: string;
  callback_url: string;
  callback_attempts: Json<
    (Omit<CallbackAttempt, "attemptedAt" | "nextAttemptAt"> & { attemptedAt: string; nextAttemptAt?: string })[]
  >;
  ttl_ms: string | number | null;
  expires_at: Date | null;
  labels: Json<Record<string, string>>;
  created_at: Date;
  updated_at: Date;
}

interface VersionRow {
  endpoint_id: string;
  version: number;
  status: VersionStatus;
  job_id: string;
  description: string;
  operation: Json<Record<string, unknown>> | null;
  handler: Json<EndpointHandler> | null;
  examples: Json<EndpointExample[]>;
  failure_reasons: Json<EndpointFailure[]>;
  created_at: Date;
  completed_at: Date | null;
}

const ENDPOINT_COLUMNS = `id, method, path, path_key, description, request_schema, response_schema, requested_examples,
  status, served_version, latest_version, job_id, model, callback_url, callback_attempts, ttl_ms, expires_at, labels,
  created_at, updated_at`;
const VERSION_COLUMNS = `endpoint_id, version, status, job_id, description, operation, handler, examples,
  failure_reasons, created_at, completed_at`;

function toEndpoint(r: EndpointRow): EndpointRecord {
  return {
    id: r.id,
    method: r.method,
    path: r.path,
    pathKey: r.path_key,
    description: r.description,
    requestSchema: jsonOrUndefined(r.request_schema),
    responseSchema: jsonOrUndefined(r.response_schema),
    requestedExamples: json(r.requested_examples),
    status: r.status,
    servedVersion: r.served_version,
    latestVersion: r.latest_version,
    jobId: r.job_id,
    model: r.model,
    callbackUrl: r.callback_url,
    callbackAttempts: json(r.callback_attempts).map((a) => ({
      ...a,
      attemptedAt: new Date(a.attemptedAt),
      nextAttemptAt: a.nextAttemptAt ? new Date(a.nextAttemptAt) : undefined,
    })),
    ttlMs: r.ttl_ms === null ? undefined : Number(r.ttl_ms),
    expiresAt: date(r.expires_at),
    labels: json(r.labels),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
    versions: [],
    cacheHit: false,
    similarity: 0,
  };
}

function toVersion(r: VersionRow): EndpointVersion {
  return {
    version: r.version,
    status: r.status,
    jobId: r.job_id,
    description: r.description,
    operation: jsonOrUndefined(r.operation),
    handler: jsonOrUndefined(r.handler),
    examples: json(r.examples),
    failureReasons: json(r.failure_reasons),
    createdAt: new Date(r.created_at),
    completedAt: date(r.completed_at),
  };
}

/** Postgres' unique_violation (both engines report it with this SQLSTATE). */
export function isUniqueViolation(err: unknown): boolean {
  return (err as { code?: string } | undefined)?.code === "23505";
}

/** The fields of a new dream that the endpoint row keeps (a forced re-dream overwrites them). */
export interface DreamInputs {
  description: string;
  requestSchema?: Record<string, unknown>;
  responseSchema?: Record<string, unknown>;
  requestedExamples: EndpointExample[];
  callbackUrl: string;
  ttlMs?: number;
  model: string;
  labels: Record<string, string>;
}

export class EndpointStore {
  constructor(private readonly db: Database) {}

  async get(id: string, opts: { versions: boolean }): Promise<EndpointRecord | undefined> {
    const r = await this.db.query<EndpointRow>(`SELECT ${ENDPOINT_COLUMNS} FROM endpoints WHERE id = $1`, [id]);
    const row = r.rows[0];
    if (!row) return undefined;
    const rec = toEndpoint(row);
    rec.versions = opts.versions
      ? await this.versions(id)
      : await this.versions(id, [rec.servedVersion, rec.latestVersion]);
    return rec;
  }

  /** Versions newest first; only the listed numbers when `only` is given. */
  async versions(id: string, only?: number[]): Promise<EndpointVersion[]> {
    const r = await this.db.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM endpoint_versions WHERE endpoint_id = $1
        ${only ? "AND version = ANY($2::int[])" : ""} ORDER BY version DESC`,
      only ? [id, only] : [id],
    );
    return r.rows.map(toVersion);
  }

  /** Fills each record's served and latest versions (one query for a page of records). */
  async attachShownVersions(records: EndpointRecord[]): Promise<EndpointRecord[]> {
    if (records.length === 0) return records;
    const r = await this.db.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM endpoint_versions v
        WHERE v.endpoint_id = ANY($1::text[])
          AND v.version IN (SELECT e.served_version FROM endpoints e WHERE e.id = v.endpoint_id
                            UNION ALL SELECT e.latest_version FROM endpoints e WHERE e.id = v.endpoint_id)
        ORDER BY v.version DESC`,
      [records.map((e) => e.id)],
    );
    const byId = new Map<string, EndpointVersion[]>();
    for (const row of r.rows) {
      const list = byId.get(row.endpoint_id) ?? [];
      list.push(toVersion(row));
      byId.set(row.endpoint_id, list);
    }
    for (const e of records) e.versions = byId.get(e.id) ?? [];
    return records;
  }

  async version(id: string, version: number): Promise<EndpointVersion | undefined> {
    const r = await this.db.query<VersionRow>(
      `SELECT ${VERSION_COLUMNS} FROM endpoint_versions WHERE endpoint_id = $1 AND version = $2`,
      [id, version],
    );
    return r.rows[0] ? toVersion(r.rows[0]) : undefined;
  }

  async idByRoute(method: string, pathKey: string): Promise<string | undefined> {
    const r = await this.db.query<{ id: string }>("SELECT id FROM endpoints WHERE method = $1 AND path_key = $2", [
      method,
      pathKey,
    ]);
    return r.rows[0]?.id;
  }

  /** The endpoint whose route has one of `keys` (most specific first) and a served version. */
  async servedByRoute(method: string, keys: string[]): Promise<EndpointRecord | undefined> {
    if (keys.length === 0) return undefined;
    const r = await this.db.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM endpoints WHERE method = $1 AND path_key = ANY($2::text[]) AND served_version > 0`,
      [method, keys],
    );
    const rank = new Map(keys.map((k, i) => [k, i]));
    const row = r.rows.sort((a, b) => rank.get(a.path_key)! - rank.get(b.path_key)!)[0];
    return row ? toEndpoint(row) : undefined;
  }

  /** Endpoints with a served version, for the OpenAPI document. */
  async served(): Promise<Array<EndpointRecord & { served: EndpointVersion }>> {
    const r = await this.db.query<EndpointRow & { v_operation: VersionRow["operation"] }>(
      `SELECT ${ENDPOINT_COLUMNS.replace(/\b(\w+)\b/g, "e.$1")}, v.operation AS v_operation
         FROM endpoints e JOIN endpoint_versions v ON v.endpoint_id = e.id AND v.version = e.served_version
        ORDER BY e.path, e.method`,
    );
    return r.rows.map((row) => {
      const rec = toEndpoint(row);
      return {
        ...rec,
        served: {
          version: rec.servedVersion,
          status: "ready" as const,
          jobId: "",
          description: rec.description,
          operation: jsonOrUndefined(row.v_operation),
          examples: [],
          failureReasons: [],
          createdAt: rec.createdAt,
        },
      };
    });
  }

  async idByRequestId(requestId: string): Promise<string | undefined> {
    const r = await this.db.query<{ endpoint_id: string }>(
      "SELECT endpoint_id FROM endpoint_versions WHERE request_id = $1",
      [requestId],
    );
    return r.rows[0]?.endpoint_id;
  }

  /** A new endpoint with version 1 DREAMING; throws a unique violation when the route (or request id) is taken. */
  async create(
    e: { id: string; method: string; path: string; pathKey: string; requestId: string } & DreamInputs,
  ): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO endpoints (id, method, path, path_key, description, request_schema, response_schema,
            requested_examples, status, served_version, latest_version, model, callback_url, ttl_ms, labels,
            created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb, $8::jsonb, 'dreaming', 0, 1, $9, $10, $11, $12::jsonb, now(), now())`,
        [
          e.id,
          e.method,
          e.path,
          e.pathKey,
          e.description,
          toJsonb(e.requestSchema),
          toJsonb(e.responseSchema),
          JSON.stringify(e.requestedExamples),
          e.model,
          e.callbackUrl,
          e.ttlMs ?? null,
          JSON.stringify(e.labels),
        ],
      );
      await insertVersion(tx, e.id, 1, e.description, e.requestId);
    });
  }

  /**
   * Starts the next version of an endpoint: DREAMING (STALE when its served version has expired), with
   * the new inputs when given (a forced re-dream). `expect` guards against a concurrent re-dream: the
   * endpoint must still be at that latest version. Returns the new version number, or undefined when
   * another call got there first.
   */
  async startVersion(
    id: string,
    expectLatest: number,
    status: "dreaming" | "stale",
    requestId: string,
    inputs?: DreamInputs,
  ): Promise<number | undefined> {
    return this.db.transaction(async (tx) => {
      const set = inputs
        ? `, description = $4, request_schema = $5::jsonb, response_schema = $6::jsonb, requested_examples = $7::jsonb,
           callback_url = $8, ttl_ms = $9, model = $10, labels = $11::jsonb`
        : "";
      const params: unknown[] = [id, expectLatest, status];
      if (inputs)
        params.push(
          inputs.description,
          toJsonb(inputs.requestSchema),
          toJsonb(inputs.responseSchema),
          JSON.stringify(inputs.requestedExamples),
          inputs.callbackUrl,
          inputs.ttlMs ?? null,
          inputs.model,
          JSON.stringify(inputs.labels),
        );
      const r = await tx.query<{ latest_version: number; description: string }>(
        `UPDATE endpoints SET latest_version = latest_version + 1, status = $3, job_id = '', updated_at = now() ${set}
          WHERE id = $1 AND latest_version = $2 RETURNING latest_version, description`,
        params,
      );
      const row = r.rows[0];
      if (!row) return undefined;
      await insertVersion(tx, id, row.latest_version, row.description, requestId);
      return row.latest_version;
    });
  }

  async setJob(id: string, version: number, jobId: string): Promise<void> {
    await this.db.transaction(async (tx) => {
      await tx.query(
        "UPDATE endpoint_versions SET job_id = $3, updated_at = now() WHERE endpoint_id = $1 AND version = $2",
        [id, version, jobId],
      );
      await tx.query("UPDATE endpoints SET job_id = $3, updated_at = now() WHERE id = $1 AND latest_version = $2", [
        id,
        version,
        jobId,
      ]);
    });
  }

  /**
   * Claims a DREAMING version whose job ended (or a VALIDATING one abandoned for `staleMs`) for
   * validation. True for exactly one caller.
   */
  async claimVersion(id: string, version: number, staleMs: number): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const r = await tx.query(
        `UPDATE endpoint_versions SET status = 'validating', updated_at = now()
          WHERE endpoint_id = $1 AND version = $2
            AND (status = 'dreaming' OR (status = 'validating' AND updated_at < now() - ($3::bigint * interval '1 millisecond')))`,
        [id, version, staleMs],
      );
      if (r.rowCount === 0) return false;
      // The endpoint shows VALIDATING only while nothing is served; a refresh stays STALE, a forced
      // re-dream of a fresh endpoint DREAMING -> VALIDATING.
      await tx.query(
        `UPDATE endpoints SET status = CASE WHEN status = 'stale' THEN 'stale' ELSE 'validating' END, updated_at = now()
          WHERE id = $1 AND latest_version = $2`,
        [id, version],
      );
      return true;
    });
  }

  /** Versions to look at in the recovery sweep: open ones whose job has ended, or never got one. */
  async openVersions(
    olderThanMs: number,
  ): Promise<Array<{ id: string; version: number; jobId: string; jobFinal: boolean }>> {
    const r = await this.db.query<{ endpoint_id: string; version: number; job_id: string; job_status: string | null }>(
      `SELECT v.endpoint_id, v.version, v.job_id, j.status AS job_status
         FROM endpoint_versions v LEFT JOIN jobs j ON j.id = v.job_id
        WHERE v.status IN ('dreaming', 'validating') AND v.updated_at < now() - ($1::bigint * interval '1 millisecond')
        LIMIT 100`,
      [olderThanMs],
    );
    return r.rows.map((row) => ({
      id: row.endpoint_id,
      version: row.version,
      jobId: row.job_id,
      jobFinal: row.job_status !== null && ["succeeded", "failed", "canceled", "interrupted"].includes(row.job_status),
    }));
  }

  /**
   * Ends a version READY or FAILED and updates the endpoint: READY becomes the served version with a
   * new expiry; FAILED leaves the served version (if any) in place.
   */
  async completeVersion(
    id: string,
    version: number,
    result:
      | { status: "ready"; operation: Record<string, unknown>; handler: EndpointHandler; examples: EndpointExample[] }
      | {
          status: "failed";
          operation?: Record<string, unknown>;
          handler?: EndpointHandler;
          examples: EndpointExample[];
          failures: EndpointFailure[];
        },
  ): Promise<boolean> {
    return this.db.transaction(async (tx) => {
      const r = await tx.query(
        `UPDATE endpoint_versions SET status = $3, operation = $4::jsonb, handler = $5::jsonb, examples = $6::jsonb,
                failure_reasons = $7::jsonb, completed_at = now(), updated_at = now()
          WHERE endpoint_id = $1 AND version = $2 AND status IN ('dreaming', 'validating')`,
        [
          id,
          version,
          result.status,
          toJsonb(result.operation),
          toJsonb(result.handler),
          JSON.stringify(result.examples),
          JSON.stringify(result.status === "failed" ? result.failures : []),
        ],
      );
      if (r.rowCount === 0) return false;
      if (result.status === "ready") {
        await tx.query(
          `UPDATE endpoints SET status = 'ready', served_version = $2, updated_at = now(),
                  expires_at = CASE WHEN ttl_ms IS NULL OR ttl_ms = 0 THEN NULL ELSE now() + ttl_ms * interval '1 millisecond' END
            WHERE id = $1 AND latest_version = $2`,
          [id, version],
        );
      } else {
        await tx.query(
          `UPDATE endpoints SET updated_at = now(),
                  status = CASE WHEN served_version = 0 THEN 'failed'
                                WHEN expires_at IS NOT NULL AND expires_at <= now() THEN 'expired'
                                ELSE 'ready' END
            WHERE id = $1 AND latest_version = $2`,
          [id, version],
        );
      }
      return true;
    });
  }

  /**
   * READY endpoints whose served version expires within `aheadMs` (0: has expired): EXPIRED, or STALE
   * when `refresh` (the caller then starts their next version). Returns the ids changed here.
   */
  async expireDue(aheadMs: number, refresh: boolean): Promise<string[]> {
    const r = await this.db.query<{ id: string }>(
      `UPDATE endpoints SET status = $2, updated_at = now()
        WHERE status = 'ready' AND expires_at IS NOT NULL
          AND expires_at <= now() + ($1::bigint * interval '1 millisecond')
        RETURNING id`,
      [aheadMs, refresh ? "stale" : "expired"],
    );
    return r.rows.map((row) => row.id);
  }

  /** Marks an EXPIRED (or READY past its expiry) endpoint STALE for a refresh; false when not due. */
  async markStale(id: string): Promise<boolean> {
    const r = await this.db.query(
      `UPDATE endpoints SET status = 'stale', updated_at = now()
        WHERE id = $1 AND (status = 'expired' OR (status = 'ready' AND expires_at IS NOT NULL AND expires_at <= now()))`,
      [id],
    );
    return r.rowCount > 0;
  }

  async appendCallbackAttempt(id: string, attempt: CallbackAttempt): Promise<void> {
    await this.db.query("UPDATE endpoints SET callback_attempts = callback_attempts || $2::jsonb WHERE id = $1", [
      id,
      JSON.stringify([attempt]),
    ]);
  }

  /** Deletes an endpoint and its versions; returns its row as it was, or undefined. */
  async delete(id: string): Promise<EndpointRecord | undefined> {
    const r = await this.db.query<EndpointRow>(`DELETE FROM endpoints WHERE id = $1 RETURNING ${ENDPOINT_COLUMNS}`, [
      id,
    ]);
    return r.rows[0] ? toEndpoint(r.rows[0]) : undefined;
  }

  /** Newest first, keyset pages; `ids` restricts to a set (semantic listing ranks them itself). */
  async list(q: {
    statuses: EndpointStatus[];
    method: string;
    labels: Record<string, string>;
    ids?: string[];
    pageSize: number;
    pageToken: string;
  }): Promise<{ items: EndpointRecord[]; nextPageToken: string }> {
    const { where, params } = listFilters(q);
    return keysetPage<EndpointRow, EndpointRecord>(this.db, {
      columns: ENDPOINT_COLUMNS,
      from: "endpoints",
      where,
      params,
      pageToken: q.pageToken,
      pageSize: q.pageSize,
      order: "newest",
      toRecord: toEndpoint,
    });
  }

  /** The endpoints among `ids` that pass the filters (unordered). */
  async filterIds(
    ids: string[],
    q: { statuses: EndpointStatus[]; method: string; labels: Record<string, string> },
  ): Promise<EndpointRecord[]> {
    const { where, params } = listFilters({ ...q, ids });
    const r = await this.db.query<EndpointRow>(
      `SELECT ${ENDPOINT_COLUMNS} FROM endpoints WHERE ${where.join(" AND ")}`,
      params,
    );
    return r.rows.map(toEndpoint);
  }

  async setEmbeddingModel(id: string, model: string): Promise<void> {
    await this.db.query("UPDATE endpoints SET embedding_model = $2 WHERE id = $1", [id, model]);
  }

  /** Endpoints whose description has no vector of `model` yet. */
  async unembedded(
    model: string,
    limit: number,
  ): Promise<Array<{ id: string; method: string; pathKey: string; description: string }>> {
    const r = await this.db.query<{ id: string; method: string; path_key: string; description: string }>(
      "SELECT id, method, path_key, description FROM endpoints WHERE embedding_model <> $1 LIMIT $2",
      [model, limit],
    );
    return r.rows.map((row) => ({
      id: row.id,
      method: row.method,
      pathKey: row.path_key,
      description: row.description,
    }));
  }

  async count(): Promise<number> {
    const r = await this.db.query<{ n: string }>("SELECT count(*) AS n FROM endpoints");
    return Number(r.rows[0]?.n ?? 0);
  }
}

function listFilters(q: {
  statuses: EndpointStatus[];
  method: string;
  labels: Record<string, string>;
  ids?: string[];
}): {
  where: string[];
  params: unknown[];
} {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.statuses.length) {
    params.push(q.statuses);
    where.push(`status = ANY($${params.length}::text[])`);
  }
  if (q.method) {
    params.push(q.method);
    where.push(`method = $${params.length}`);
  }
  if (Object.keys(q.labels).length) {
    params.push(JSON.stringify(q.labels));
    where.push(`labels @> $${params.length}::jsonb`);
  }
  if (q.ids) {
    params.push(q.ids);
    where.push(`id = ANY($${params.length}::text[])`);
  }
  return { where, params };
}

async function insertVersion(
  tx: Queryable,
  id: string,
  version: number,
  description: string,
  requestId: string,
): Promise<void> {
  await tx.query(
    `INSERT INTO endpoint_versions (endpoint_id, version, status, request_id, description, created_at, updated_at)
     VALUES ($1, $2, 'dreaming', $3, $4, now(), now())`,
    [id, version, requestId || null, description],
  );
}
