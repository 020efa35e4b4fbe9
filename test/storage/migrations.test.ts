import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Database } from "../../src/storage/database.js";
import {
  MigrationChecksumError,
  defineMigration,
  loadMigrations,
  runMigrations,
} from "../../src/storage/migrations.js";
import { openTestDatabase } from "../support/test-database.js";

describe("migrations", () => {
  let db: Database;
  beforeAll(async () => {
    db = await openTestDatabase();
  });
  afterAll(() => db.close());

  it("loads NNNN_name.sql files in order with stable checksums", () => {
    const ms = loadMigrations();
    expect(ms.map((m) => m.id).slice(0, 2)).toEqual(["0001_init", "0002_instances"]);
    expect(ms.map((m) => m.version)).toEqual([...ms.map((m) => m.version)].sort((a, b) => a - b));
    expect(defineMigration(1, "x", "SELECT 1;\r\n").checksum).toBe(defineMigration(1, "x", "SELECT 1;\n").checksum);
  });

  it("is idempotent: a second run applies nothing", async () => {
    const r = await runMigrations(db);
    expect(r.applied).toEqual([]);
    expect(r.alreadyApplied).toBe(loadMigrations().length);
  });

  it("applies new migrations once each, in order", async () => {
    const extra = [
      ...loadMigrations(),
      defineMigration(9001, "widgets", "CREATE TABLE widgets (id int PRIMARY KEY); INSERT INTO widgets VALUES (1);"),
      defineMigration(9002, "widgets_more", "INSERT INTO widgets VALUES (2);"),
    ];
    const r = await runMigrations(db, { migrations: extra });
    expect(r.applied.map((m) => m.id)).toEqual(["9001_widgets", "9002_widgets_more"]);
    expect((await runMigrations(db, { migrations: extra })).applied).toEqual([]);
    expect((await db.query("SELECT id FROM widgets ORDER BY id")).rows).toEqual([{ id: 1 }, { id: 2 }]);
  });

  it("fails on an edited applied migration, naming it", async () => {
    const edited = loadMigrations().map((m) =>
      m.version === 2 ? defineMigration(2, m.name, `${m.sql}\n-- edited\n`, m.file) : m,
    );
    const err = await runMigrations(db, { migrations: edited }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MigrationChecksumError);
    expect((err as Error).message).toMatch(/Migration 0002_instances was applied with checksum [0-9a-f]{12}/);
    expect((err as Error).message).toContain("0002_instances.sql");
  });

  it("rolls a failing migration back entirely and does not record it", async () => {
    const bad = [
      ...loadMigrations(),
      defineMigration(9100, "half", "CREATE TABLE half_done (id int); SELECT no_such_function();"),
    ];
    await expect(runMigrations(db, { migrations: bad })).rejects.toThrow(
      /migration 9100_half failed: .*no_such_function/,
    );
    const t = await db.query<{ t: string | null }>("SELECT to_regclass('half_done')::text AS t");
    expect(t.rows[0]!.t).toBeNull();
    expect((await db.query("SELECT 1 FROM schema_migrations WHERE version = 9100")).rowCount).toBe(0);
  });

  it("rejects duplicate versions", async () => {
    await expect(
      runMigrations(db, { migrations: [defineMigration(1, "a", ""), defineMigration(1, "b", "")] }),
    ).rejects.toThrow(/share version 1/);
  });
});
