/**
 * A loopback stand-in for a Qdrant server (REST), built from Qdrant's own OpenAPI document (the path in
 * QDRANT_OPENAPI_SPEC; `.ci/run` points it at ../shared/specs/qdrant-openapi.json, v1.19.0). Nothing from
 * that document is copied here: routes, request bodies, query parameters and our own replies are all
 * checked against it at run time.
 *
 * - Every request is matched to an operation of the document; its JSON body is validated with Ajv against
 *   the operation's requestBody schema and its query parameters against the declared parameters. A
 *   mismatch is recorded in `violations` and answered 400 as Qdrant does (`{"status":{"error":…}}`), so a
 *   test fails both by the store's error and by `expect(double.violations).toEqual([])`.
 * - Every 200 reply the double builds is validated against the operation's response schema too
 *   (`replyViolations`), so the double cannot drift from the real wire format unnoticed.
 * - Implemented: collections create/get/exists/delete, payload index create, points upsert (list and
 *   batch forms), delete (ids or filter), query (nearest by vector, or by id order without one), scroll,
 *   count. Filters: must/should/must_not, nested filters, `has_id`, `match` value/any/except (keyword
 *   semantics: an array field matches when any element does). Anything else is answered 400 "not
 *   supported by the Qdrant double" and recorded, never silently approximated.
 * - Cosine as Qdrant does it: vectors are normalised on upsert and the query is normalised, so the score is
 *   the dot product = cosine similarity, best first.
 *
 * Spec technique (../shared/notes/storage-search.md §2): Ajv 8 with `strict: false` over `{$id: "qdrant",
 * components}`; Qdrant writes optional fields as `anyOf: [{$ref}, {nullable: true}]`, which Ajv rejects, so
 * a bare `{nullable: true}` becomes `{type: "null"}`. Formats are checked (ajv-formats plus Qdrant's
 * integer formats uint/uint8/uint32/uint64): a point id that is neither an unsigned integer nor a UUID is a
 * violation, as it is an error on a real server.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import AjvModule from "ajv";
import type { ErrorObject, ValidateFunction } from "ajv";
import addFormatsModule from "ajv-formats";
import { describe, it } from "vitest";
import { DoubleServer, type DoubleServerOptions, type Exchange } from "./double-server.js";

// CommonJS default-export interop, as in test/support/openai-spec.ts.
const Ajv = AjvModule.default;
const addFormats = addFormatsModule.default;

const ENV_VAR = "QDRANT_OPENAPI_SPEC";

/** Absolute path of the Qdrant OpenAPI document, or undefined when QDRANT_OPENAPI_SPEC is unset/empty. */
export const qdrantSpecPath: string | undefined = process.env[ENV_VAR]
  ? resolve(process.cwd(), process.env[ENV_VAR])
  : undefined;

export const haveQdrantSpec: boolean = qdrantSpecPath !== undefined;

/**
 * `describe` when QDRANT_OPENAPI_SPEC is set; otherwise one passing test saying which suite was left out
 * (mirrors describeWithOpenAISpec).
 */
export function describeWithQdrantSpec(name: string, fn: () => void): void {
  if (haveQdrantSpec) {
    describe(name, fn);
    return;
  }
  const line = `Qdrant contract suite ${name} left out: ${ENV_VAR} unset`;
  describe(name, () => {
    it(`left out: ${ENV_VAR} unset`, () => {
      console.warn(line);
    });
  });
}

export interface Violation {
  method: string;
  path: string;
  /** The spec operation (operationId), when the route matched one. */
  operation?: string;
  errors: string[];
  body?: unknown;
}

// ---------------------------------------------------------------------------------------------------------
// The spec: routes and validators

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };
const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

interface Operation {
  id: string;
  method: string;
  template: string;
  pattern: RegExp;
  body?: ValidateFunction;
  bodyRequired: boolean;
  params: Map<string, { type: string | undefined; validate: ValidateFunction }>;
  reply?: ValidateFunction;
}

let cachedSpec: Operation[] | undefined;

/** Qdrant's optional-field idiom, and refs made absolute so path-level schemas compile on their own. */
function normalise(node: Json): Json {
  if (Array.isArray(node)) return node.map(normalise);
  if (!isObject(node)) return node;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(node)) {
    if (k === "$ref" && typeof v === "string" && v.startsWith("#/")) out[k] = `qdrant${v}`;
    else out[k] = normalise(v);
  }
  if (out.nullable === true && out.type === undefined) {
    delete out.nullable;
    const rest = Object.keys(out).filter((k) => !["description", "default", "example"].includes(k));
    return rest.length === 0 ? { type: "null" } : { anyOf: [out, { type: "null" }] };
  }
  return out;
}

