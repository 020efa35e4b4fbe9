import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DatabaseLockedError, openDatabase, type Database } from "../../src/storage/database.js";
import { loadMigrations } from "../../src/storage/migrations.js";
import { openTestDatabase } from "../support/test-database.js";
import { tempDir } from "./helpers.js";

const allMigrations = loadMigrations().map((m) => m.id);

describe("PGlite in memory (openTestDatabase)", () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(() => db.close());

  it("applies every migration and records it", async () => {
    expect(db.kind).toBe("pglite");
    expect(db.startup.location).toBe(":memory:");
    expect(db.startup.migrationsApplied).toEqual(allMigrations);
    const r = await db.query<{ version: number; name: string; checksum: string }>(
      "SELECT version, name, checksum FROM schema_migrations ORDER BY version",
    );
    expect(r.rows.map((x) => `${String(x.version).padStart(4, "0")}_${x.name}`)).toEqual(allMigrations);
    expect(r.rows.every((x) => /^[0-9a-f]{64}$/.test(x.checksum))).toBe(true);
    const tables = await db.query<{ t: string }>(
      "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    );
    expect(tables.rows.map((x) => x.t)).toEqual([
      "agents",
      "codex_threads",
      "completion_artifacts",
      "endpoint_versions",
      "endpoints",
      "instances",
      "job_triggers",
      "jobs",
      "kv_settings",
      "schema_migrations",
      "search_chunks",
      "search_files",
      "search_symbols",
    ]);
  });

  it("has pgvector", async () => {
    expect(db.vector).toBe("pgvector");
    const r = await db.query<{ d: number }>("SELECT '[1,2,3]'::vector <=> '[1,2,4]'::vector AS d");
    expect(r.rows[0]!.d).toBeCloseTo(1 - 17 / Math.sqrt(14 * 21), 6);
    const h = await db.health();
    expect(h).toMatchObject({ ok: true, kind: "pglite", vector: "pgvector" });
    expect(h.latencyMs).toBeGreaterThanOrEqual(0);
  });
});

describe("PGlite on disk", () => {
  const tmp = tempDir();
  afterAll(() => tmp.cleanup());

  it("takes over a stale lock, refuses a second opener, keeps data across a restart", async () => {
    const dataDir = path.join(tmp.dir, "restart");
    const lockFile = path.join(dataDir, "db.lock");
    // A lock left by a process that died.
    fs.mkdirSync(dataDir, { recursive: true });
    const dead = spawnSync(process.execPath, ["-e", "0"]).pid!;
    fs.writeFileSync(lockFile, JSON.stringify({ pid: dead, hostname: os.hostname(), token: "dead", since: "x" }));

    const first = await openDatabase({ dataDir });
    expect(first.startup.source).toMatch(/^(template|initdb)$/);
    expect(first.startup.migrationsApplied).toEqual(allMigrations);
    expect(fs.existsSync(path.join(dataDir, "db", "PG_VERSION"))).toBe(true);
    expect(fs.existsSync(path.join(dataDir, "db.initialising"))).toBe(false);
    expect(JSON.parse(fs.readFileSync(lockFile, "utf8"))).toMatchObject({ pid: process.pid, hostname: os.hostname() });

    // While it is open, nobody else may open the directory.
    const err = await openDatabase({ dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseLockedError);
    expect((err as Error).message).toContain(`${path.join(dataDir, "db")} is in use`);
    expect((err as Error).message).toContain(`pid ${process.pid}`);

    await first.query("INSERT INTO kv_settings (key, value) VALUES ('k', $1)", [{ a: [1, 2] }]);
    await first.close();
    expect(fs.existsSync(lockFile)).toBe(false);

    const second = await openDatabase({ dataDir });
    try {
      expect(second.startup.source).toBe("existing");
      expect(second.startup.migrationsApplied).toEqual([]);
      const r = await second.query<{ value: unknown }>("SELECT value FROM kv_settings WHERE key = 'k'");
      expect(r.rows).toEqual([{ value: { a: [1, 2] } }]);
      expect((await second.query("SELECT '[1,0]'::vector <-> '[0,0]'::vector AS d")).rows).toEqual([{ d: 1 }]);
    } finally {
      await second.close();
    }
  });

  it("refuses a directory locked by another live process", async () => {
    const dataDir = path.join(tmp.dir, "other-process");
    fs.mkdirSync(dataDir, { recursive: true });
    const parent = process.ppid; // alive for the whole test
    fs.writeFileSync(
      path.join(dataDir, "db.lock"),
      JSON.stringify({ pid: parent, hostname: os.hostname(), token: "x", since: "earlier" }),
    );
    const err = await openDatabase({ dataDir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseLockedError);
    expect((err as Error).message).toContain(`${path.join(dataDir, "db")} is in use by another process (pid ${parent}`);
    expect(fs.existsSync(path.join(dataDir, "db"))).toBe(false);
  });

  it("restarts an interrupted initialisation and refuses a foreign directory", async () => {
    const dataDir = path.join(tmp.dir, "interrupted");
    fs.mkdirSync(path.join(dataDir, "db", "base"), { recursive: true });
    fs.writeFileSync(path.join(dataDir, "db", "half-written"), "x");
    fs.writeFileSync(path.join(dataDir, "db.initialising"), "1\n");
    const db = await openDatabase({ dataDir });
    await db.close();
    expect(fs.existsSync(path.join(dataDir, "db", "half-written"))).toBe(false);
    expect(fs.existsSync(path.join(dataDir, "db.initialising"))).toBe(false);

    const foreign = path.join(tmp.dir, "foreign");
    fs.mkdirSync(path.join(foreign, "db"), { recursive: true });
    fs.writeFileSync(path.join(foreign, "db", "precious.txt"), "keep me");
    await expect(openDatabase({ dataDir: foreign })).rejects.toThrow(/holds no Postgres cluster/);
    expect(fs.readFileSync(path.join(foreign, "db", "precious.txt"), "utf8")).toBe("keep me");
    expect(fs.existsSync(path.join(foreign, "db.lock"))).toBe(false);
  });
});
