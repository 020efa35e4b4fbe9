/**
 * A Postgres server through a `pg.Pool` (DATABASE_URL). Several agentgate replicas may share one
 * database: schema changes are serialised with an advisory lock (see migrations.ts).
 *
 * pgvector is optional: `CREATE EXTENSION IF NOT EXISTS vector` is attempted at startup; when it fails
 * (e.g. Debian bookworm packages no pgvector) the database still opens, `vector` is 'missing' and
 * health().detail says what to do.
 */
import pg from "pg";
import type { Logger } from "pino";
import { SCHEMA_LOCK_KEY, TxScope, errorMessage, newStartupInfo, timedHealth } from "./common.js";
import type { Database, DatabaseHealth, QueryResult, StartupInfo, Transaction, VectorSupport } from "./database.js";

// Align result types with PGlite's: int8 (e.g. count(*)) as a number when it is a safe integer, else a
// bigint; intervals as Postgres' text form. Everything else already matches (Date, objects for json,
// Uint8Array/Buffer for bytea).
function parseInt8(v: string): number | bigint {
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : BigInt(v);
}
function mapDeep(value: unknown, f: (s: string) => unknown): unknown {
  if (Array.isArray(value)) return value.map((x) => mapDeep(x, f));
  return value === null ? null : f(value as string);
}
const OID = { int8: 20, int8Array: 1016, textArray: 1009, interval: 1186, intervalArray: 1187 };
const getTypeParser = ((oid: number, format?: "text" | "binary") => {
  if (format !== "binary") {
    if (oid === OID.int8) return parseInt8;
    if (oid === OID.int8Array) {
      const base = pg.types.getTypeParser(OID.int8Array, "text") as (v: string) => unknown;
      return (v: string) => mapDeep(base(v), parseInt8);
    }
    if (oid === OID.interval) return (v: string) => v;
    if (oid === OID.intervalArray) return pg.types.getTypeParser(OID.textArray, "text");
  }
  return pg.types.getTypeParser(oid, format);
}) as pg.CustomTypesConfig["getTypeParser"];

function toResult<T>(r: pg.QueryResult): QueryResult<T> {
  return { rows: r.rows as T[], rowCount: r.rowCount ?? r.rows.length };
}

/** The URL with any password replaced, for logs and errors. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(unparseable DATABASE_URL)";
  }
}

export class PostgresDatabase implements Database {
  readonly kind = "postgres" as const;
  private readonly scope = new TxScope();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly pool: pg.Pool,
    readonly startup: StartupInfo,
    private vectorState: { support: VectorSupport; detail?: string; serverVersion: string },
  ) {}

  get vector(): VectorSupport {
    return this.vectorState.support;
  }

  /** The underlying pool, for adapters that need it. */
  get pgPool(): pg.Pool {
    return this.pool;
  }

  async query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<T>> {
    this.scope.assertOutside("query");
    return toResult<T>(await this.pool.query(sql, params));
  }

  async exec(sql: string): Promise<void> {
    this.scope.assertOutside("exec");
    await this.pool.query(sql); // no parameters: simple protocol, several statements allowed
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.scope.assertOutside("transaction");
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query("BEGIN");
      const result = await this.scope.run(
        {
          query: async <R>(sql: string, params?: unknown[]) => toResult<R>(await client.query(sql, params)),
          exec: async (sql: string) => {
            await client.query(sql);
          },
        },
        fn,
      );
      await client.query("COMMIT");
      return result;
    } catch (err) {
      try {
        await client.query("ROLLBACK");
      } catch (rollbackErr) {
        broken = rollbackErr as Error; // connection unusable: destroy it rather than return it
      }
      throw err;
    } finally {
      client.release(broken);
    }
  }

  health(): Promise<DatabaseHealth> {
    return timedHealth(
      "postgres",
      async () => {
        if (this.closing) throw new Error("database closed");
        await this.pool.query("SELECT 1");
        if (this.vectorState.support === "missing") {
          // An operator may have run CREATE EXTENSION since startup.
          const r = await this.pool.query("SELECT 1 FROM pg_extension WHERE extname = 'vector'");
          if (r.rows.length > 0) this.vectorState = { ...this.vectorState, support: "pgvector", detail: undefined };
        }
        return {
          ok: true,
          detail: this.vectorState.detail ?? `PostgreSQL ${this.vectorState.serverVersion}`,
          vector: this.vectorState.support,
        };
      },
      this.vectorState.support,
    );
  }

  close(): Promise<void> {
    this.closing ??= this.pool.end();
    return this.closing;
  }

  /** @internal used by openDatabase */
  setMigrationInfo(ms: number, applied: string[]): void {
    this.startup.migrationsMs = ms;
    this.startup.migrationsApplied = applied;
  }
}