function loadSpec(): Operation[] {
  if (cachedSpec) return cachedSpec;
  if (!qdrantSpecPath) throw new Error(`${ENV_VAR} is unset: the Qdrant double needs the OpenAPI document`);
  if (!existsSync(qdrantSpecPath)) throw new Error(`${ENV_VAR}=${qdrantSpecPath} does not exist`);
  const doc = normalise(JSON.parse(readFileSync(qdrantSpecPath, "utf8")) as Json) as JsonObject;
  const ajv = new Ajv({ strict: false, allErrors: true, validateFormats: true });
  addFormats(ajv);
  const uint = (max: number) => ({
    type: "number" as const,
    validate: (n: number) => Number.isInteger(n) && n >= 0 && n <= max,
  });
  ajv.addFormat("uint", uint(Number.MAX_SAFE_INTEGER));
  ajv.addFormat("uint64", uint(Number.MAX_SAFE_INTEGER));
  ajv.addFormat("uint32", uint(2 ** 32 - 1));
  ajv.addFormat("uint16", uint(2 ** 16 - 1));
  ajv.addFormat("uint8", uint(255));
  ajv.addFormat("partial-date-time", true);
  ajv.addSchema({ $id: "qdrant", components: doc.components } as object);

  const ops: Operation[] = [];
  for (const [template, item] of Object.entries(doc.paths as JsonObject)) {
    if (!isObject(item)) continue;
    const pattern = new RegExp(`^${template.replace(/\{[^}]+\}/g, "([^/]+)")}$`);
    for (const [method, raw] of Object.entries(item)) {
      if (!isObject(raw)) continue;
      const requestBody = raw.requestBody as JsonObject | undefined;
      const bodySchema = (requestBody?.content as JsonObject | undefined)?.["application/json"] as
        JsonObject | undefined;
      const ok = (raw.responses as JsonObject | undefined)?.["200"] as JsonObject | undefined;
      const replySchema = (ok?.content as JsonObject | undefined)?.["application/json"] as JsonObject | undefined;
      const params = new Map<string, { type: string | undefined; validate: ValidateFunction }>();
      for (const p of (raw.parameters as JsonObject[] | undefined) ?? []) {
        if (p.in !== "query") continue;
        const schema = p.schema as JsonObject;
        params.set(String(p.name), {
          type: typeof schema.type === "string" ? schema.type : undefined,
          validate: ajv.compile(schema as object),
        });
      }
      ops.push({
        id: String(raw.operationId ?? `${method} ${template}`),
        method: method.toUpperCase(),
        template,
        pattern,
        body: bodySchema?.schema ? ajv.compile(bodySchema.schema as object) : undefined,
        bodyRequired: requestBody?.required === true,
        params,
        reply: replySchema?.schema ? ajv.compile(replySchema.schema as object) : undefined,
      });
    }
  }
  // Literal segments beat parameters ("/collections/{c}/points/query" before "/collections/{c}/points/{id}").
  ops.sort((a, b) => literalWeight(b.template) - literalWeight(a.template));
  cachedSpec = ops;
  return ops;
}

const literalWeight = (t: string): number => t.split("/").filter((s) => s && !s.startsWith("{")).length;

