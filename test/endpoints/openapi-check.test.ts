import { Validator } from "@seriousme/openapi-schema-validator";
import { describe, expect, it } from "vitest";
import {
  buildOpenApiDocument,
  checkOperation,
  coerceParameters,
  SchemaValidator,
  validateParameters,
} from "../../src/endpoints/openapi-check.js";

const ok200 = { "200": { description: "ok" } };

async function problemsOf(input: { method: string; path: string; operation: unknown }): Promise<string[]> {
  const r = await checkOperation(input);
  if (r.ok) throw new Error("expected problems");
  return r.problems;
}

describe("checkOperation", () => {
  it("accepts an operation with request and response schemas", async () => {
    const item = { type: "object", properties: { name: { type: "string" } }, required: ["name"] };
    const r = await checkOperation({
      method: "POST",
      path: "/albums/{albumId}/images",
      operation: {
        summary: "Add an image",
        parameters: [{ name: "albumId", in: "path", required: true, schema: { type: "integer" } }],
        requestBody: { required: true, content: { "application/json": { schema: item } } },
        responses: {
          "400": { description: "bad", content: { "application/json": { schema: { type: "object" } } } },
          "202": { description: "later" },
          "201": {
            description: "created",
            content: { "application/json": { schema: { type: "object", properties: { id: { type: "string" } } } } },
          },
        },
      },
    });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.successStatus).toBe(201);
    expect(r.requestSchema).toEqual(item);
    expect(r.responseSchema).toEqual({ type: "object", properties: { id: { type: "string" } } });
    expect(r.operation.parameters).toEqual([
      { name: "albumId", in: "path", required: true, schema: { type: "integer" } },
    ]);
  });

  it("adds undeclared path parameters and the required flag", async () => {
    const r = await checkOperation({
      method: "get",
      path: "/users/{user}/posts/{post}",
      operation: { parameters: [{ name: "post", in: "path", schema: { type: "integer" } }], responses: ok200 },
    });
    expect(r.ok && r.operation.parameters).toEqual([
      { name: "post", in: "path", required: true, schema: { type: "integer" } },
      { name: "user", in: "path", required: true, schema: { type: "string" } },
    ]);
    const bare = await checkOperation({ method: "get", path: "/x/{id}", operation: {} });
    expect(bare.ok && bare.operation).toEqual({
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
    });
    expect(bare.ok && bare.successStatus).toBe(200);
    expect(bare.ok && bare.responseSchema).toBeUndefined();
  });

  it("does not modify its input", async () => {
    const operation = { responses: ok200 };
    await checkOperation({ method: "get", path: "/x/{id}", operation });
    expect(operation).toEqual({ responses: ok200 });
  });

  it("reports a declared path parameter missing from the template", async () => {
    const problems = await problemsOf({
      method: "get",
      path: "/x",
      operation: { parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }] },
    });
    expect(problems).toEqual([`/paths/~1x/get/parameters/0: path parameter "id" is not in the path template /x`]);
  });

  it("reports a bad responses type with its location", async () => {
    const problems = await problemsOf({ method: "get", path: "/images/{id}", operation: { responses: [] } });
    expect(problems).toEqual(["/paths/~1images~1{id}/get/responses: must be object"]);
  });

  it("reports several problems at once", async () => {
    const problems = await problemsOf({
      method: "get",
      path: "/x",
      operation: { parameters: [{ name: "q", in: "query", required: "yes", schema: {} }], responses: { "200": {} } },
    });
    expect(problems).toContain("/paths/~1x/get/parameters/0/required: must be boolean");
    expect(problems).toContain("/paths/~1x/get/responses/200: must have required property 'description'");
    expect(problems.some((p) => p.includes('must match "else" schema'))).toBe(false);
  });

  it("reports unknown response codes", async () => {
    const problems = await problemsOf({
      method: "get",
      path: "/x",
      operation: { responses: { "200": { description: "ok" }, abc: { description: "no" } } },
    });
    expect(problems).toEqual(['/paths/~1x/get/responses: must NOT have unevaluated properties ("abc")']);
  });

  it("reports a schema that does not compile", async () => {
    const problems = await problemsOf({
      method: "get",
      path: "/x",
      operation: {
        responses: { "200": { description: "ok", content: { "application/json": { schema: { type: 12 } } } } },
      },
    });
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(
      /^response schema \(\/paths\/~1x\/get\/responses\/200\/content\/application~1json\/schema\): schema is invalid/,
    );
  });

  it("reports parameter and request schemas that do not compile", async () => {
    const problems = await problemsOf({
      method: "post",
      path: "/x",
      operation: {
        parameters: [{ name: "n", in: "query", schema: { minimum: "one" } }],
        requestBody: { content: { "application/json": { schema: { $defs: 1 } } } },
      },
    });
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^parameter query\.n schema \(\/paths\/~1x\/post\/parameters\/0\/schema\): /);
    expect(problems[1]).toMatch(
      /^request schema \(\/paths\/~1x\/post\/requestBody\/content\/application~1json\/schema\): /,
    );
  });

  it("reports an unresolvable $ref", async () => {
    const problems = await problemsOf({
      method: "get",
      path: "/x",
      operation: {
        responses: {
          "200": {
            description: "ok",
            content: { "application/json": { schema: { $ref: "#/components/schemas/Pet" } } },
          },
        },
      },
    });
    expect(problems).toEqual(["Can't resolve #/components/schemas/Pet"]);
  });

  it("inlines resolvable $refs and rejects recursive ones", async () => {
    const schema = { type: "object", properties: { a: { type: "integer" } } };
    const r = await checkOperation({
      method: "post",
      path: "/x",
      operation: {
        requestBody: { content: { "application/json": { schema } } },
        responses: {
          "200": {
            description: "ok",
            content: {
              "application/json": { schema: { $ref: "#/paths/~1x/post/requestBody/content/application~1json/schema" } },
            },
          },
        },
      },
    });
    expect(r.ok && r.responseSchema).toEqual(schema);
    const problems = await problemsOf({
      method: "get",
      path: "/x",
      operation: {
        responses: {
          "200": {
            description: "ok",
            content: {
              "application/json": {
                schema: {
                  type: "object",
                  properties: { next: { $ref: "#/paths/~1x/get/responses/200/content/application~1json/schema" } },
                },
              },
            },
          },
        },
      },
    });
    expect(problems[0]).toMatch(/recursive \$ref is not supported/);
  });

  it.each([
    [{ "201": { description: "c" }, default: { description: "d" } }, 201],
    [{ "2XX": { description: "any" }, "404": { description: "nf" } }, 200],
    [{ default: { description: "d" } }, 200],
    [{ "404": { description: "nf" } }, 200],
    [{ "204": { description: "none" }, "200": { description: "ok" } }, 200],
  ])("picks the success status of %j", async (responses, status) => {
    const r = await checkOperation({ method: "get", path: "/x", operation: { responses } });
    expect(r.ok && r.successStatus).toBe(status);
  });

  it("takes the response schema of 2XX or default", async () => {
    const schema = { type: "array" };
    const r = await checkOperation({
      method: "get",
      path: "/x",
      operation: { responses: { default: { description: "d", content: { "application/json": { schema } } } } },
    });
    expect(r.ok && r.responseSchema).toEqual(schema);
  });

  it("rejects bad methods, paths and operations", async () => {
    expect(await problemsOf({ method: "fetch", path: "/x", operation: {} })).toEqual([
      'method "fetch" is not one of get, put, post, delete, options, head, patch, trace',
    ]);
    expect((await problemsOf({ method: "get", path: "/a//b", operation: {} }))[0]).toMatch(/^path: .*empty segments/);
    expect(await problemsOf({ method: "get", path: "/x", operation: [] })).toEqual([
      "/paths/~1x/get: the operation must be a JSON object",
    ]);
  });
});