export interface OpenPostgresOptions {
  url: string;
  logger?: Logger;
  /** Keep retrying refused connections / "starting up" this long (default 10 s). */
  connectRetryMs?: number;
  poolMax?: number;
}

export async function openPostgresDatabase(opts: OpenPostgresOptions): Promise<PostgresDatabase> {
  const started = performance.now();
  const location = redactUrl(opts.url);
  const { logger } = opts;
  const pool = new pg.Pool({
    connectionString: opts.url,
    max: opts.poolMax ?? 10,
    application_name: "agentgate",
    connectionTimeoutMillis: 10_000,
    idleTimeoutMillis: 30_000,
    types: { getTypeParser },
  });
  // An idle client losing its connection emits here; without a listener the process would crash.
  pool.on("error", (err) => logger?.warn({ err: err.message }, "idle Postgres connection failed"));
  try {
    const serverVersion = await connectWithRetry(pool, location, opts.connectRetryMs ?? 10_000, logger);
    const vectorState = await enableVector(pool, serverVersion);
    if (vectorState.support === "missing") logger?.warn({ detail: vectorState.detail }, "pgvector unavailable");
    const startup = newStartupInfo({
      kind: "postgres",
      location,
      source: "server",
      openMs: performance.now() - started,
    });
    return new PostgresDatabase(pool, startup, { ...vectorState, serverVersion });
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw err;
  }
}

const RETRYABLE = new Set(["ECONNREFUSED", "ECONNRESET", "EAI_AGAIN", "57P03" /* cannot_connect_now */]);

async function connectWithRetry(pool: pg.Pool, location: string, retryMs: number, logger?: Logger): Promise<string> {
  const deadline = Date.now() + retryMs;
  for (let delay = 200; ; delay = Math.min(delay * 2, 2_000)) {
    try {
      const r = await pool.query<{ v: string }>("SELECT current_setting('server_version') AS v");
      return r.rows[0]!.v;
    } catch (err) {
      const code = (err as { code?: string }).code ?? "";
      if (!RETRYABLE.has(code) || Date.now() + delay > deadline) {
        throw new Error(`cannot connect to Postgres at ${location}: ${errorMessage(err)}`, { cause: err });
      }
      logger?.info({ location, code, retryInMs: delay }, "Postgres not reachable yet; retrying");
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

async function enableVector(
  pool: pg.Pool,
  serverVersion: string,
): Promise<{ support: VectorSupport; detail?: string }> {
  const client = await pool.connect();
  let failure: unknown;
  try {
    // Serialised with migrations: concurrent CREATE EXTENSION IF NOT EXISTS can still collide.
    await client.query("BEGIN");
    await client.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`);
    await client.query("CREATE EXTENSION IF NOT EXISTS vector");
    await client.query("COMMIT");
    return { support: "pgvector" };
  } catch (err) {
    failure = err;
    await client.query("ROLLBACK").catch(() => undefined);
  } finally {
    client.release();
  }
  const major = serverVersion.split(/[.\s]/)[0] ?? "";
  const available = await pool
    .query("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    .then((r) => r.rows.length > 0)
    .catch(() => false);
  const why = errorMessage(failure);
  const detail = available
    ? `pgvector is installed on the server but CREATE EXTENSION vector failed (${why}): run ` +
      `"CREATE EXTENSION vector;" in this database as a superuser and restart agentgate, or set QDRANT_URL ` +
      `to keep vectors in Qdrant`
    : `pgvector is not installed on this PostgreSQL ${major} server (${why}): install the ` +
      `postgresql-${major}-pgvector package (Debian bookworm has none; use the PGDG apt repository or the ` +
      `pgvector/pgvector image) and restart agentgate, or set QDRANT_URL to keep vectors in Qdrant`;
  return { support: "missing", detail };
}