function describeErrors(errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => `${e.instancePath || "/"} ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);
}

// ---------------------------------------------------------------------------------------------------------
// The server

type PointId = number | string;
interface StoredPoint {
  id: PointId;
  vector: number[];
  payload: Record<string, unknown>;
  version: number;
}
interface Collection {
  size: number;
  distance: string;
  points: Map<string, StoredPoint>;
  payloadSchema: Map<string, string>;
}

/** A 4xx/5xx answer carrying Qdrant's error text. */
class QdrantFault extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const unsupported = (what: string): QdrantFault => new QdrantFault(400, `not supported by the Qdrant double: ${what}`);

export class QdrantDouble extends DoubleServer {
  /** Requests that did not match the spec. Tests assert this stays empty. */
  readonly violations: Violation[] = [];
  /** Replies of the double that did not match the spec (a bug in the double). */
  readonly replyViolations: Violation[] = [];
  readonly collections = new Map<string, Collection>();
  private operationCount = 0;
  private readonly ops: Operation[];

  constructor(options: DoubleServerOptions = {}) {
    super(options);
    this.ops = loadSpec();
  }

  override reset(): void {
    super.reset();
    this.violations.length = 0;
    this.replyViolations.length = 0;
    this.collections.clear();
  }

  protected handle(ex: Exchange): void {
    const { method } = ex.record;
    const url = new URL(ex.req.url ?? "/", "http://double");
    const path = url.pathname;
    let op: Operation | undefined;
    let args: string[] = [];
    for (const candidate of this.ops) {
      if (candidate.method !== method) continue;
      const m = candidate.pattern.exec(path);
      if (m) {
        op = candidate;
        args = m.slice(1).map(decodeURIComponent);
        break;
      }
    }
    if (!op) {
      this.violations.push({ method, path, errors: ["no such operation in the Qdrant OpenAPI document"] });
      return fail(ex, 404, `Not found: ${method} ${path}`);
    }
    const errors: string[] = [];
    if (ex.bodyError) errors.push(`body is not JSON: ${ex.bodyError}`);
    else if (ex.body === undefined) {
      if (op.bodyRequired) errors.push("request body required");
    } else if (!op.body) errors.push("this operation takes no request body");
    else if (!op.body(ex.body)) errors.push(...describeErrors(op.body.errors));
    for (const [name, value] of url.searchParams) {
      const param = op.params.get(name);
      if (!param) {
        errors.push(`unknown query parameter ${name}`);
        continue;
      }
      const coerced = coerce(value, param.type);
      if (!param.validate(coerced)) errors.push(...describeErrors(param.validate.errors).map((e) => `?${name}: ${e}`));
    }
    if (errors.length > 0) {
      this.violations.push({ method, path, operation: op.id, errors, body: ex.body });
      return fail(ex, 400, `Format error in JSON body: ${errors.join("; ")}`);
    }
    const started = process.hrtime.bigint();
    let result: unknown;
    try {
      result = this.dispatch(op.id, args, (ex.body ?? {}) as Record<string, unknown>);
    } catch (err) {
      if (err instanceof QdrantFault) {
        if (err.message.startsWith("not supported by the Qdrant double")) {
          this.violations.push({ method, path, operation: op.id, errors: [err.message], body: ex.body });
        }
        return fail(ex, err.status, err.message);
      }
      throw err;
    }
    const reply = { result, status: "ok", time: Number(process.hrtime.bigint() - started) / 1e9 };
    if (op.reply && !op.reply(reply)) {
      this.replyViolations.push({ method, path, operation: op.id, errors: describeErrors(op.reply.errors) });
    }
    ex.json(200, reply);
  }

  private dispatch(op: string, args: string[], body: Record<string, unknown>): unknown {
    const name = args[0]!;
    switch (op) {
      case "create_collection":
        return this.createCollection(name, body);
      case "get_collection":
        return this.info(name, this.collection(name));
      case "collection_exists":
        return { exists: this.collections.has(name) };
      case "delete_collection":
        return this.collections.delete(name);
      case "create_field_index": {
        const c = this.collection(name);
        const schema = body.field_schema;
        const type = typeof schema === "string" ? schema : isObject(schema) ? String(schema.type) : undefined;
        if (!type) throw new QdrantFault(400, "Wrong input: field_schema is required");
        c.payloadSchema.set(String(body.field_name), type);
        return this.updated();
      }
      case "upsert_points":
        return this.upsert(this.collection(name), body);
      case "delete_points":
        return this.deletePoints(this.collection(name), body);
      case "query_points":
        return this.query(this.collection(name), body);
      case "scroll_points":
        return this.scroll(this.collection(name), body);
      case "count_points": {
        const c = this.collection(name);
        return { count: this.select(c, body.filter).length };
      }
      default:
        throw unsupported(`operation ${op}`);
    }
  }

  private collection(name: string): Collection {
    const c = this.collections.get(name);
    if (!c) throw new QdrantFault(404, `Not found: Collection \`${name}\` doesn't exist!`);
    return c;
  }

  private createCollection(name: string, body: Record<string, unknown>): boolean {
    if (this.collections.has(name)) throw new QdrantFault(409, `Wrong input: Collection \`${name}\` already exists!`);
    const vectors = body.vectors as { size?: unknown; distance?: unknown } | undefined;
    if (!vectors || typeof vectors.size !== "number") throw unsupported("named or missing vector params");
    if (vectors.distance !== "Cosine") throw unsupported(`distance ${String(vectors.distance)}`);
    this.collections.set(name, {
      size: vectors.size,
      distance: vectors.distance,
      points: new Map(),
      payloadSchema: new Map(),
    });
    return true;
  }

  private info(name: string, c: Collection): unknown {
    const payloadSchema: Record<string, unknown> = {};
    for (const [field, type] of c.payloadSchema) {
      const points = [...c.points.values()].filter((p) => p.payload[field] !== undefined).length;
      payloadSchema[field] = { data_type: type, params: undefined, points };
    }
    return {
      status: "green",
      optimizer_status: "ok",
      indexed_vectors_count: 0,
      points_count: c.points.size,
      segments_count: 1,
      config: {
        params: {
          vectors: { size: c.size, distance: c.distance },
          shard_number: 1,
          replication_factor: 1,
          write_consistency_factor: 1,
          on_disk_payload: true,
        },
        hnsw_config: { m: 16, ef_construct: 100, full_scan_threshold: 10_000, max_indexing_threads: 0 },
        optimizer_config: {
          deleted_threshold: 0.2,
          vacuum_min_vector_number: 1000,
          default_segment_number: 0,
          max_segment_size: null,
          memmap_threshold: null,
          indexing_threshold: 10_000,
          flush_interval_sec: 5,
          max_optimization_threads: null,
        },
        wal_config: { wal_capacity_mb: 32, wal_segments_ahead: 0 },
        quantization_config: null,
      },
      payload_schema: JSON.parse(JSON.stringify(payloadSchema)) as unknown,
    };
  }

  private updated(): unknown {
    return { operation_id: this.operationCount++, status: "completed" };
  }

  private upsert(c: Collection, body: Record<string, unknown>): unknown {
    let points: { id: PointId; vector: unknown; payload?: unknown }[];
    if (Array.isArray(body.points)) {
      points = body.points as typeof points;
    } else if (isObject(body.batch)) {
      const b = body.batch as { ids: PointId[]; vectors: unknown; payloads?: unknown[] | null };
      if (!Array.isArray(b.vectors)) throw unsupported("named vectors in a batch");
      const vectors = b.vectors as unknown[];
      points = b.ids.map((id, i) => ({ id, vector: vectors[i], payload: b.payloads?.[i] }));
    } else throw unsupported("upsert without points or batch");
    // Validate all first: Qdrant rejects the whole request on one bad vector.
    const prepared = points.map((p) => {
      if (!Array.isArray(p.vector) || !p.vector.every((x) => typeof x === "number")) {
        throw unsupported("named, sparse or multi vectors");
      }
      if (p.vector.length !== c.size) {
        throw new QdrantFault(
          400,
          `Wrong input: Vector dimension error: expected dim: ${c.size}, got ${p.vector.length}`,
        );
      }
      return {
        id: p.id,
        vector: normalised(p.vector as number[]),
        payload: (p.payload ?? {}) as Record<string, unknown>,
      };
    });
    const version = this.operationCount;
    for (const p of prepared) c.points.set(idKey(p.id), { ...p, version });
    return this.updated();
  }

  private deletePoints(c: Collection, body: Record<string, unknown>): unknown {
    if (Array.isArray(body.points)) {
      for (const id of body.points as PointId[]) c.points.delete(idKey(id));
    } else if (isObject(body.filter)) {
      for (const p of this.select(c, body.filter)) c.points.delete(idKey(p.id));
    } else throw unsupported("delete without points or filter");
    return this.updated();
  }

  private query(c: Collection, body: Record<string, unknown>): unknown {
    if (body.prefetch != null) throw unsupported("prefetch");
    if (body.using != null) throw unsupported("named vectors (using)");
    const limit = typeof body.limit === "number" ? body.limit : 10;
    const offset = typeof body.offset === "number" ? body.offset : 0;
    const candidates = this.select(c, body.filter);
    let scored: { p: StoredPoint; score: number }[];
    if (body.query == null) {
      scored = candidates.sort(byId).map((p) => ({ p, score: 0 }));
    } else {
      const q = body.query;
      const vector = Array.isArray(q) ? q : isObject(q) && Array.isArray(q.nearest) ? q.nearest : undefined;
      if (!vector || !vector.every((x) => typeof x === "number")) throw unsupported("query other than a dense vector");
      if (vector.length !== c.size) {
        throw new QdrantFault(
          400,
          `Wrong input: Vector dimension error: expected dim: ${c.size}, got ${vector.length}`,
        );
      }
      const qn = normalised(vector as number[]);
      scored = candidates.map((p) => ({ p, score: dot(qn, p.vector) }));
      const threshold = typeof body.score_threshold === "number" ? body.score_threshold : -Infinity;
      scored = scored.filter((s) => s.score >= threshold).sort((a, b) => b.score - a.score || byId(a.p, b.p));
    }
    const points = scored.slice(offset, offset + limit).map(({ p, score }) => ({
      id: p.id,
      version: p.version,
      score,
      payload: pickPayload(p.payload, body.with_payload),
      ...(body.with_vector === true ? { vector: p.vector } : {}),
    }));
    return { points };
  }

  private scroll(c: Collection, body: Record<string, unknown>): unknown {
    if (body.order_by != null) throw unsupported("order_by");
    const limit = typeof body.limit === "number" ? body.limit : 10;
    let all = this.select(c, body.filter).sort(byId);
    if (body.offset != null) {
      const from = all.findIndex((p) => byId(p, { id: body.offset as PointId }) >= 0);
      all = from < 0 ? [] : all.slice(from);
    }
    const page = all.slice(0, limit);
    return {
      points: page.map((p) => ({
        id: p.id,
        payload: pickPayload(p.payload, body.with_payload ?? true),
        ...(body.with_vector === true ? { vector: p.vector } : {}),
      })),
      next_page_offset: all[limit]?.id ?? null,
    };
  }

  private select(c: Collection, filter: unknown): StoredPoint[] {
    const points = [...c.points.values()];
    if (filter == null) return points;
    return points.filter((p) => matchFilter(p, filter));
  }
}

