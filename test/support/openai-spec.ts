/**
 * Contract-test support for the OpenAI-compatible REST/SSE layer.
 *
 * The OpenAI OpenAPI document is NOT part of this repository: it is read from the path in the
 * environment variable `OPENAI_OPENAPI_SPEC` (`.ci/run` points it at ../shared/specs/openai-openapi.json).
 * A relative path is resolved against the current working directory (vitest.config.ts already resolves it
 * against the project root). When the variable is unset, suites registered with `describeWithOpenAISpec`
 * are replaced by a single passing test that says plainly which contract suite was left out.
 *
 * The document is OpenAPI 3.1 (JSON Schema 2020-12) but still carries OpenAPI 3.0 idioms; before handing
 * it to Ajv 2020 every component schema is normalised (see `normaliseSchema`):
 * - `nullable: true`            → `type: [T, "null"]`, or `anyOf: [<schema>, {type: "null"}]` when the
 *                                 schema has an enum/const/$ref/no single type (Ajv's own `nullable`
 *                                 would reject `null` against an enum and throws next to `$ref`);
 * - `exclusiveMinimum: true`    → numeric `exclusiveMinimum` (3.0 boolean form; same for maximum);
 * - `$recursiveRef: "#"`        → `$ref` to the enclosing component (2019-09 keyword unknown to 2020);
 * - `discriminator`, `example`, `x-*` extensions are annotations only: stripped (`oneOf` still decides).
 * Non-standard formats: `unixtime` (integer seconds ≥ 0) is added; `float`, `double`, `int64`, `binary`,
 * `uri`, `date` come from ajv-formats.
 *
 * Everything is lazy: nothing is read or compiled until the first `openaiValidator(...)(value)` call, and
 * each schema is compiled once.
 */
import { existsSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import Ajv2020Module from "ajv/dist/2020.js";
import type { ErrorObject, ValidateFunction } from "ajv/dist/2020.js";
import addFormatsModule from "ajv-formats";
import { describe, it } from "vitest";

// ajv and ajv-formats are CommonJS with `module.exports = X; module.exports.default = X`. Under NodeNext
// TypeScript types the default import as the whole module, so `.default` is the class/plugin both in the
// type system and at run time.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;
type Ajv2020Instance = InstanceType<typeof Ajv2020>;

const ENV_VAR = "OPENAI_OPENAPI_SPEC";
const DOC_ID = "openai";

/** Absolute path of the OpenAI OpenAPI document, or undefined when `OPENAI_OPENAPI_SPEC` is unset/empty. */
export const openaiSpecPath: string | undefined = process.env[ENV_VAR]
  ? resolve(process.cwd(), process.env[ENV_VAR])
  : undefined;

/**
 * True when `OPENAI_OPENAPI_SPEC` is set. A set variable naming a missing file is a configuration error
 * and is NOT treated as "absent": the first validator call then throws a clear error.
 */
export const haveOpenAISpec: boolean = openaiSpecPath !== undefined;

/** Component schema names the agentgate contract tests use (all exist in the document). */
export const OPENAI_SCHEMAS = {
  chatCompletion: "CreateChatCompletionResponse",
  /** Every `chat.completion.chunk` SSE event. */
  chatCompletionChunk: "CreateChatCompletionStreamResponse",
  /** `text_completion` objects; legacy completions stream chunks are the same object. */
  completion: "CreateCompletionResponse",
  modelList: "ListModelsResponse",
  model: "Model",
  embeddingList: "CreateEmbeddingResponse",
  error: "ErrorResponse",
} as const;

// ---------------------------------------------------------------------------------------------------------
// Schema normalisation (schema-aware: property *names* are never mistaken for keywords)

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type JsonObject = { [k: string]: Json };

const isObject = (v: unknown): v is JsonObject => typeof v === "object" && v !== null && !Array.isArray(v);

/** Keywords whose value is a map of name → schema. */
const SCHEMA_MAP_KEYWORDS = new Set(["properties", "patternProperties", "$defs", "definitions", "dependentSchemas"]);
/** Keywords whose value is one schema (or, for legacy `items`, possibly an array of schemas). */
const SCHEMA_KEYWORDS = new Set([
  "items",
  "additionalItems",
  "additionalProperties",
  "unevaluatedItems",
  "unevaluatedProperties",
  "contains",
  "propertyNames",
  "not",
  "if",
  "then",
  "else",
]);
/** Keywords whose value is an array of schemas. */
const SCHEMA_ARRAY_KEYWORDS = new Set(["allOf", "anyOf", "oneOf", "prefixItems"]);
/** Annotation-only keywords dropped before compiling. */
const STRIPPED_KEYWORDS = new Set(["discriminator", "example", "xml", "externalDocs"]);

function normaliseSchema(schema: Json, component: string): Json {
  if (!isObject(schema)) return schema; // boolean schemas, or garbage Ajv will report
  const out: JsonObject = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key.startsWith("x-") || STRIPPED_KEYWORDS.has(key)) continue;
    if (SCHEMA_MAP_KEYWORDS.has(key) && isObject(value)) {
      out[key] = Object.fromEntries(Object.entries(value).map(([n, s]) => [n, normaliseSchema(s, component)]));
    } else if (SCHEMA_ARRAY_KEYWORDS.has(key) && Array.isArray(value)) {
      out[key] = value.map((s) => normaliseSchema(s, component));
    } else if (SCHEMA_KEYWORDS.has(key)) {
      out[key] = Array.isArray(value)
        ? value.map((s) => normaliseSchema(s, component))
        : normaliseSchema(value, component);
    } else {
      out[key] = value; // enum, const, default, examples, description ... copied untouched
    }
  }

  // Legacy tuple form `items: [..]` → 2020-12 `prefixItems`.
  if (Array.isArray(out.items)) {
    out.prefixItems = out.items;
    delete out.items;
  }
  // OpenAPI 3.0 boolean exclusiveMinimum/Maximum → 2020-12 numeric form.
  for (const [excl, bound] of [
    ["exclusiveMinimum", "minimum"],
    ["exclusiveMaximum", "maximum"],
  ] as const) {
    if (typeof out[excl] === "boolean") {
      if (out[excl] === true && typeof out[bound] === "number") {
        out[excl] = out[bound];
        delete out[bound];
      } else {
        delete out[excl];
      }
    }
  }
  // 2019-09 `$recursiveRef: "#"` meant "the schema this component is"; the document root is not a schema.
  if (out.$recursiveRef === "#") {
    delete out.$recursiveRef;
    out.$ref = `#/components/schemas/${component}`;
  }
  // OpenAPI 3.0 `nullable`.
  if ("nullable" in out) {
    const nullable = out.nullable === true;
    delete out.nullable;
    if (nullable) {
      const t = out.type;
      const simple = typeof t === "string" && !("enum" in out) && !("const" in out) && !("$ref" in out);
      if (simple) {
        out.type = t === "null" ? t : [t, "null"];
      } else if (!(Array.isArray(t) && t.includes("null"))) {
        return { anyOf: [out, { type: "null" }] };
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Lazy Ajv instance and per-schema validators

interface Loaded {
  ajv: Ajv2020Instance;
  schemaNames: Set<string>;
  loadMs: number;
}

let loaded: Loaded | undefined;
const validators = new Map<string, ValidateFunction>();

/** Timings of the lazy work, for diagnostics (milliseconds). */
export const openaiSpecTimings: { loadMs?: number; compileMs: Record<string, number> } = { compileMs: {} };

function load(): Loaded {
  if (loaded) return loaded;
  if (!openaiSpecPath) {
    throw new Error(`${ENV_VAR} is unset: OpenAI contract validation is unavailable (use describeWithOpenAISpec)`);
  }
  if (!existsSync(openaiSpecPath)) {
    throw new Error(`${ENV_VAR}=${process.env[ENV_VAR]} does not exist (resolved to ${openaiSpecPath})`);
  }
  const t0 = performance.now();
  let doc: JsonObject;
  try {
    const parsed: unknown = JSON.parse(readFileSync(openaiSpecPath, "utf8"));
    if (!isObject(parsed)) throw new Error("top level is not an object");
    doc = parsed;
  } catch (err) {
    throw new Error(`${ENV_VAR}=${openaiSpecPath} is not a readable JSON OpenAPI document: ${(err as Error).message}`);
  }
  const components = doc.components;
  if (!isObject(components) || !isObject(components.schemas)) {
    throw new Error(`${openaiSpecPath} has no components.schemas`);
  }
  const rawSchemas = components.schemas;
  const schemas: JsonObject = {};
  for (const [name, schema] of Object.entries(rawSchemas)) schemas[name] = normaliseSchema(schema, name);

  const ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats(ajv);
  // `created`, `expires_at` ...: Unix seconds. Applies to numbers only.
  ajv.addFormat("unixtime", { type: "number", validate: (n: number) => Number.isInteger(n) && n >= 0 });
  // Only `components` is needed to resolve `#/components/...` references; `paths` etc. are left out.
  // Meta-validation of this wrapper is skipped: it is not itself a schema (each subschema is checked by
  // Ajv's keyword definitions when compiled).
  ajv.addSchema({ $id: DOC_ID, components: { ...components, schemas } }, undefined, undefined, false);
  const loadMs = performance.now() - t0;
  openaiSpecTimings.loadMs = loadMs;
  loaded = { ajv, schemaNames: new Set(Object.keys(schemas)), loadMs };
  return loaded;
}

function compile(schemaName: string): ValidateFunction {
  const cached = validators.get(schemaName);
  if (cached) return cached;
  const { ajv, schemaNames } = load();
  if (!schemaNames.has(schemaName)) {
    const close = [...schemaNames].filter((n) => n.toLowerCase().includes(schemaName.toLowerCase().slice(0, 8)));
    throw new Error(
      `#/components/schemas/${schemaName} is not in ${openaiSpecPath}` +
        (close.length ? `; similar: ${close.slice(0, 10).join(", ")}` : ""),
    );
  }
  const t0 = performance.now();
  const validate = ajv.compile({ $ref: `${DOC_ID}#/components/schemas/${schemaName}` });
  openaiSpecTimings.compileMs[schemaName] = performance.now() - t0;
  validators.set(schemaName, validate);
  return validate;
}

function describeError(e: ErrorObject): string {
  const where = e.instancePath === "" ? "(root)" : e.instancePath;
  const params = Object.keys(e.params).length ? ` ${JSON.stringify(e.params)}` : "";
  return `  ${where}: ${e.message ?? e.keyword}${params}  [schema ${e.schemaPath}]`;
}

function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 600 ? `${text.slice(0, 600)}…` : text;
}

/**
 * Returns a function that throws when `value` does not validate against
 * `#/components/schemas/<schemaName>` of the OpenAI document. The message lists every failing instance
 * path with Ajv's message. Loading and compiling happen on first call of the returned function.
 */
export function openaiValidator(schemaName: string): (value: unknown) => void {
  return (value: unknown): void => {
    const validate = compile(schemaName);
    if (validate(value)) return;
    const errors = validate.errors ?? [];
    throw new Error(
      `response does not match OpenAI schema ${schemaName} (${errors.length} error${errors.length === 1 ? "" : "s"}):\n` +
        errors.map(describeError).join("\n") +
        `\n  value: ${preview(value)}`,
    );
  };
}

// ---------------------------------------------------------------------------------------------------------
// text/event-stream parsing

export interface SSEEvent {
  /** The `event:` field, when the event had a non-empty one. */
  event?: string;
  /** All `data:` lines joined with "\n". */
  data: string;
}

/**
 * Parses a complete text/event-stream body the way the WHATWG EventSource algorithm does: lines end with
 * CRLF, LF or CR; `:` lines are comments; one leading space after `field:` is dropped; multiple `data:`
 * lines join with "\n"; an event is dispatched at a blank line and only if it had a `data` field; a
 * trailing event without its terminating blank line is discarded (as a browser would); `id`/`retry` and
 * unknown fields are ignored.
 *
 * `data: [DONE]` (OpenAI's terminator) is not returned as an event: it sets `done`. Any event after
 * `[DONE]` throws, since OpenAI clients stop reading there and would silently lose it.
 */
export function parseSSE(text: string): { events: SSEEvent[]; done: boolean } {
  const events: SSEEvent[] = [];
  let done = false;
  let eventType = "";
  let dataLines: string[] | undefined;
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const lines = body.split(/\r\n|\r|\n/);
  // The element after the last line terminator is an unterminated line; a final blank line only
  // terminates an event if it really ended with a line break, which split() models as a trailing ''.
  const complete = lines.length - 1;
  for (let i = 0; i < complete; i++) {
    const line = lines[i];
    if (line === "") {
      if (dataLines !== undefined) {
        const data = dataLines.join("\n");
        if (done) throw new Error(`SSE event after data: [DONE]: ${JSON.stringify(data).slice(0, 200)}`);
        if (data === "[DONE]") done = true;
        else events.push(eventType ? { event: eventType, data } : { data });
      }
      eventType = "";
      dataLines = undefined;
      continue;
    }
    if (line.startsWith(":")) continue;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") (dataLines ??= []).push(value);
    else if (field === "event") eventType = value;
  }
  return { events, done };
}

// ---------------------------------------------------------------------------------------------------------
// Explicit, visible skip when the document is absent

/**
 * `describe(name, fn)` when `OPENAI_OPENAPI_SPEC` is set. Otherwise registers one passing test under
 * `name` that prints "OpenAI contract suite <name> left out: OPENAI_OPENAPI_SPEC unset", so a run without
 * the document says which contract suites it did not run.
 */
export function describeWithOpenAISpec(name: string, fn: () => void): void {
  if (haveOpenAISpec) {
    describe(name, fn);
    return;
  }
  const line = `OpenAI contract suite ${name} left out: ${ENV_VAR} unset`;
  describe(name, () => {
    it(`left out: ${ENV_VAR} unset`, () => {
      console.warn(line);
    });
  });
}
