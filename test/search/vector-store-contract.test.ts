/**
 * One contract, two vector stores: pgvector on an in-memory PGlite database, and Qdrant through the
 * loopback double, which validates every request (and its own replies) against Qdrant's OpenAPI document
 * (QDRANT_OPENAPI_SPEC; the Qdrant half is left out, saying so, when it is unset).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { PgvectorStore } from "../../src/search/vectors/pgvector-store.js";
import { QdrantStore } from "../../src/search/vectors/qdrant-store.js";
import {
  pathPrefixes,
  pointIdFor,
  type VectorCollection,
  type VectorPoint,
  type VectorStore,
} from "../../src/search/vectors/vector-store.js";
import { openDatabase, type Database } from "../../src/storage/database.js";
import { QdrantDouble, describeWithQdrantSpec } from "../doubles/qdrant-double.js";
import { TEST_DATABASE_URL, createScratchDatabase } from "../storage/helpers.js";
import { openTestDatabase } from "../support/test-database.js";

let seq = 0;
const fresh = (): string => `c${process.pid}_${++seq}`;

/** Deterministic pseudo-random vectors around a few cluster centres (like real embeddings, not uniform). */
function makeVectors(n: number, dims: number, seed = 1): number[][] {
  let s = seed >>> 0;
  const rnd = (): number => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32 - 0.5;
  };
  const centres = Array.from({ length: 8 }, () => Array.from({ length: dims }, rnd));
  return Array.from({ length: n }, (_, i) => centres[i % 8]!.map((c) => c + 0.6 * rnd()));
}

function cosine(a: readonly number[], b: readonly number[]): number {
  let d = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    d += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return d / Math.sqrt(na * nb);
}

async function rejection(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return err as GatewayError;
}

interface Harness {
  store: VectorStore;
}