// ---------------------------------------------------------------------------------------------------------
// Filters, maths and helpers

function matchFilter(p: StoredPoint, filter: unknown): boolean {
  if (!isObject(filter)) throw unsupported("filter that is not an object");
  const list = (v: Json | undefined): Json[] => (v == null ? [] : Array.isArray(v) ? v : [v]);
  if (filter.min_should != null) throw unsupported("min_should");
  const must = list(filter.must).every((c) => matchCondition(p, c));
  const should =
    filter.should == null || list(filter.should).length === 0 || list(filter.should).some((c) => matchCondition(p, c));
  const mustNot = list(filter.must_not).some((c) => matchCondition(p, c));
  return must && should && !mustNot;
}

function matchCondition(p: StoredPoint, cond: Json): boolean {
  if (!isObject(cond)) throw unsupported("condition that is not an object");
  if ("must" in cond || "should" in cond || "must_not" in cond) return matchFilter(p, cond);
  if (Array.isArray(cond.has_id)) return cond.has_id.some((id) => idKey(id as PointId) === idKey(p.id));
  if (typeof cond.key !== "string" || !isObject(cond.match)) throw unsupported(`condition ${JSON.stringify(cond)}`);
  if (cond.key.includes(".") || cond.key.includes("[")) throw unsupported("nested payload keys");
  const raw = p.payload[cond.key];
  const values = raw === undefined || raw === null ? [] : Array.isArray(raw) ? raw : [raw];
  const m = cond.match;
  if ("value" in m) return values.some((v) => v === m.value);
  if (Array.isArray(m.any)) return values.some((v) => (m.any as Json[]).includes(v as Json));
  if (Array.isArray(m.except))
    return values.length === 0 || values.some((v) => !(m.except as Json[]).includes(v as Json));
  throw unsupported(`match ${JSON.stringify(m)}`);
}

