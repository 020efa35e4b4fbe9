/**
 * Schema migrations: `migrations/NNNN_name.sql`, applied in order, once each, every one in its own
 * transaction, recorded in `schema_migrations(version, name, checksum, applied_at)` (created by 0001).
 *
 * Several replicas starting at once against one Postgres: each migration transaction first takes
 * `pg_advisory_xact_lock(SCHEMA_LOCK_KEY)` and re-reads schema_migrations, so exactly one replica applies
 * it and the others see it recorded. (On PGlite the lock is trivially granted.)
 *
 * Rules for migration files: valid on PostgreSQL 15+ and PGlite (Postgres 18); no CREATE INDEX
 * CONCURRENTLY or other statements that refuse to run in a transaction; nothing that needs pgvector
 * (a Postgres server may lack it: vector tables belong to the vector store, which checks db.vector);
 * never edit an applied file (its checksum is verified on every start): add a new one.
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { Logger } from "pino";
import { SCHEMA_LOCK_KEY } from "./common.js";
import type { Database, Queryable } from "./database.js";

export interface Migration {
  version: number;
  name: string;
  /** `NNNN_name` */
  id: string;
  sql: string;
  /** sha256 (hex) of the SQL with line endings normalised to LF. */
  checksum: string;
  file?: string;
}

export class MigrationChecksumError extends Error {
  readonly code = "EMIGRATIONCHECKSUM";
  constructor(
    readonly migration: Migration,
    readonly appliedChecksum: string,
  ) {
    super(
      `Migration ${migration.id} was applied with checksum ${appliedChecksum.slice(0, 12)}… but ` +
        `${migration.file ?? "its SQL"} now has ${migration.checksum.slice(0, 12)}…: applied migrations ` +
        `must not be edited; restore the file and add a new migration instead.`,
    );
    this.name = "MigrationChecksumError";
  }
}

export const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

const FILE_RE = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export function defineMigration(version: number, name: string, sql: string, file?: string): Migration {
  const normalised = sql.replace(/\r\n/g, "\n");
  return {
    version,
    name,
    id: `${String(version).padStart(4, "0")}_${name}`,
    sql: normalised,
    checksum: createHash("sha256").update(normalised).digest("hex"),
    file,
  };
}

/** Reads `NNNN_name.sql` files (other files are ignored), ordered by version. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations: Migration[] = [];
  for (const entry of fs.readdirSync(dir).sort()) {
    const m = FILE_RE.exec(entry);
    if (!m) continue;
    const file = path.join(dir, entry);
    migrations.push(defineMigration(Number(m[1]), m[2]!, fs.readFileSync(file, "utf8"), file));
  }
  validate(migrations);
  return migrations;
}

function validate(migrations: Migration[]): void {
  const seen = new Set<number>();
  let last = 0;
  for (const m of migrations) {
    if (!Number.isInteger(m.version) || m.version < 1) throw new Error(`bad migration version in ${m.id}`);
    if (seen.has(m.version)) throw new Error(`two migrations share version ${m.version} (${m.id})`);
    if (m.version < last) throw new Error(`migrations out of order at ${m.id}`);
    seen.add(m.version);
    last = m.version;
  }
}

interface AppliedRow {
  version: number;
  name: string;
  checksum: string;
}

async function readApplied(db: Queryable): Promise<Map<number, AppliedRow>> {
  // Read pg_class with the statement's snapshot rather than to_regclass(): to_regclass takes no lock, so
  // in a transaction that began before another replica committed 0001 it can still answer from a stale
  // (negative) catalog cache entry, and this replica would apply 0001 a second time.
  const present = await db.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace ns ON ns.oid = c.relnamespace
      WHERE c.relname = 'schema_migrations' AND ns.nspname = current_schema()`,
  );
  if (!present.rows[0]?.n) return new Map();
  const r = await db.query<AppliedRow>("SELECT version, name, checksum FROM schema_migrations ORDER BY version");
  return new Map(r.rows.map((row) => [Number(row.version), row]));
}

export interface MigrationResult {
  applied: Migration[];
  alreadyApplied: number;
}

/** Applies pending migrations; throws MigrationChecksumError when an applied one was edited. */
export async function runMigrations(
  db: Database,
  opts: { migrations?: Migration[]; logger?: Logger } = {},
): Promise<MigrationResult> {
  const migrations = opts.migrations ?? loadMigrations();
  validate(migrations);
  const { logger } = opts;

  // Fast path, no lock: everything already applied (the usual restart).
  const before = await readApplied(db);
  for (const m of migrations) {
    const row = before.get(m.version);
    if (row && row.checksum !== m.checksum) throw new MigrationChecksumError(m, row.checksum);
  }
  const known = new Set(migrations.map((m) => m.version));
  const unknown = [...before.values()].filter((r) => !known.has(Number(r.version)));
  if (unknown.length > 0) {
    // A newer agentgate (e.g. mid rolling upgrade) applied these; carry on, but say so.
    logger?.warn(
      { versions: unknown.map((r) => `${r.version}_${r.name}`) },
      "database has migrations this build does not know",
    );
  }

  const applied: Migration[] = [];
  for (const m of migrations) {
    if (before.has(m.version)) continue;
    const started = performance.now();
    const did = await db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`);
      const now = await readApplied(tx);
      const row = now.get(m.version);
      if (row) {
        // Another replica applied it while we waited for the lock.
        if (row.checksum !== m.checksum) throw new MigrationChecksumError(m, row.checksum);
        return false;
      }
      try {
        await tx.exec(m.sql);
      } catch (err) {
        throw new Error(`migration ${m.id} failed: ${(err as Error).message}`, { cause: err });
      }
      await tx.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
        m.version,
        m.name,
        m.checksum,
      ]);
      return true;
    });
    if (did) {
      applied.push(m);
      logger?.info({ migration: m.id, ms: Math.round(performance.now() - started) }, "migration applied");
    }
  }
  return { applied, alreadyApplied: migrations.length - applied.length };
}
