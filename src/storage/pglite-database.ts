/**
 * Embedded Postgres (PGlite, WASM) with pgvector, in `<dataDir>/db` or in memory.
 *
 * Layout of DATA_DIR:
 *   db/               the Postgres cluster (PG_VERSION, base/, pg_wal/, ...)
 *   db.lock           who has it open (see file-lock.ts)
 *   db.initialising   present while a fresh cluster is being restored; a leftover means the restore was
 *                     interrupted, so db/ is discarded and restored again on the next open
 */
import fs from "node:fs";
import path from "node:path";
import { PGlite, type PGliteOptions } from "@electric-sql/pglite";
import { vector } from "@electric-sql/pglite-pgvector";
import type { Logger } from "pino";
import { TxScope, errorMessage, newStartupInfo, timedHealth } from "./common.js";
import type { Database, DatabaseHealth, QueryResult, StartupInfo, Transaction, VectorSupport } from "./database.js";
import { acquireDirLock, type DirLock } from "./file-lock.js";
import { ensureTemplate } from "./pglite-template.js";

type PG = PGlite;

interface PgliteResults {
  rows: unknown[];
  rowCount?: number;
  affectedRows?: number;
}

function toResult<T>(r: PgliteResults): QueryResult<T> {
  return { rows: r.rows as T[], rowCount: r.rowCount ?? r.affectedRows ?? r.rows.length };
}

export class PgliteDatabase implements Database {
  readonly kind = "pglite" as const;
  private readonly scope = new TxScope();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly pg: PG,
    readonly startup: StartupInfo,
    readonly vector: VectorSupport,
    private readonly vectorDetail: string | undefined,
    private readonly lock: DirLock | undefined,
  ) {}

  /** The underlying PGlite instance, for adapters that need it (e.g. a queue library). */
  get pglite(): PG {
    return this.pg;
  }

  async query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<QueryResult<T>> {
    this.scope.assertOutside("query");
    return toResult<T>(await this.pg.query<T>(sql, params as unknown[] | undefined));
  }

  async exec(sql: string): Promise<void> {
    this.scope.assertOutside("exec");
    await this.pg.exec(sql);
  }

  async transaction<T>(fn: (tx: Transaction) => Promise<T>): Promise<T> {
    this.scope.assertOutside("transaction");
    // PGlite's transaction holds its single connection for the whole callback, so transactions (and
    // any other query) are serialised; a throw rolls back.
    return this.pg.transaction((tx) =>
      this.scope.run(
        {
          query: async <R>(sql: string, params?: unknown[]) => toResult<R>(await tx.query<R>(sql, params)),
          exec: async (sql: string) => {
            await tx.exec(sql);
          },
        },
        fn,
      ),
    );
  }

  health(): Promise<DatabaseHealth> {
    return timedHealth(
      "pglite",
      async () => {
        if (this.closing) throw new Error("database closed");
        await this.pg.query("SELECT 1");
        return {
          ok: true,
          detail: this.vectorDetail ?? `PGlite ${this.startup.location}`,
          vector: this.vector,
        };
      },
      this.vector,
    );
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        if (!this.pg.closed) await this.pg.close();
      } finally {
        this.lock?.release();
      }
    })();
    return this.closing;
  }

  /** @internal used by openDatabase */
  setMigrationInfo(ms: number, applied: string[]): void {
    this.startup.migrationsMs = ms;
    this.startup.migrationsApplied = applied;
  }
}

export interface OpenPgliteOptions {
  /** Absolute DATA_DIR; undefined for an in-memory database. */
  dataDir?: string;
  cacheDir?: string;
  logger?: Logger;
}

export async function openPgliteDatabase(opts: OpenPgliteOptions): Promise<PgliteDatabase> {
  const started = performance.now();
  const { logger } = opts;
  if (!opts.dataDir) {
    const tpl = await ensureTemplate({ cacheDir: opts.cacheDir, logger });
    const pg = await PGlite.create({ loadDataDir: tarBlob(tpl.tar), extensions: { vector } });
    const startup = newStartupInfo({
      kind: "pglite",
      location: ":memory:",
      source: tpl.built ? "initdb" : "template",
      templateFile: tpl.file,
      templateWritten: tpl.written,
      openMs: 0,
    });
    return finish(pg, startup, undefined, started);
  }

  const root = opts.dataDir;
  const clusterDir = path.join(root, "db");
  const marker = path.join(root, "db.initialising");
  fs.mkdirSync(root, { recursive: true });
  const lock = acquireDirLock(path.join(root, "db.lock"), clusterDir, {
    onLost: (msg) => logger?.error({ dir: clusterDir }, msg),
  });
  let pg: PG | undefined;
  try {
    const state = inspectClusterDir(clusterDir, marker);
    let startup: StartupInfo;
    if (state === "existing") {
      pg = await createOrExplain(clusterDir, { dataDir: clusterDir, extensions: { vector } });
      startup = newStartupInfo({ kind: "pglite", location: root, source: "existing", openMs: 0 });
    } else {
      if (state === "incomplete") {
        logger?.warn(
          { dir: clusterDir },
          "previous initialisation of the PGlite directory was interrupted; starting it again",
        );
        fs.rmSync(clusterDir, { recursive: true, force: true });
      }
      fs.writeFileSync(marker, `${process.pid}\n`);
      const tpl = await ensureTemplate({ cacheDir: opts.cacheDir, logger });
      pg = await createOrExplain(clusterDir, {
        dataDir: clusterDir,
        loadDataDir: tarBlob(tpl.tar),
        extensions: { vector },
      });
      fs.rmSync(marker, { force: true });
      startup = newStartupInfo({
        kind: "pglite",
        location: root,
        source: tpl.built ? "initdb" : "template",
        templateFile: tpl.file,
        templateWritten: tpl.written,
        openMs: 0,
      });
    }
    return await finish(pg, startup, lock, started);
  } catch (err) {
    await pg?.close().catch(() => undefined);
    lock.release();
    throw err;
  }
}

async function finish(
  pg: PG,
  startup: StartupInfo,
  lock: DirLock | undefined,
  started: number,
): Promise<PgliteDatabase> {
  let support: VectorSupport = "pgvector";
  let detail: string | undefined;
  try {
    // Already present in template-made clusters; cheap no-op then.
    await pg.exec("CREATE EXTENSION IF NOT EXISTS vector");
  } catch (err) {
    support = "missing";
    detail = `pgvector could not be enabled in PGlite: ${errorMessage(err)}`;
  }
  startup.openMs = performance.now() - started;
  return new PgliteDatabase(pg, startup, support, detail, lock);
}

function inspectClusterDir(dir: string, marker: string): "fresh" | "existing" | "incomplete" {
  if (fs.existsSync(marker)) return "incomplete";
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return "fresh";
    throw err;
  }
  if (entries.length === 0) return "fresh";
  if (entries.includes("PG_VERSION")) return "existing";
  throw new Error(
    `${dir} is not empty but holds no Postgres cluster (no PG_VERSION); refusing to touch it. ` +
      `Move it away or point DATA_DIR elsewhere.`,
  );
}

async function createOrExplain(dir: string, options: PGliteOptions): Promise<PG> {
  try {
    return await PGlite.create(options);
  } catch (err) {
    throw new Error(`cannot open the PGlite database in ${dir}: ${errorMessage(err)}`, { cause: err });
  }
}

function tarBlob(tar: Uint8Array): Blob {
  // An uncompressed tar typed as such: PGlite untars it directly without gunzipping.
  return new Blob([tar as Uint8Array<ArrayBuffer>], { type: "application/x-tar" });
}