function contract(label: string, harness: () => Harness): void {
  let store: VectorStore;
  beforeAll(() => {
    store = harness().store;
  });
  const open = async (dims = 4): Promise<VectorCollection> => (await store.ensure(fresh(), dims)).collection;

  describe(`${label}: vector store contract`, () => {
    it("creates an empty collection, answers [] and counts 0", async () => {
      const name = fresh();
      const first = await store.ensure(name, 4);
      expect(first).toMatchObject({ created: true, recreated: false });
      expect(first.collection).toMatchObject({ name, dimensions: 4 });
      expect(await first.collection.query([1, 0, 0, 0], { limit: 5 })).toEqual([]);
      expect(await first.collection.count()).toBe(0);
      const again = await store.ensure(name, 4);
      expect(again).toMatchObject({ created: false, recreated: false });
    });

    it("orders by cosine similarity, higher is better, with exact scores and payloads", async () => {
      const c = await open();
      await c.upsert([
        { id: "opposite", vector: [-2, 0, 0, 0], root: "r", path: "d.ts" },
        { id: "orthogonal", vector: [0, 3, 0, 0], root: "r", path: "c.ts" },
        { id: "diagonal", vector: [1, 1, 0, 0], root: "r", path: "b.ts" },
        { id: "same", vector: new Float32Array([5, 0, 0, 0]), root: "r", path: "a.ts", payload: { start: 1, end: 9 } },
      ]);
      const hits = await c.query([1, 0, 0, 0], { limit: 10 });
      expect(hits.map((h) => h.id)).toEqual(["same", "diagonal", "orthogonal", "opposite"]);
      const expected = [1, Math.SQRT1_2, 0, -1];
      hits.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i]!, 5));
      expect(hits[0]).toMatchObject({ root: "r", path: "a.ts", payload: { start: 1, end: 9 } });
      expect(hits[1]!.payload).toEqual({});
      expect(await c.query([1, 0, 0, 0], { limit: 2 })).toHaveLength(2);
    });

    it("filters by root and by directory path prefix", async () => {
      const c = await open();
      const v = [1, 0, 0, 0];
      const files: [string, string][] = [
        ["r1", "src/a.ts"],
        ["r1", "src/ab.ts"],
        ["r1", "src/a/x.ts"],
        ["r1", "lib/y.ts"],
        ["r2", "src/a/x.ts"],
      ];
      await c.upsert(
        files.map(([root, path], i) => ({ id: `${root}:${path}`, vector: [v[0]!, i / 10, 0, 0], root, path })),
      );
      const ids = async (q: { root?: string; pathPrefix?: string }): Promise<string[]> =>
        (await c.query(v, { limit: 10, ...q })).map((h) => h.id).sort();
      expect(await ids({ root: "r2" })).toEqual(["r2:src/a/x.ts"]);
      expect(await ids({ root: "r1", pathPrefix: "src" })).toEqual(["r1:src/a.ts", "r1:src/a/x.ts", "r1:src/ab.ts"]);
      expect(await ids({ root: "r1", pathPrefix: "src/" })).toEqual(await ids({ root: "r1", pathPrefix: "src" }));
      // A directory prefix, not a string prefix: "src/a" is not "src/ab.ts" nor "src/a.ts".
      expect(await ids({ pathPrefix: "src/a" })).toEqual(["r1:src/a/x.ts", "r2:src/a/x.ts"]);
      expect(await ids({ root: "r1", pathPrefix: "src/a.ts" })).toEqual(["r1:src/a.ts"]);
      expect(await ids({ pathPrefix: "." })).toHaveLength(5);
      expect(await ids({ root: "r3" })).toEqual([]);
      expect(await c.count({ root: "r1" })).toBe(4);
      expect(await c.count()).toBe(5);
    });

    it("deleteByPath removes a file's stale vectors only", async () => {
      const c = await open();
      await c.upsert([
        { id: "a1", vector: [1, 0, 0, 0], root: "r1", path: "a.ts" },
        { id: "a2", vector: [1, 0.1, 0, 0], root: "r1", path: "a.ts" },
        { id: "b", vector: [1, 0.2, 0, 0], root: "r1", path: "b.ts" },
        { id: "other-root", vector: [1, 0.3, 0, 0], root: "r2", path: "a.ts" },
      ]);
      expect(await c.deleteByPath("r1", "a.ts")).toBe(2);
      expect(await c.deleteByPath("r1", "a.ts")).toBe(0);
      expect((await c.query([1, 0, 0, 0], { limit: 10 })).map((h) => h.id).sort()).toEqual(["b", "other-root"]);
      await c.deleteByIds(["b", "missing"]);
      expect((await c.query([1, 0, 0, 0], { limit: 10 })).map((h) => h.id)).toEqual(["other-root"]);
    });

    it("re-upserting a chunk replaces its vector, path and payload (last write wins within a batch)", async () => {
      const c = await open();
      await c.upsert([{ id: "k", vector: [1, 0, 0, 0], root: "r", path: "old.ts", payload: { v: 1 } }]);
      await c.upsert([
        { id: "k", vector: [0, 0, 1, 0], root: "r", path: "mid.ts", payload: { v: 2 } },
        { id: "k", vector: [0, 1, 0, 0], root: "r", path: "new.ts", payload: { v: 3 } },
      ]);
      expect(await c.count()).toBe(1);
      const [hit] = await c.query([0, 1, 0, 0], { limit: 1 });
      expect(hit).toMatchObject({ id: "k", path: "new.ts", payload: { v: 3 } });
      expect(hit!.score).toBeCloseTo(1, 5);
      expect(await c.query([1, 0, 0, 0], { limit: 5, pathPrefix: "old.ts" })).toEqual([]);
    });

    it("refuses another dimension count unless asked to recreate, and bad vectors", async () => {
      const name = fresh();
      const { collection: c } = await store.ensure(name, 4);
      await c.upsert([{ id: "x", vector: [1, 2, 3, 4], root: "r", path: "x.ts" }]);
      const err = await rejection(store.ensure(name, 8));
      expect(err).toMatchObject({ kind: "failed_precondition", code: "dimension_mismatch" });
      expect(err.message).toMatch(/4-dimensional.*8/);
      expect(await c.count()).toBe(1); // untouched
      expect(await rejection(c.upsert([{ id: "y", vector: [1, 2, 3], root: "r", path: "y.ts" }]))).toMatchObject({
        kind: "invalid_argument",
      });
      expect(await rejection(c.upsert([{ id: "z", vector: [0, 0, 0, 0], root: "r", path: "z.ts" }]))).toMatchObject({
        kind: "invalid_argument",
      });
      expect(await rejection(c.query([1, 2], { limit: 1 }))).toMatchObject({ kind: "invalid_argument" });
      expect(await rejection(c.query([1, 2, 3, 4], { limit: 0 }))).toMatchObject({ kind: "invalid_argument" });
      expect(await rejection(store.ensure("Bad-Name", 4))).toMatchObject({ kind: "invalid_argument" });

      const rebuilt = await store.ensure(name, 8, { onDimensionMismatch: "recreate" });
      expect(rebuilt).toMatchObject({ created: true, recreated: true });
      expect(rebuilt.collection.dimensions).toBe(8);
      expect(await rebuilt.collection.count()).toBe(0);
    });

    it("batches large upserts and drops collections", async () => {
      const name = fresh();
      const { collection: c } = await store.ensure(name, 8);
      const vectors = makeVectors(1100, 8, 7);
      await c.upsert(vectors.map((vector, i) => ({ id: `p${i}`, vector, root: "r", path: `f${i % 50}.ts` })));
      expect(await c.count()).toBe(1100);
      expect(await store.drop(name)).toBe(true);
      expect(await store.drop(name)).toBe(false);
      expect((await store.ensure(name, 8)).created).toBe(true);
    });

    it("matches a brute-force cosine ranking, before and after optimize()", async () => {
      const dims = 32;
      const { collection: c } = await store.ensure(fresh(), dims);
      const vectors = makeVectors(400, dims, 3);
      const points: VectorPoint[] = vectors.map((vector, i) => ({
        id: `v${i}`,
        vector,
        root: i % 2 ? "odd" : "even",
        path: `dir${i % 4}/f${i}.ts`,
      }));
      await c.upsert(points);
      const queries = makeVectors(5, dims, 99);
      const exact = (q: number[], keep: (p: VectorPoint) => boolean): string[] =>
        points
          .filter(keep)
          .map((p) => ({ id: p.id, s: cosine(q, p.vector as number[]) }))
          .sort((a, b) => b.s - a.s)
          .slice(0, 10)
          .map((x) => x.id);
      for (const q of queries) {
        const hits = await c.query(q, { limit: 10 });
        expect(hits.map((h) => h.id)).toEqual(exact(q, () => true));
        for (const h of hits) expect(h.score).toBeCloseTo(cosine(q, vectors[Number(h.id.slice(1))]!), 5);
      }
      await c.optimize();
      let found = 0;
      for (const q of queries) {
        const want = exact(q, (p) => p.root === "odd" && p.path.startsWith("dir1/"));
        const hits = await c.query(q, { limit: 10, root: "odd", pathPrefix: "dir1" });
        expect(hits).toHaveLength(10); // filters still fill the limit with an ANN index
        for (const h of hits) expect(h).toMatchObject({ root: "odd", path: expect.stringMatching(/^dir1\//) });
        found += hits.filter((h) => want.includes(h.id)).length;
      }
      expect(found / (10 * queries.length)).toBeGreaterThanOrEqual(0.9); // HNSW is approximate
    });
  });
}

