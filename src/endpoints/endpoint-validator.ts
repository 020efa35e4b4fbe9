/**
 * Checks what a dreaming job produced (docs/endpoints.md, "Validation"): the three files are there,
 * the operation is valid OpenAPI 3.1 with schemas that compile, and the handler, run in the sandbox
 * on every example (the client's first, then Codex's), exits 0 with JSON that validates against the
 * response schemas and equals the example's expected body. Every problem found is a failure reason;
 * one bad example does not hide the others.
 */
import type { JobRecord } from "../jobs/types.js";
import { EXAMPLES_FILE, HANDLER_FILES, OPERATION_FILE } from "./dream-instructions.js";
import { sha256, type HandlerInput, type HandlerRunner } from "./handler-runner.js";
import { checkOperation, coerceParameters, validateParameters, type SchemaValidator } from "./openapi-check.js";
import { parseExamples } from "./examples.js";
import { parsePathTemplate, type PathTemplate } from "./path-template.js";
import type { EndpointExample, EndpointFailure, EndpointHandler, EndpointRecord } from "./types.js";

/** Examples run per validation at most (client's and Codex's together). */
export const MAX_VALIDATION_EXAMPLES = 20;

export type ValidationResult =
  | { status: "ready"; operation: Record<string, unknown>; handler: EndpointHandler; examples: EndpointExample[] }
  | {
      status: "failed";
      operation?: Record<string, unknown>;
      handler?: EndpointHandler;
      examples: EndpointExample[];
      failures: EndpointFailure[];
    };

export interface HandlerDefaults {
  timeoutMs: number;
  limits: EndpointHandler["limits"];
  sandbox: EndpointHandler["sandbox"];
}

type Inputs = Pick<EndpointRecord, "method" | "path" | "requestSchema" | "responseSchema" | "requestedExamples">;

export class EndpointValidator {
  constructor(private readonly o: { handlers: HandlerRunner; schemas: SchemaValidator; defaults: HandlerDefaults }) {}

  async validate(endpoint: Inputs, job: JobRecord, signal?: AbortSignal): Promise<ValidationResult> {
    const fail = (failures: EndpointFailure[], rest: Partial<ValidationResult> = {}): ValidationResult =>
      ({
        status: "failed",
        examples: [],
        ...rest,
        failures,
      }) as ValidationResult;
    if (job.status !== "succeeded")
      return fail([{ kind: "job_failed", message: `job ${job.id} ${job.status}${job.error ? `: ${job.error}` : ""}` }]);

    const files = job.outputFiles ?? {};
    const failures: EndpointFailure[] = [];
    const handlerNames = Object.keys(HANDLER_FILES).filter((f) => files[f] !== undefined) as Array<
      keyof typeof HANDLER_FILES
    >;
    if (files[OPERATION_FILE] === undefined)
      failures.push({ kind: "missing_output", message: `the job did not write output/${OPERATION_FILE}` });
    if (files[EXAMPLES_FILE] === undefined)
      failures.push({ kind: "missing_output", message: `the job did not write output/${EXAMPLES_FILE}` });
    if (handlerNames.length === 0)
      failures.push({
        kind: "missing_output",
        message: `the job wrote no handler (one of ${Object.keys(HANDLER_FILES)
          .map((f) => `output/${f}`)
          .join(", ")})`,
      });
    else if (handlerNames.length > 1)
      failures.push({
        kind: "missing_output",
        message: `the job wrote ${handlerNames.length} handlers (${handlerNames.join(", ")}); write exactly one`,
      });
    if (failures.length) return fail(failures);

    const entrypoint = handlerNames[0]!;
    const source = files[entrypoint]!;
    const handler: EndpointHandler = {
      runtime: HANDLER_FILES[entrypoint],
      entrypoint,
      source,
      sha256: sha256(source),
      timeoutMs: this.o.defaults.timeoutMs,
      limits: this.o.defaults.limits,
      sandbox: this.o.defaults.sandbox,
    };

    let rawOperation: unknown;
    try {
      rawOperation = JSON.parse(files[OPERATION_FILE]!);
    } catch (err) {
      return fail(
        [{ kind: "invalid_openapi", message: `output/${OPERATION_FILE} is not JSON: ${(err as Error).message}` }],
        { handler },
      );
    }
    const produced = parseExamples(safeJson(files[EXAMPLES_FILE]!), `output/${EXAMPLES_FILE}`);
    if (!produced.ok) return fail([{ kind: "missing_output", message: produced.error }], { handler });

    const check = await checkOperation(
      { method: endpoint.method, path: endpoint.path, operation: rawOperation },
      this.o.schemas,
    );
    if (!check.ok)
      return fail(
        check.problems.map((message) => ({ kind: "invalid_openapi" as const, message })),
        { handler, examples: produced.examples },
      );
    const operation = check.operation;
    // The client's examples all run (DreamEndpoint caps them); Codex's fill up the rest.
    const examples = [...endpoint.requestedExamples, ...produced.examples].slice(0, MAX_VALIDATION_EXAMPLES);
    if (examples.length === 0)
      return fail([{ kind: "missing_output", message: `output/${EXAMPLES_FILE} holds no examples` }], {
        operation,
        handler,
      });
    const template = parsePathTemplate(endpoint.path);
    const requestSchemas = [endpoint.requestSchema, check.requestSchema].filter(isObject);
    const responseSchemas = [endpoint.responseSchema, check.responseSchema].filter(isObject);

    for (let i = 0; i < examples.length; i++) {
      const x = examples[i]!;
      const problems = await this.checkExample(x, i, {
        method: endpoint.method,
        template,
        operation,
        successStatus: check.successStatus,
        handler,
        requestSchemas,
        responseSchemas,
        signal,
      });
      failures.push(...problems);
    }
    if (failures.length) return fail(failures, { operation, handler, examples });
    return { status: "ready", operation, handler, examples };
  }