describe("SchemaValidator", () => {
  const v = new SchemaValidator();
  const schema = {
    type: "object",
    properties: {
      items: { type: "array", items: { type: "object", properties: { name: { type: "string" } }, required: ["name"] } },
      kind: { enum: ["a", "b"] },
    },
    additionalProperties: false,
  };

  it("compiles or explains why not", () => {
    expect(v.compile(schema)).toEqual({ ok: true });
    expect(v.compile(true)).toEqual({ ok: true });
    const bad = v.compile({ type: 12 });
    expect(bad.ok).toBe(false);
    expect(!bad.ok && bad.message).toMatch(/schema is invalid: data\/type/);
    expect(v.compile({ $ref: "#/nowhere" })).toEqual({ ok: false, message: expect.stringMatching(/can't resolve/) });
    expect(v.compile("string")).toEqual({ ok: false, message: "schema must be an object or a boolean" });
  });

  it("returns readable errors", () => {
    expect(v.validate(schema, { items: [{ name: "x" }] })).toEqual([]);
    expect(v.validate(schema, { items: [{ name: 1 }, {}], kind: "c", extra: true })).toEqual([
      'body: must NOT have additional properties ("extra")',
      "body/items/0/name: must be string",
      "body/items/1: must have required property 'name'",
      'body/kind: must be equal to one of the allowed values ["a","b"]',
    ]);
    expect(v.validate(schema, [], "response")).toEqual(["response: must be object"]);
    expect(v.validate({ type: 12 }, 1)[0]).toMatch(/^body: schema does not compile: /);
  });

  it("caps errors at 10", () => {
    const many = Array.from({ length: 30 }, () => ({}));
    expect(v.validate(schema, { items: many })).toHaveLength(10);
  });

  it("knows ajv-formats and the OpenAPI formats", () => {
    expect(v.validate({ type: "string", format: "email" }, "nope")).toEqual(['body: must match format "email"']);
    expect(v.validate({ type: "integer", format: "int32" }, 2 ** 31)).toEqual(['body: must match format "int32"']);
    expect(v.validate({ type: "string", format: "byte" }, "aGk=")).toEqual([]);
  });

  it("evicts least recently used validators, also ones with the same $id", () => {
    const small = new SchemaValidator(2);
    const a = { $id: "https://example.com/x", type: "string" };
    const b = { $id: "https://example.com/x", type: "integer" };
    expect(small.validate(a, "s")).toEqual([]);
    expect(small.validate(b, 1)).toEqual([]);
    for (let i = 0; i < 5; i++) expect(small.validate({ const: i }, i)).toEqual([]);
    expect(small.validate(a, 1)).toEqual(["body: must be string"]);
  });
});

describe("parameters", () => {
  const operation = {
    parameters: [
      { name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1 } },
      { name: "limit", in: "query", required: true, schema: { type: "integer", maximum: 100 } },
      { name: "ratio", in: "query", schema: { type: "number" } },
      { name: "full", in: "query", schema: { type: "boolean" } },
      { name: "tags", in: "query", schema: { type: "array", items: { type: "integer" } } },
      { name: "csv", in: "query", explode: false, schema: { type: "array", items: { type: "string" } } },
      { name: "name", in: "query", schema: { type: "string" } },
    ],
  };

  it("coerces values per schema", () => {
    expect(
      coerceParameters(operation, {
        pathParams: { id: "7" },
        query: {
          limit: "10",
          ratio: "0.5",
          full: "true",
          tags: ["1", "2"],
          csv: "a,b",
          name: "42",
          other: ["x", "y"],
        },
      }),
    ).toEqual({
      pathParams: { id: 7 },
      query: { limit: 10, ratio: 0.5, full: true, tags: [1, 2], csv: ["a", "b"], name: "42", other: ["x", "y"] },
      errors: [],
    });
    expect(coerceParameters(operation, { pathParams: { id: "1" }, query: { limit: "1", tags: "3" } }).query).toEqual({
      limit: 1,
      tags: [3],
    });
  });

  it("names the failing parameters", () => {
    expect(validateParameters(operation, { pathParams: { id: "0" }, query: {} })).toEqual([
      "path.id: must be >= 1",
      "query.limit: is required",
    ]);
    expect(
      validateParameters(operation, {
        pathParams: { id: "x" },
        query: { limit: "", full: "yes", tags: ["1", "b"], ratio: ["1", "2"] },
      }),
    ).toEqual([
      "path.id: must be integer",
      "query.limit: must be integer",
      "query.ratio: expected one value, got 2",
      "query.full: must be boolean",
      "query.tags/1: must be integer",
    ]);
  });
});

describe("buildOpenApiDocument", () => {
  it("builds a document that validates", async () => {
    const endpoints = [];
    for (const [id, method, path, operation] of [
      ["ep_1", "GET", "/images/{id}", { operationId: "getImage", responses: ok200 }],
      ["ep_2", "DELETE", "/images/{imageId}", { responses: ok200 }],
      ["ep_3", "POST", "/images", { operationId: "getImage", responses: ok200 }],
      ["ep_4", "GET", "/health", {}],
    ] as const) {
      const r = await checkOperation({ method, path, operation });
      if (!r.ok) throw new Error(r.problems.join("\n"));
      endpoints.push({ id, method, path, description: `endpoint ${id}`, operation: r.operation, stale: id === "ep_4" });
    }
    const doc = buildOpenApiDocument(endpoints, {
      title: "dreams",
      version: "1",
      serverUrl: "http://localhost:8080/dream",
    });
    const res = await new Validator().validate(doc);
    expect(res).toEqual({ valid: true });
    expect(doc.servers).toEqual([{ url: "http://localhost:8080/dream" }]);
    const paths = doc.paths as Record<string, Record<string, Record<string, unknown>>>;
    expect(Object.keys(paths)).toEqual(["/health", "/images", "/images/{id}"]);
    const del = paths["/images/{id}"].delete;
    expect(del.operationId).toBe("ep_2");
    expect(del.parameters).toEqual([{ name: "id", in: "path", required: true, schema: { type: "string" } }]);
    expect(del["x-agentgate-endpoint-id"]).toBe("ep_2");
    const ids = [paths["/images/{id}"].get.operationId, paths["/images"].post.operationId].sort();
    expect(ids).toEqual(["getImage", "getImage_2"]);
    expect(paths["/health"].get).toMatchObject({
      operationId: "ep_4",
      description: "endpoint ep_4",
      "x-agentgate-stale": true,
    });
  });
});
