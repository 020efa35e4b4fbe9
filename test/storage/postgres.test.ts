import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openDatabase, type Database } from "../../src/storage/database.js";
import { loadMigrations } from "../../src/storage/migrations.js";
import { redactUrl } from "../../src/storage/postgres-database.js";
import { TEST_DATABASE_URL, createScratchDatabase } from "./helpers.js";

describe.skipIf(!TEST_DATABASE_URL)("Postgres server (TEST_DATABASE_URL)", () => {
  let url: string;
  let drop: () => Promise<void>;
  beforeAll(async () => {
    ({ url, drop } = await createScratchDatabase());
  });
  afterAll(() => drop?.());

  it("three replicas starting at once apply each migration exactly once", async () => {
    const ids = loadMigrations().map((m) => m.id);
    const dbs = await Promise.all(
      [1, 2, 3].map(() => openDatabase({ dataDir: "", databaseUrl: url, connectRetryMs: 0, poolMax: 2 })),
    );
    try {
      const applied = dbs.flatMap((d) => d.startup.migrationsApplied).sort();
      expect(applied).toEqual(ids); // each id once, across all three
      const r = await dbs[0]!.query<{ version: number; n: number }>(
        "SELECT version, count(*) AS n FROM schema_migrations GROUP BY version ORDER BY version",
      );
      expect(r.rows).toEqual(loadMigrations().map((m) => ({ version: m.version, n: 1 })));
      for (const d of dbs) expect(d.startup).toMatchObject({ kind: "postgres", source: "server" });
    } finally {
      await Promise.all(dbs.map((d) => d.close()));
    }
    // A later start finds everything applied.
    const again = await openDatabase({ dataDir: "", databaseUrl: url, connectRetryMs: 0 });
    expect(again.startup.migrationsApplied).toEqual([]);
    await again.close();
  });

  it("opens without pgvector and says what to do in health", async () => {
    const db: Database = await openDatabase({ dataDir: "", databaseUrl: url, connectRetryMs: 0 });
    try {
      const available = await db.query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'");
      if (available.rowCount > 0) {
        expect(db.vector).toBe("pgvector"); // a server with pgvector: nothing to advise
        return;
      }
      expect(db.vector).toBe("missing");
      const h = await db.health();
      expect(h).toMatchObject({ ok: true, kind: "postgres", vector: "missing" });
      const major = (
        await db.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")
      ).rows[0]!.v.slice(0, 2);
      expect(h.detail).toContain(`postgresql-${major}-pgvector`);
      expect(h.detail).toContain("QDRANT_URL");
    } finally {
      await db.close();
    }
  });

  it("fails fast with the URL redacted when the server is unreachable", async () => {
    const bad = "postgresql://agent:s3cret@127.0.0.1:1/nope";
    const err = await openDatabase({ dataDir: "", databaseUrl: bad, connectRetryMs: 0 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(
      /cannot connect to Postgres at postgresql:\/\/agent:\*\*\*@127\.0\.0\.1:1\/nope/,
    );
    expect((err as Error).message).not.toContain("s3cret");
    expect(redactUrl("postgres://u@h/db")).toBe("postgres://u@h/db");
  });

  it("health reports a closed pool as not ok instead of throwing", async () => {
    const db = await openDatabase({ dataDir: "", databaseUrl: url, connectRetryMs: 0 });
    await db.close();
    await db.close(); // idempotent
    expect(await db.health()).toMatchObject({ ok: false, kind: "postgres" });
  });
});