// ---------------------------------------------------------------------------------------------------------

describe("pgvector store (PGlite)", () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(() => db?.close());

  contract("pgvector", () => ({ store: new PgvectorStore(db, { hnswMinRows: 200, batchSize: 500 }) }));

  it("builds the HNSW index in optimize() only from hnswMinRows on", async () => {
    const store = new PgvectorStore(db, { hnswMinRows: 100 });
    const name = fresh();
    const { collection: c } = await store.ensure(name, 16);
    const index = async (): Promise<number> =>
      (await db.query("SELECT 1 FROM pg_indexes WHERE indexname = $1", [`vec_${name}_hnsw`])).rows.length;
    const vectors = makeVectors(150, 16, 5);
    await c.upsert(vectors.slice(0, 50).map((vector, i) => ({ id: `a${i}`, vector, root: "r", path: "a.ts" })));
    await c.optimize();
    expect(await index()).toBe(0); // 50 rows: exact scans
    await c.upsert(vectors.slice(50).map((vector, i) => ({ id: `b${i}`, vector, root: "r", path: "b.ts" })));
    await c.optimize();
    expect(await index()).toBe(1);
    const [top] = await c.query(vectors[60]!, { limit: 1 });
    expect(top).toMatchObject({ id: "b10" });
    expect(top!.score).toBeCloseTo(1, 5);
    // A store opened later (another replica, a restart) sees the index.
    const again = await new PgvectorStore(db).ensure(name, 16);
    expect((await again.collection.query(vectors[60]!, { limit: 1 }))[0]!.id).toBe("b10");
  });

  it("stores 2001..4000 dimensions as halfvec (HNSW's vector limit is 2000)", async () => {
    const store = new PgvectorStore(db);
    const name = fresh();
    const { collection: c } = await store.ensure(name, 3072);
    const type = await db.query<{ t: string }>(
      "SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = to_regclass($1) AND attname = 'embedding'",
      [`vec_${name}`],
    );
    expect(type.rows[0]!.t).toBe("halfvec(3072)");
    const [a, b] = makeVectors(2, 3072, 11);
    await c.upsert([
      { id: "a", vector: a!, root: "r", path: "a.ts" },
      { id: "b", vector: b!, root: "r", path: "b.ts" },
    ]);
    const hits = await c.query(a!, { limit: 2 });
    expect(hits[0]!.id).toBe("a");
    expect(hits[0]!.score).toBeCloseTo(1, 2); // fp16 storage
    expect(hits[1]!.score).toBeCloseTo(cosine(a!, b!), 2);
  });

  it("says what to do when the database has no pgvector", async () => {
    const without = {
      kind: "postgres",
      vector: "missing",
      health: async () => ({
        ok: true,
        kind: "postgres",
        latencyMs: 1,
        vector: "missing",
        detail: "pgvector is not installed",
      }),
    } as unknown as Database;
    const err = await rejection(new PgvectorStore(without).ensure("chunks", 768));
    expect(err).toMatchObject({ kind: "failed_precondition", code: "pgvector_missing" });
    expect(err.message).toContain("QDRANT_URL");
    expect(err.message).toContain("pgvector is not installed");
  });
});

