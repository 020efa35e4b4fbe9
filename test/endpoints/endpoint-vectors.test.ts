/**
 * EndpointVectors over both vector stores: pgvector (PGlite) and Qdrant (the spec-validating double).
 * The cache lookup must find only the endpoint of the exact route (route keys contain `{}`, and one key
 * can be a prefix of another), rank by similarity, and forget deleted endpoints.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { EndpointVectors } from "../../src/endpoints/endpoint-vectors.js";
import { OllamaEmbedder } from "../../src/search/embeddings.js";
import { VectorTargetProvider } from "../../src/search/index/vector-target.js";
import { PgvectorStore } from "../../src/search/vectors/pgvector-store.js";
import { QdrantStore } from "../../src/search/vectors/qdrant-store.js";
import type { VectorStore } from "../../src/search/vectors/vector-store.js";
import type { Database } from "../../src/storage/database.js";
import { startOllamaDouble, type OllamaDouble } from "../doubles/ollama-double.js";
import { QdrantDouble, describeWithQdrantSpec } from "../doubles/qdrant-double.js";
import { openTestDatabase } from "../support/test-database.js";

let ollama: OllamaDouble;
beforeAll(async () => {
  ollama = await startOllamaDouble();
});
afterAll(() => ollama?.close());

function contract(makeStore: () => VectorStore) {
  let vectors: EndpointVectors;
  const embed = async (text: string) => {
    const e = await vectors.embed(text, "document");
    if (!e.ok) throw new Error(e.reason);
    return e.vector;
  };

  beforeAll(() => {
    const embedder = new OllamaEmbedder({ baseUrl: ollama.url, model: "nomic-embed-text" });
    vectors = new EndpointVectors(
      new VectorTargetProvider({ embedder, store: makeStore(), collectionPrefix: "endpoints" }),
    );
  });

  it("finds the endpoint of the exact route only, with its similarity", async () => {
    const endpoints = [
      { id: "ept_a", method: "POST", pathKey: "/text/truncate", d: "Truncate a text to a width" },
      { id: "ept_b", method: "POST", pathKey: "/text/truncate/{}", d: "Truncate a text to a width" },
      { id: "ept_c", method: "GET", pathKey: "/text/truncate", d: "Truncate a text to a width" },
      { id: "ept_d", method: "POST", pathKey: "/images/{}/thumbnail", d: "Make a thumbnail of an image" },
    ];
    for (const e of endpoints) await vectors.upsert(e, await embed(e.d));
    const q = await embed("Truncate the text to a width");
    const hit = await vectors.onRoute(q, "POST", "/text/truncate");
    expect(hit?.id).toBe("ept_a");
    expect(hit!.similarity).toBeGreaterThan(0.8);
    expect(hit!.similarity).toBeLessThanOrEqual(1);
    expect((await vectors.onRoute(q, "POST", "/images/{}/thumbnail"))?.id).toBe("ept_d");
    expect(await vectors.onRoute(q, "PUT", "/text/truncate")).toBeUndefined();
    expect(await vectors.onRoute(q, "POST", "/text")).toBeUndefined();
  });

  it("ranks the nearest endpoints of any route, filtered by method, and forgets deleted ones", async () => {
    const q = await embed("a thumbnail of an image");
    const all = await vectors.nearest(q, 10);
    expect(all[0]!.id).toBe("ept_d");
    expect(all.map((h) => h.similarity)).toEqual([...all.map((h) => h.similarity)].sort((a, b) => b - a));
    expect((await vectors.nearest(q, 10, "GET")).map((h) => h.id)).toEqual(["ept_c"]);
    await vectors.delete("ept_d");
    expect((await vectors.nearest(q, 10)).map((h) => h.id)).not.toContain("ept_d");
  });
}

describe("endpoint vectors on pgvector (PGlite)", () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(() => db?.close());
  contract(() => new PgvectorStore(db));
});

describeWithQdrantSpec("endpoint vectors on Qdrant (the spec-validating double)", () => {
  const double = new QdrantDouble();
  beforeAll(() => double.listen());
  afterAll(() => double.close());
  afterEach(() => {
    expect(double.violations).toEqual([]);
    expect(double.replyViolations).toEqual([]);
  });
  contract(() => new QdrantStore({ url: double.url }));
});