function pickPayload(payload: Record<string, unknown>, withPayload: unknown): Record<string, unknown> | null {
  if (withPayload === true) return payload;
  if (withPayload === false || withPayload == null) return null;
  if (Array.isArray(withPayload)) {
    return Object.fromEntries(withPayload.filter((k) => k in payload).map((k) => [k, payload[k as string]]));
  }
  if (isObject(withPayload) && Array.isArray(withPayload.include)) return pickPayload(payload, withPayload.include);
  throw unsupported(`with_payload ${JSON.stringify(withPayload)}`);
}

const idKey = (id: PointId): string => (typeof id === "number" ? `n:${id}` : `u:${id.toLowerCase()}`);

/** Qdrant orders integer ids before UUIDs, each ascending. */
function byId(a: { id: PointId }, b: { id: PointId }): number {
  if (typeof a.id === "number" && typeof b.id === "number") return a.id - b.id;
  if (typeof a.id === "number") return -1;
  if (typeof b.id === "number") return 1;
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0;
}

function normalised(v: number[]): number[] {
  const norm = Math.sqrt(dot(v, v));
  return norm === 0 ? v.slice() : v.map((x) => x / norm);
}

function dot(a: number[], b: number[]): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function coerce(value: string, type: string | undefined): unknown {
  if (type === "boolean") return value === "true" ? true : value === "false" ? false : value;
  if (type === "integer" || type === "number") return /^-?\d+(\.\d+)?$/.test(value) ? Number(value) : value;
  return value;
}

function fail(ex: Exchange, status: number, message: string): void {
  ex.json(status, { status: { error: message }, time: 0 });
}