describe.skipIf(!TEST_DATABASE_URL)("pgvector store on the Postgres server (TEST_DATABASE_URL)", () => {
  it("fails with failed_precondition naming the fix when the server lacks pgvector", async () => {
    const { url, drop } = await createScratchDatabase();
    const db = await openDatabase({ dataDir: "", databaseUrl: url, connectRetryMs: 0, poolMax: 2 });
    try {
      const store = new PgvectorStore(db);
      if (db.vector === "pgvector") {
        // A server with pgvector: the store simply works.
        const { collection } = await store.ensure("server_check", 3);
        await collection.upsert([{ id: "a", vector: [1, 0, 0], root: "r", path: "a" }]);
        expect((await collection.query([1, 0, 0], { limit: 1 }))[0]!.score).toBeCloseTo(1, 5);
        return;
      }
      const err = await rejection(store.ensure("chunks", 768));
      expect(err.kind).toBe("failed_precondition");
      expect(err.message).toContain("QDRANT_URL");
      expect(err.message).toMatch(/postgresql-\d+-pgvector/);
    } finally {
      await db.close();
      await drop();
    }
  });
});

describeWithQdrantSpec("Qdrant store (through the spec-validating double)", () => {
  let double: QdrantDouble;
  beforeAll(async () => {
    double = new QdrantDouble();
    await double.listen();
  });
  afterAll(() => double?.close());
  afterEach(() => {
    // Every request the store sent conformed to the spec, and so did every reply of the double.
    expect(double.violations).toEqual([]);
    expect(double.replyViolations).toEqual([]);
  });

  contract("qdrant", () => ({ store: new QdrantStore({ url: double.url, batchSize: 256 }) }));

  it("uses UUIDv5 point ids, keeps the chunk id and path prefixes in the payload, indexes root/path", async () => {
    const store = new QdrantStore({ url: double.url });
    const name = fresh();
    const { collection } = await store.ensure(name, 3);
    await collection.upsert([
      { id: "src/a.ts#L1-9", vector: [1, 0, 0], root: "r", path: "src/a.ts", payload: { n: 1 } },
    ]);
    const stored = double.collections.get(name)!;
    const id = pointIdFor("src/a.ts#L1-9");
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(pointIdFor("src/a.ts#L1-9")).toBe(id);
    expect(stored.points.get(`u:${id}`)!.payload).toEqual({
      chunk_id: "src/a.ts#L1-9",
      root: "r",
      path: "src/a.ts",
      path_prefixes: ["src", "src/a.ts"],
      data: { n: 1 },
    });
    expect(Object.fromEntries(stored.payloadSchema)).toEqual({
      root: "keyword",
      path: "keyword",
      path_prefixes: "keyword",
    });
    expect(pathPrefixes("a/b/c.ts")).toEqual(["a", "a/b", "a/b/c.ts"]);
    await collection.query([1, 0, 0], { limit: 1 });
    expect(double.requests.some((r) => r.path === `/collections/${name}/points/query`)).toBe(true);
    expect(double.requests.some((r) => r.path.endsWith("/points/search"))).toBe(false); // removed in 1.19
  });

  it("the double rejects requests the spec forbids, as Qdrant does (400 and a recorded violation)", async () => {
    const name = fresh();
    await new QdrantStore({ url: double.url }).ensure(name, 3);
    const send = (method: string, path: string, body: unknown): Promise<Response> =>
      fetch(`${double.url}${path}`, {
        method,
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify(body),
      });
    const bad = [
      await send("PUT", `/collections/${name}/points?wait=true`, { points: [{ id: "chunk-1", vector: [1, 0, 0] }] }),
      await send("PUT", `/collections/${fresh()}`, { vectors: { size: 3, distance: "cosine" } }),
      await send("POST", `/collections/${name}/points/query`, { query: [1, 0, 0], limit: -1 }),
      await send("PUT", `/collections/${name}/points?wait=maybe`, { points: [] }),
    ];
    expect(bad.map((r) => r.status)).toEqual([400, 400, 400, 400]);
    expect((await bad[0]!.json()) as unknown).toMatchObject({
      status: { error: expect.stringContaining("/points/0/id") },
    });
    expect(double.violations.map((v) => v.operation)).toEqual([
      "upsert_points",
      "create_collection",
      "query_points",
      "upsert_points",
    ]);
    double.violations.length = 0; // deliberate ones: keep afterEach's check for the store's own requests
  });

  it("reports an unreachable Qdrant as unavailable", async () => {
    const store = new QdrantStore({ url: "http://127.0.0.1:1", timeoutMs: 2_000 });
    const err = await rejection(store.ensure(fresh(), 3));
    expect(err.kind).toBe("unavailable");
    expect(err.message).toContain("http://127.0.0.1:1");
  });
});
