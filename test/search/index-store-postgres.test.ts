// Two replicas on one Postgres server re-index the same file at the same moment (both watch the same
// root): every replacement must succeed and leave exactly one version of the file's rows.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { IndexStore, type IndexedChunk } from "../../src/search/index/index-store.js";
import { openDatabase, type Database } from "../../src/storage/database.js";
import { TEST_DATABASE_URL, createScratchDatabase } from "../storage/helpers.js";

describe.skipIf(!TEST_DATABASE_URL)("the search index shared by replicas (TEST_DATABASE_URL)", () => {
  let drop: () => Promise<void>;
  let replicas: Database[] = [];

  beforeAll(async () => {
    const scratch = await createScratchDatabase();
    drop = scratch.drop;
    // Each replica has its own pool; the first applies the migrations.
    for (let i = 0; i < 2; i++)
      replicas.push(await openDatabase({ dataDir: "", databaseUrl: scratch.url, connectRetryMs: 0, poolMax: 4 }));
  });

  afterAll(async () => {
    for (const db of replicas) await db.close();
    replicas = [];
    await drop?.();
  });

  it("serialises concurrent replacements of one file", async () => {
    const stores = replicas.map((db) => new IndexStore(db));
    const version = (tag: string, n: number) => {
      const chunks: IndexedChunk[] = Array.from({ length: n }, (_, i) => ({
        id: `${tag}-${i}`,
        startLine: i * 10 + 1,
        endLine: i * 10 + 10,
        symbol: "",
        content: `chunk ${i} of ${tag}`,
      }));
      return stores[tag.length % 2]!.replaceFile(
        {
          root: "/repo",
          path: "src/shared.ts",
          sha256: tag.padEnd(64, "0"),
          sizeBytes: n,
          language: "typescript",
          error: "",
        },
        chunks,
        [],
      );
    };
    // 40 writers, alternating replicas, each with a different number of chunks.
    const results = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => version("v".repeat((i % 2) + 1) + i, (i % 5) + 1)),
    );
    expect(
      results.filter((r) => r.status === "rejected").map((r) => String((r as PromiseRejectedResult).reason)),
    ).toEqual([]);
    const files = await replicas[0]!.query<{ sha256: string; chunk_count: number }>(
      `SELECT sha256, chunk_count FROM search_files WHERE root = '/repo' AND path = 'src/shared.ts'`,
    );
    expect(files.rows).toHaveLength(1);
    const chunks = await replicas[0]!.query<{ id: string }>(
      `SELECT id FROM search_chunks WHERE root = '/repo' AND path = 'src/shared.ts'`,
    );
    // The chunks are exactly those of the version the files row names.
    const tag = files.rows[0]!.sha256.replace(/0+$/, "");
    expect(chunks.rows.map((r) => r.id).sort()).toEqual(
      Array.from({ length: files.rows[0]!.chunk_count }, (_, i) => `${tag}-${i}`).sort(),
    );
  });
});