  private async checkExample(
    x: EndpointExample,
    index: number,
    c: {
      method: string;
      template: PathTemplate;
      operation: Record<string, unknown>;
      successStatus: number;
      handler: EndpointHandler;
      requestSchemas: object[];
      responseSchemas: object[];
      signal?: AbortSignal;
    },
  ): Promise<EndpointFailure[]> {
    const at = (kind: EndpointFailure["kind"], message: string): EndpointFailure => ({
      kind,
      message,
      exampleIndex: index,
    });
    if (x.responseStatus && x.responseStatus !== c.successStatus)
      return [
        at(
          "example_mismatch",
          `the example expects HTTP ${x.responseStatus}, but a handler answers only its success status ${c.successStatus}`,
        ),
      ];
    const missing = c.template.params.filter((p) => x.pathParams[p] === undefined);
    if (missing.length)
      return [at("example_mismatch", `the example gives no value for path parameter(s) ${missing.join(", ")}`)];
    const paramErrors = validateParameters(c.operation, { pathParams: x.pathParams, query: x.query });
    if (paramErrors.length) return [at("schema_mismatch", `the example's parameters: ${paramErrors.join("; ")}`)];
    for (const schema of c.requestSchemas) {
      const errors = this.o.schemas.validate(schema, x.requestBody);
      if (errors.length) return [at("schema_mismatch", `the example's request body: ${errors.join("; ")}`)];
    }
    const coerced = coerceParameters(c.operation, { pathParams: x.pathParams, query: x.query });
    const input: HandlerInput = {
      method: c.method,
      path: fillTemplate(c.template, x.pathParams),
      path_params: coerced.pathParams,
      query: coerced.query,
      headers: {},
      body: x.requestBody ?? null,
    };
    const outcome = await this.o.handlers.run(c.handler, input, c.signal);
    if (!outcome.ok) return [at(outcome.kind, outcome.message)];
    const out: EndpointFailure[] = [];
    for (const schema of c.responseSchemas) {
      const errors = this.o.schemas.validate(schema, outcome.body);
      if (errors.length) out.push(at("schema_mismatch", `the handler's output: ${errors.join("; ")}`));
    }
    if (x.responseBody !== undefined && !deepEqual(x.responseBody, outcome.body))
      out.push(
        at(
          "example_mismatch",
          `expected ${clip(JSON.stringify(x.responseBody))}, the handler wrote ${clip(JSON.stringify(outcome.body))}`,
        ),
      );
    return out;
  }
}

export function fillTemplate(t: PathTemplate, params: Record<string, string>): string {
  return (
    "/" + t.segments.map((s) => ("literal" in s ? s.literal : encodeURIComponent(params[s.param] ?? ""))).join("/")
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    return new Error((err as Error).message);
  }
}

const isObject = (v: unknown): v is object => typeof v === "object" && v !== null && !Array.isArray(v);

const clip = (s: string | undefined, n = 300): string =>
  s === undefined ? "nothing" : s.length > n ? `${s.slice(0, n)}...` : s;

/** JSON equality: key order does not matter, array order does. */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== typeof b || a === null || b === null || typeof a !== "object") return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    return a.length === bb.length && a.every((v, i) => deepEqual(v, bb[i]));
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  const ak = Object.keys(ao);
  return ak.length === Object.keys(bo).length && ak.every((k) => Object.hasOwn(bo, k) && deepEqual(ao[k], bo[k]));
}
