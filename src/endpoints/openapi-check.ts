/**
 * Checks the OpenAPI 3.1 Operation Object a Codex run wrote for a dream endpoint, validates requests
 * against it, and builds the OpenAPI document of all endpoints. Pure apart from CPU: no I/O.
 */
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020Module from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { GatewayError } from "../errors/gateway-error.js";
import { parsePathTemplate } from "./path-template.js";

// Both are CommonJS whose module.exports carries a `default` property; this form is right both for
// tsc (NodeNext) and at runtime.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

type Json = Record<string, unknown>;

export const HTTP_METHODS = ["get", "put", "post", "delete", "options", "head", "patch", "trace"] as const;
const METHOD_ORDER: readonly string[] = HTTP_METHODS;
const MAX_PROBLEMS = 20;
const MAX_ERRORS = 10;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
/** JSON pointer token escaping (RFC 6901), for problem locations. */
const esc = (s: string) => s.replace(/~/g, "~0").replace(/\//g, "~1");

// ---------------------------------------------------------------------------------------------------------
// JSON Schema validation

export type CompileResult = { ok: true } | { ok: false; message: string };

interface CacheEntry {
  schema: unknown;
  fn?: ValidateFunction;
  message?: string;
}

/**
 * One Ajv (JSON Schema 2020-12, the dialect of OpenAPI 3.1) with compiled validators cached by the
 * schema's JSON text, least recently used evicted beyond `maxEntries`.
 */
export class SchemaValidator {
  private readonly ajv;
  private readonly cache = new Map<string, CacheEntry>();

  constructor(private readonly maxEntries = 512) {
    this.ajv = new Ajv2020({
      strict: false, // OpenAPI adds keywords (example, discriminator, xml, externalDocs) Ajv does not know
      allErrors: true, // report up to MAX_ERRORS problems at once, not only the first
      // Do not register schemas by $id: two endpoints may reuse an $id for different schemas, and an
      // evicted validator must really be gone.
      addUsedSchema: false,
      logger: false, // unknown formats would otherwise warn on the console once per compile
    });
    addFormats(this.ajv);
    // OpenAPI's own formats (https://spec.openapis.org/registry/format/).
    this.ajv.addFormat("int32", {
      type: "number",
      validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31,
    });
    this.ajv.addFormat("int64", { type: "number", validate: (n: number) => Number.isInteger(n) });
    this.ajv.addFormat("float", { type: "number", validate: () => true });
    this.ajv.addFormat("double", { type: "number", validate: () => true });
    this.ajv.addFormat("byte", /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
    this.ajv.addFormat("binary", true);
    this.ajv.addFormat("password", true);
  }

  compile(schema: unknown): CompileResult {
    const entry = this.entry(schema);
    return entry.fn ? { ok: true } : { ok: false, message: entry.message ?? "schema does not compile" };
  }

  /**
   * Readable errors ("body/items/0/name: must be string"), at most 10; [] when `value` is valid.
   * `root` names the value in messages.
   */
  validate(schema: object | boolean, value: unknown, root = "body"): string[] {
    const entry = this.entry(schema);
    if (!entry.fn) return [`${root}: schema does not compile: ${entry.message}`];
    if (entry.fn(value)) return [];
    return formatErrors(entry.fn.errors ?? [], root, MAX_ERRORS);
  }

  private entry(schema: unknown): CacheEntry {
    let key: string;
    try {
      key = JSON.stringify(schema);
    } catch (err) {
      return { schema, message: `schema is not JSON: ${(err as Error).message}` };
    }
    if (key === undefined) return { schema, message: "schema must be an object or a boolean" };
    const hit = this.cache.get(key);
    if (hit) {
      this.cache.delete(key); // re-insert: Map order is the recency order
      this.cache.set(key, hit);
      return hit;
    }
    // Compile a private copy so the cache owns it (Ajv keys its own cache by object identity).
    const own = JSON.parse(key) as unknown;
    const entry: CacheEntry = { schema: own };
    if (typeof own !== "boolean" && !isObject(own)) {
      entry.message = "schema must be an object or a boolean";
    } else {
      try {
        entry.fn = this.ajv.compile(own);
      } catch (err) {
        entry.message = (err as Error).message;
        this.forget(own);
      }
    }
    this.cache.set(key, entry);
    while (this.cache.size > this.maxEntries) {
      const [oldest, old] = this.cache.entries().next().value as [string, CacheEntry];
      this.cache.delete(oldest);
      this.forget(old.schema);
    }
    return entry;
  }

  private forget(schema: unknown): void {
    if (!isObject(schema)) return;
    try {
      this.ajv.removeSchema(schema);
    } catch {
      // nothing registered for it
    }
  }
}

function describeError(e: ErrorObject): string {
  const p = e.params as Record<string, unknown>;
  let msg = e.message ?? `fails ${e.keyword}`;
  if (e.keyword === "additionalProperties") msg += ` (${JSON.stringify(p.additionalProperty)})`;
  if (e.keyword === "unevaluatedProperties") msg += ` (${JSON.stringify(p.unevaluatedProperty)})`;
  if (e.keyword === "enum") msg += ` ${JSON.stringify(p.allowedValues).slice(0, 200)}`;
  if (e.keyword === "const") msg += ` ${JSON.stringify(p.allowedValue).slice(0, 200)}`;
  return msg;
}

function formatErrors(errors: ErrorObject[], root: string, max: number): string[] {
  // "must match then/else schema" only repeats the errors of the branch that failed.
  const lines = errors.filter((e) => e.keyword !== "if").map((e) => `${root}${e.instancePath}: ${describeError(e)}`);
  return [...new Set(lines)].slice(0, max);
}

/** Shared by checkOperation and the request helpers so validators compiled at check time are reused. */
export const defaultSchemaValidator = new SchemaValidator();

// ---------------------------------------------------------------------------------------------------------
// Operation check

export type OperationCheck =
  | {
      ok: true;
      /** The operation with $refs inlined and every path parameter of the template declared. */
      operation: Json;
      successStatus: number;
      requestSchema?: object;
      responseSchema?: object;
    }
  | { ok: false; problems: string[] };

let openApiValidator: Validator | undefined;
// The library validates documents only; we call validate() on one shared instance (compiling the
// OpenAPI meta-schema is slow) and never read its per-call state (specification/version).
const oasValidator = () => (openApiValidator ??= new Validator({ allErrors: true }));

/**
 * Checks an Operation Object for `method` + `path` by wrapping it in a one-path OpenAPI 3.1 document.
 * Async because the validator library's validate() is.
 */
export async function checkOperation(
  input: { method: string; path: string; operation: unknown },
  validator: SchemaValidator = defaultSchemaValidator,
): Promise<OperationCheck> {
  const fail = (problems: string[]): OperationCheck => ({ ok: false, problems: problems.slice(0, MAX_PROBLEMS) });
  const method = String(input.method).toLowerCase();
  if (!(HTTP_METHODS as readonly string[]).includes(method)) {
    return fail([`method ${JSON.stringify(input.method)} is not one of ${HTTP_METHODS.join(", ")}`]);
  }
  let params: string[];
  try {
    params = parsePathTemplate(input.path).params;
  } catch (err) {
    return fail([`path: ${err instanceof GatewayError ? err.message : String(err)}`]);
  }
  const at = `/paths/${esc(input.path)}/${method}`;
  if (!isObject(input.operation)) return fail([`${at}: the operation must be a JSON object`]);
  let op: Json;
  try {
    op = JSON.parse(JSON.stringify(input.operation)) as Json; // own copy, and plain JSON only
  } catch (err) {
    return fail([`${at}: the operation is not JSON: ${(err as Error).message}`]);
  }

  // Path parameters must say `required: true`; supply it rather than bounce the operation for it.
  if (Array.isArray(op.parameters)) {
    for (const p of op.parameters) if (isObject(p) && p.in === "path" && p.required === undefined) p.required = true;
  }

  const doc: Json = {
    openapi: "3.1.0",
    info: { title: "agentgate dream endpoint", version: "0" },
    paths: { [input.path]: { [method]: op } },
  };
  const res = await oasValidator().validate(doc);
  if (!res.valid) {
    if (typeof res.errors === "string") return fail([res.errors]); // $ref resolution: one message
    return fail(formatErrors(res.errors ?? [], "", MAX_PROBLEMS));
  }

  if (containsRef(op)) {
    try {
      // resolveRefs() ignores its argument once the instance has validated something, so a fresh one.
      const resolved = new Validator().resolveRefs({ specification: doc }) as { paths: Record<string, Json> };
      op = resolved.paths[input.path][method] as Json;
    } catch (err) {
      return fail([`${at}: ${(err as Error).message}`]);
    }
    const cycle = findCycle(op, at);
    if (cycle) return fail([`${cycle}: recursive $ref is not supported; inline the schema`]);
    op = JSON.parse(JSON.stringify(op)) as Json; // shared subtrees become independent copies
  }

  const problems: string[] = [];

  // Path parameters: declared ones must be in the template; template ones not declared are added.
  const declared = Array.isArray(op.parameters) ? (op.parameters as Json[]) : [];
  const seen = new Set<string>();
  declared.forEach((p, i) => {
    const id = `${p.in}:${p.name}`;
    if (seen.has(id)) problems.push(`${at}/parameters/${i}: parameter "${p.name}" in ${p.in} is declared twice`);
    seen.add(id);
    if (p.in === "path" && !params.includes(String(p.name))) {
      problems.push(`${at}/parameters/${i}: path parameter "${p.name}" is not in the path template ${input.path}`);
    }
  });
  for (const name of params) {
    if (!declared.some((p) => p.in === "path" && p.name === name)) {
      declared.push({ name, in: "path", required: true, schema: { type: "string" } });
    }
  }
  if (declared.length > 0) op.parameters = declared;

  // Every schema must compile, not only the ones we validate against: the document promises them all.
  for (const [where, schema] of schemaLocations(op, at)) {
    const c = validator.compile(schema);
    if (!c.ok) problems.push(`${where}: ${c.message}`);
  }

  const { status: successStatus, key: successKey } = successResponse(op.responses);
  const requestSchema = jsonSchemaOf(isObject(op.requestBody) ? op.requestBody.content : undefined);
  const success = successKey !== undefined && isObject(op.responses) ? op.responses[successKey] : undefined;
  const responseSchema = jsonSchemaOf(isObject(success) ? success.content : undefined);

  if (problems.length > 0) return fail(problems);
  return {
    ok: true,
    operation: op,
    successStatus,
    ...(requestSchema !== undefined && { requestSchema }),
    ...(responseSchema !== undefined && { responseSchema }),
  };
}

function containsRef(v: unknown): boolean {
  if (Array.isArray(v)) return v.some(containsRef);
  if (!isObject(v)) return false;
  return "$ref" in v || "$dynamicRef" in v || Object.values(v).some(containsRef);
}

/** The JSON pointer (from `at`) of an object that contains itself after $ref inlining, if any. */
function findCycle(root: unknown, at: string): string | undefined {
  const stack = new Set<object>();
  const walk = (v: unknown, where: string): string | undefined => {
    if (typeof v !== "object" || v === null) return undefined;
    if (stack.has(v)) return where;
    stack.add(v);
    for (const [k, child] of Object.entries(v)) {
      const found = walk(child, `${where}/${esc(k)}`);
      if (found) return found;
    }
    stack.delete(v);
    return undefined;
  };
  return walk(root, at);
}

/** Labelled locations of every Schema Object in a (dereferenced) operation. */
function schemaLocations(op: Json, at: string): Array<[string, unknown]> {
  const out: Array<[string, unknown]> = [];
  const content = (c: unknown, where: string, label: string) => {
    if (!isObject(c)) return;
    for (const [type, media] of Object.entries(c)) {
      if (isObject(media) && "schema" in media)
        out.push([`${label} (${where}/content/${esc(type)}/schema)`, media.schema]);
    }
  };
  if (Array.isArray(op.parameters)) {
    op.parameters.forEach((p, i) => {
      if (!isObject(p)) return;
      const label = `parameter ${p.in}.${p.name} schema`;
      if ("schema" in p) out.push([`${label} (${at}/parameters/${i}/schema)`, p.schema]);
      content(p.content, `${at}/parameters/${i}`, label);
    });
  }
  if (isObject(op.requestBody)) content(op.requestBody.content, `${at}/requestBody`, "request schema");
  if (isObject(op.responses)) {
    for (const [code, r] of Object.entries(op.responses)) {
      if (!isObject(r)) continue;
      content(r.content, `${at}/responses/${esc(code)}`, "response schema");
      if (isObject(r.headers)) {
        for (const [name, h] of Object.entries(r.headers)) {
          if (isObject(h) && "schema" in h) {
            out.push([`response header schema (${at}/responses/${esc(code)}/headers/${esc(name)}/schema)`, h.schema]);
          }
        }
      }
    }
  }
  return out;
}

/**
 * The status a handler answers with by default: the lowest explicit 2xx code; failing that 200 when
 * "2XX" or "default" is declared (their schema then applies), and 200 with no schema otherwise.
 * Explicit codes win over "default" so that {"201", "default"} means 201, not 200.
 */
function successResponse(responses: unknown): { status: number; key?: string } {
  if (!isObject(responses)) return { status: 200 };
  const codes = Object.keys(responses)
    .filter((k) => /^2\d\d$/.test(k))
    .sort();
  if (codes.length > 0) return { status: Number(codes[0]), key: codes[0] };
  for (const key of ["2XX", "default"]) if (key in responses) return { status: 200, key };
  return { status: 200 };
}

/** The schema for application/json in a Content map (also "application/json; charset=utf-8"). */
function jsonSchemaOf(content: unknown): object | undefined {
  if (!isObject(content)) return undefined;
  const key =
    "application/json" in content
      ? "application/json"
      : Object.keys(content).find((k) => k.split(";")[0].trim().toLowerCase() === "application/json");
  const media = key === undefined ? undefined : content[key];
  const schema = isObject(media) ? media.schema : undefined;
  return isObject(schema) || typeof schema === "boolean" ? (schema as object) : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Request parameters

export interface ParameterInput {
  /** Decoded path parameter values, as matchPath returns them. */
  pathParams: Record<string, string>;
  /** Query parameters; repeated keys as arrays. */
  query: Record<string, string | string[]>;
}

/**
 * What a handler gets (named like ParameterInput): `pathParams` and `query` hold each parameter's value
 * coerced per its declared schema (integer/number -> number, boolean -> boolean, null -> null, arrays of
 * those -> arrays; strings and parameters without a schema stay as given). Query parameters the operation does not declare are passed
 * through unchanged (string, or string[] when repeated). Only trust the values when `errors` is empty.
 */
export interface CoercedParameters {
  pathParams: Record<string, unknown>;
  query: Record<string, unknown>;
  errors: string[];
}

export function coerceParameters(
  operation: Record<string, unknown>,
  input: ParameterInput,
  validator: SchemaValidator = defaultSchemaValidator,
): CoercedParameters {
  const path = new Map<string, unknown>(Object.entries(input.pathParams));
  const query = new Map<string, unknown>(Object.entries(input.query));
  const errors: string[] = [];
  const declared = Array.isArray(operation.parameters) ? operation.parameters.filter(isObject) : [];
  for (const p of declared) {
    if ((p.in !== "path" && p.in !== "query") || typeof p.name !== "string") continue;
    const values = p.in === "path" ? path : query;
    const label = `${p.in}.${p.name}`;
    const raw = values.get(p.name) as string | string[] | undefined;
    if (raw === undefined) {
      if (p.required === true) errors.push(`${label}: is required`);
      continue;
    }
    const schema = p.schema;
    if (!isObject(schema) && typeof schema !== "boolean") continue; // content-typed: left to the handler
    const coerced = coerceValue(raw, schema, p.in === "path" || p.explode === false);
    if ("error" in coerced) {
      errors.push(`${label}: ${coerced.error}`);
      continue;
    }
    values.set(p.name, coerced.value);
    errors.push(...validator.validate(schema as object, coerced.value, label));
  }
  return {
    pathParams: Object.fromEntries(path),
    query: Object.fromEntries(query),
    errors: errors.slice(0, MAX_ERRORS),
  };
}

/** Errors naming `query.<name>` / `path.<name>`; [] when the parameters satisfy the operation. */
export function validateParameters(
  operation: Record<string, unknown>,
  input: ParameterInput,
  validator: SchemaValidator = defaultSchemaValidator,
): string[] {
  return coerceParameters(operation, input, validator).errors;
}

const NUMBER_RE = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

function typesOf(schema: unknown): string[] {
  if (!isObject(schema)) return [];
  if (typeof schema.type === "string") return [schema.type];
  return Array.isArray(schema.type) ? schema.type.filter((t): t is string => typeof t === "string") : [];
}

/**
 * Coerces a query/path string by the schema's `type`; a value it cannot coerce stays a string so that
 * validation reports the type mismatch. Array schemas take repeated keys or, for path parameters and
 * `explode: false`, comma-separated values (OpenAPI's default "simple"/"form" styles).
 */
function coerceValue(
  raw: string | string[],
  schema: unknown,
  commaSeparated: boolean,
): { value: unknown } | { error: string } {
  const types = typesOf(schema);
  if (types.includes("array")) {
    const items = Array.isArray(raw) ? raw : commaSeparated ? raw.split(",") : [raw];
    const itemTypes = typesOf(isObject(schema) ? schema.items : undefined);
    return { value: items.map((s) => coerceScalar(s, itemTypes)) };
  }
  if (Array.isArray(raw)) {
    if (raw.length !== 1) return { error: `expected one value, got ${raw.length}` };
    raw = raw[0];
  }
  return { value: coerceScalar(raw, types) };
}

function coerceScalar(s: string, types: string[]): unknown {
  if (types.length === 0 || types.includes("string")) return s;
  if ((types.includes("integer") || types.includes("number")) && NUMBER_RE.test(s)) return Number(s);
  if (types.includes("boolean") && (s === "true" || s === "false")) return s === "true";
  if (types.includes("null") && s === "null") return null;
  return s;
}

// ---------------------------------------------------------------------------------------------------------
// The document

export interface DocumentEndpoint {
  id: string;
  method: string;
  path: string;
  description: string;
  operation: Record<string, unknown>;
  stale: boolean;
}

/**
 * The OpenAPI 3.1 document of all endpoints. `serverUrl` is the base the paths hang off (the "/dream"
 * prefix included). Templates with the same key (differing only in parameter names) share one Path
 * Item, as OpenAPI forbids "equivalent" paths; operations of the later ones get their path parameters
 * renamed to the first template's names. Should two endpoints claim the same method and key, the first
 * one in `endpoints` is documented.
 */
export function buildOpenApiDocument(
  endpoints: DocumentEndpoint[],
  info: { title: string; version: string; serverUrl: string },
): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  const templateByKey = new Map<string, { path: string; params: string[] }>();
  const usedIds = new Set<string>();
  const sorted = endpoints
    .map((e, i) => ({ e, i, t: parsePathTemplate(e.path), method: e.method.toLowerCase() }))
    .sort(
      (a, b) =>
        (a.t.key < b.t.key ? -1 : a.t.key > b.t.key ? 1 : 0) ||
        METHOD_ORDER.indexOf(a.method) - METHOD_ORDER.indexOf(b.method) ||
        a.i - b.i,
    );
  // Explicit operationIds first, so a defaulted one never takes a name an operation chose.
  const explicit = (e: DocumentEndpoint) =>
    typeof e.operation.operationId === "string" && e.operation.operationId !== "" ? e.operation.operationId : undefined;
  const chosen = new Map<DocumentEndpoint, string>();
  for (const pass of [true, false]) {
    for (const { e } of sorted) {
      if ((explicit(e) !== undefined) !== pass) continue;
      const base = explicit(e) ?? e.id;
      let id = base;
      for (let n = 2; usedIds.has(id); n++) id = `${base}_${n}`;
      usedIds.add(id);
      chosen.set(e, id);
    }
  }

  for (const { e, t, method } of sorted) {
    let canonical = templateByKey.get(t.key);
    if (!canonical) templateByKey.set(t.key, (canonical = { path: t.template, params: t.params }));
    const item = (paths[canonical.path] ??= {});
    if (method in item) continue;
    const op = JSON.parse(JSON.stringify(e.operation)) as Json;
    if (canonical.path !== t.template && Array.isArray(op.parameters)) {
      for (const p of op.parameters) {
        if (isObject(p) && p.in === "path") {
          const i = t.params.indexOf(String(p.name));
          if (i >= 0) p.name = canonical.params[i];
        }
      }
    }
    op.operationId = chosen.get(e);
    if (op.description === undefined && e.description) op.description = e.description;
    op["x-agentgate-endpoint-id"] = e.id;
    op["x-agentgate-stale"] = e.stale;
    item[method] = op;
  }

  const ordered = Object.fromEntries(
    Object.keys(paths)
      .sort()
      .map((p) => [p, paths[p]]),
  );
  return {
    openapi: "3.1.0",
    info: { title: info.title, version: info.version },
    servers: [{ url: info.serverUrl }],
    paths: ordered,
  };
}
