/**
 * The storage layer's public face: one Postgres dialect ($1 parameters) over either embedded PGlite
 * (default, `<dataDir>/db`) or a Postgres server (`DATABASE_URL`). See docs/storage.md.
 */
import path from "node:path";
import type { Logger } from "pino";
import { runMigrations, type Migration } from "./migrations.js";

export interface QueryResult<T> {
  rows: T[];
  /** Rows returned (SELECT) or affected (INSERT/UPDATE/DELETE); 0 for DDL. */
  rowCount: number;
}

export interface Queryable {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<T>>;
}

/**
 * The handle a `transaction` callback receives. It is also a plain `Queryable`, so helpers written
 * against `Queryable` work both inside and outside a transaction. Using it after the callback has
 * settled throws.
 */
export interface Transaction extends Queryable {
  /** Multi-statement script without parameters, inside the transaction. */
  exec(sql: string): Promise<void>;
}

export type VectorSupport = "pgvector" | "missing";

export interface DatabaseHealth {
  ok: boolean;
  kind: string;
  latencyMs: number;
  detail?: string;
  vector: VectorSupport;
}

/** How this handle came to be; logged at startup and asserted on by tests. */
export interface StartupInfo {
  kind: "pglite" | "postgres";
  /** Data dir, ':memory:', or the server URL with its password redacted. */
  location: string;
  /**
   * existing: an initialised PGlite dir was reopened; template: a fresh PGlite database was restored from
   * the cached template; initdb: no usable template existed, so one was initialised (and cached) first;
   * server: a Postgres server.
   */
  source: "existing" | "template" | "initdb" | "server";
  /** The template tarball restored from or written, when one was involved. */
  templateFile?: string;
  /** True when this start wrote the template to the cache. */
  templateWritten?: boolean;
  openMs: number;
  migrationsMs: number;
  /** Migrations this start applied, as `NNNN_name`. */
  migrationsApplied: string[];
}

export interface Database extends Queryable {
  readonly kind: "pglite" | "postgres";
  /** Whether vector columns and operators are usable in this database (see health().detail when missing). */
  readonly vector: VectorSupport;
  readonly startup: StartupInfo;
  /** Multi-statement script, no parameters. */
  exec(sql: string): Promise<void>;
  /**
   * Runs `fn` in one transaction: COMMIT when it resolves, ROLLBACK when it throws. Use only `tx` inside
   * `fn`: calling this database's query/exec/transaction from inside the callback throws (on PGlite,
   * which has a single connection, it would deadlock; the rule is enforced on both engines).
   */
  transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T>;
  /** Never throws; times out after 5 s. */
  health(): Promise<DatabaseHealth>;
  /** Idempotent. Releases the PGlite directory lock or ends the Postgres pool. */
  close(): Promise<void>;
}

export interface OpenDatabaseOptions {
  /** DATA_DIR: PGlite lives in `<dataDir>/db` (ignored with `databaseUrl` or `memory`). */
  dataDir: string;
  /** DATABASE_URL: use this Postgres server instead of PGlite. */
  databaseUrl?: string;
  logger?: Logger;
  /** In-memory PGlite restored from the template (tests). */
  memory?: boolean;
  /** Template cache directory; defaults to AGENTGATE_CACHE_DIR, then node_modules/.cache/agentgate. */
  cacheDir?: string;
  /** Migrations to apply instead of src/storage/migrations/*.sql (tests). */
  migrations?: Migration[];
  /** Postgres only: keep retrying a refused connection this long at startup (default 10 000 ms). */
  connectRetryMs?: number;
  /** Postgres only: pool size (default 10). */
  poolMax?: number;
}

/** Opens the configured database and applies pending migrations before returning. */
export async function openDatabase(opts: OpenDatabaseOptions): Promise<Database> {
  const logger = opts.logger?.child({ component: "storage" });
  const started = performance.now();
  let db: Database & { setMigrationInfo(ms: number, applied: string[]): void };
  if (opts.databaseUrl) {
    const { openPostgresDatabase } = await import("./postgres-database.js");
    db = await openPostgresDatabase({
      url: opts.databaseUrl,
      logger,
      connectRetryMs: opts.connectRetryMs,
      poolMax: opts.poolMax,
    });
  } else {
    const { openPgliteDatabase } = await import("./pglite-database.js");
    db = await openPgliteDatabase({
      dataDir: opts.memory ? undefined : path.resolve(opts.dataDir),
      cacheDir: opts.cacheDir,
      logger,
    });
  }
  const migStart = performance.now();
  try {
    const result = await runMigrations(db, { migrations: opts.migrations, logger });
    db.setMigrationInfo(
      performance.now() - migStart,
      result.applied.map((m) => m.id),
    );
  } catch (err) {
    await db.close().catch(() => undefined);
    throw err;
  }
  const s = db.startup;
  logger?.info(
    {
      kind: s.kind,
      location: s.location,
      source: s.source,
      templateFile: s.templateFile,
      openMs: Math.round(s.openMs),
      migrationsMs: Math.round(s.migrationsMs),
      migrationsApplied: s.migrationsApplied,
      vector: db.vector,
      totalMs: Math.round(performance.now() - started),
    },
    "database ready",
  );
  return db;
}

export { DatabaseLockedError } from "./file-lock.js";
export { MigrationChecksumError, type Migration } from "./migrations.js";
