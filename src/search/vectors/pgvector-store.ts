/**
 * Chunk vectors in the agentgate database with pgvector (PGlite always has it; a Postgres server may not).
 *
 * One table per collection, `vec_<collection>`, created here rather than by a migration because
 * migrations must run on servers without pgvector. Figures below are from
 * ../shared/notes/storage-search.md §1 (PGlite 0.5.14 + pgvector 0.8.7, 50k × 768-d):
 * - Column type: `vector(n)` up to 2000 dimensions (HNSW's limit for `vector`), `halfvec(n)` for 2001..4000
 *   (HNSW allows 4000 there; fp16 costs ~3 significant digits of score), `vector(n)` above 4000 with exact
 *   scans only.
 * - Inserts: one `INSERT … SELECT FROM unnest($1::text[], …, $5::vector[])` per 500 rows (299 rows/s on
 *   PGlite, dominated by `vector_in` parsing text inside WASM). Components are printed with 9 significant
 *   digits (exact for float32) rather than String()'s up to 17: measured here on PGlite, 1000 × 768-d
 *   Float32Array rows, 15.5k -> 9.8k chars per row and 382 -> 640 rows/s.
 * - Index: exact scans cost ~14 µs/row on PGlite (686 ms at 50k) while HNSW answers in ~7 ms (ef_search 100,
 *   recall@10 1.0), but inserting with the index present drops to 68 rows/s and building it took 89.5 s at
 *   50k. So the HNSW index (m 16, ef_construction 64, vector_cosine_ops) is built by `optimize()` — called
 *   by the indexer after a bulk load — once a collection has `hnswMinRows` rows (default 10 000, where an
 *   exact scan is ~140 ms); below that every query is an exact scan, which is also exact.
 * - Queries with the index run in a transaction that sets `hnsw.ef_search` (max(100, 2·limit), ≤ 1000) and,
 *   on pgvector ≥ 0.8, `hnsw.iterative_scan = strict_order` so root/path filters still fill `limit`.
 */
import { GatewayError } from "../../errors/gateway-error.js";
import type { Database, Queryable } from "../../storage/database.js";
import { SCHEMA_LOCK_KEY } from "../../storage/common.js";
import {
  checkCollectionName,
  checkDimensions,
  checkLimit,
  checkVector,
  chunks,
  dedupeById,
  dimensionMismatch,
  normalisePathPrefix,
  type EnsureOptions,
  type EnsureResult,
  type VectorCollection,
  type VectorHit,
  type VectorPoint,
  type VectorQuery,
  type VectorStore,
} from "./vector-store.js";

export interface PgvectorStoreOptions {
  /** Rows at which `optimize()` builds the HNSW index (default 10 000). */
  hnswMinRows?: number;
  /** Rows per INSERT statement (default 500). */
  batchSize?: number;
}

const HNSW_MAX_VECTOR = 2000;
const HNSW_MAX_HALFVEC = 4000;

type ColumnType = "vector" | "halfvec";

function columnTypeFor(dimensions: number): ColumnType {
  return dimensions > HNSW_MAX_VECTOR && dimensions <= HNSW_MAX_HALFVEC ? "halfvec" : "vector";
}

/** `[x,y,…]` with 9 significant digits: round-trips float32 exactly, ~37 % shorter than String(x). */
function vectorLiteral(v: readonly number[]): string {
  let s = "[";
  for (let i = 0; i < v.length; i++) s += (i ? "," : "") + v[i]!.toPrecision(9);
  return s + "]";
}

export class PgvectorStore implements VectorStore {
  readonly kind = "pgvector" as const;
  private readonly hnswMinRows: number;
  private readonly batchSize: number;
  private iterativeScan: boolean | undefined;

  constructor(
    private readonly db: Database,
    options: PgvectorStoreOptions = {},
  ) {
    this.hnswMinRows = options.hnswMinRows ?? 10_000;
    this.batchSize = options.batchSize ?? 500;
  }

  async ensure(collection: string, dimensions: number, options: EnsureOptions = {}): Promise<EnsureResult> {
    checkCollectionName(collection);
    checkDimensions(dimensions);
    await this.requirePgvector();
    const table = tableName(collection);
    const type = columnTypeFor(dimensions);
    let created = false;
    let recreated = false;
    // Serialised with migrations and other replicas: concurrent CREATE TABLE IF NOT EXISTS can still
    // collide on the catalog's unique indexes.
    await this.db.transaction(async (tx) => {
      await tx.query(`SELECT pg_advisory_xact_lock(${SCHEMA_LOCK_KEY})`);
      const have = await existingDimensions(tx, table);
      if (have !== undefined && have !== dimensions) {
        if (options.onDimensionMismatch !== "recreate") throw dimensionMismatch(collection, have, dimensions);
        await tx.query(`DROP TABLE ${table}`);
        recreated = true;
      }
      if (have === undefined || recreated) {
        await tx.exec(
          `CREATE TABLE ${table} (
             id text PRIMARY KEY,
             root text NOT NULL,
             path text NOT NULL,
             payload jsonb NOT NULL DEFAULT '{}',
             embedding ${type}(${dimensions}) NOT NULL
           );
           CREATE INDEX ${table}_root_path ON ${table} (root, path text_pattern_ops);`,
        );
        created = true;
      }
    });
    if (this.iterativeScan === undefined) {
      const r = await this.db.query<{ v: string }>("SELECT extversion AS v FROM pg_extension WHERE extname = 'vector'");
      const [major = 0, minor = 0] = (r.rows[0]?.v ?? "0.0").split(".").map(Number);
      this.iterativeScan = major > 0 || minor >= 8;
    }
    const coll = new PgvectorCollection(this.db, collection, dimensions, type, {
      hnswMinRows: this.hnswMinRows,
      batchSize: this.batchSize,
      iterativeScan: this.iterativeScan,
    });
    await coll.refreshIndexState();
    return { collection: coll, created, recreated };
  }

  async drop(collection: string): Promise<boolean> {
    checkCollectionName(collection);
    const table = tableName(collection);
    const r = await this.db.query<{ t: string | null }>("SELECT to_regclass($1)::text AS t", [table]);
    if (!r.rows[0]?.t) return false;
    await this.db.query(`DROP TABLE IF EXISTS ${table}`);
    return true;
  }

  async close(): Promise<void> {
    // The database belongs to the caller.
  }

  /** db.vector is re-evaluated by the storage layer (health() notices an extension installed later). */
  private async requirePgvector(): Promise<void> {
    if (this.db.vector === "pgvector") return;
    const detail = (await this.db.health()).detail;
    throw new GatewayError(
      "failed_precondition",
      `vector search needs pgvector, which this ${this.db.kind} database lacks` +
        (detail ? ` (${detail})` : "") +
        `: set QDRANT_URL to keep vectors in Qdrant, or install pgvector on the server ` +
        `(Debian: postgresql-<major>-pgvector from the PGDG repository) and restart agentgate`,
      { code: "pgvector_missing" },
    );
  }
}

interface CollectionTuning {
  hnswMinRows: number;
  batchSize: number;
  iterativeScan: boolean;
}

class PgvectorCollection implements VectorCollection {
  private readonly table: string;
  private hasHnsw = false;

  constructor(
    private readonly db: Database,
    readonly name: string,
    readonly dimensions: number,
    private readonly type: ColumnType,
    private readonly tuning: CollectionTuning,
  ) {
    this.table = tableName(name);
  }

  async refreshIndexState(): Promise<void> {
    const r = await this.db.query("SELECT 1 FROM pg_indexes WHERE indexname = $1", [`${this.table}_hnsw`]);
    this.hasHnsw = r.rows.length > 0;
  }

  async upsert(points: readonly VectorPoint[]): Promise<void> {
    // Validate everything before writing anything: a bad vector must not leave half a file indexed.
    const rows = dedupeById(points).map((p) => ({
      id: p.id,
      root: p.root,
      path: p.path,
      payload: JSON.stringify(p.payload ?? {}),
      vector: vectorLiteral(checkVector(p.vector, this.dimensions, `vector of chunk ${p.id}`)),
    }));
    const sql =
      `INSERT INTO ${this.table} (id, root, path, payload, embedding) ` +
      `SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::${this.type}[]) ` +
      `ON CONFLICT (id) DO UPDATE SET root = EXCLUDED.root, path = EXCLUDED.path, ` +
      `payload = EXCLUDED.payload, embedding = EXCLUDED.embedding`;
    for (const batch of chunks(rows, this.tuning.batchSize)) {
      await this.db.query(sql, [
        batch.map((r) => r.id),
        batch.map((r) => r.root),
        batch.map((r) => r.path),
        batch.map((r) => r.payload),
        batch.map((r) => r.vector),
      ]);
    }
  }

  async deleteByPath(root: string, path: string): Promise<number> {
    const r = await this.db.query(`DELETE FROM ${this.table} WHERE root = $1 AND path = $2`, [root, path]);
    return r.rowCount;
  }

  async deleteByIds(ids: readonly string[]): Promise<void> {
    for (const batch of chunks(ids, 5000)) {
      await this.db.query(`DELETE FROM ${this.table} WHERE id = ANY($1::text[])`, [batch]);
    }
  }

  async query(vector: Float32Array | readonly number[], options: VectorQuery): Promise<VectorHit[]> {
    const limit = checkLimit(options.limit);
    const params: unknown[] = [vectorLiteral(checkVector(vector, this.dimensions, "query vector")), limit];
    const where: string[] = [];
    if (options.root !== undefined) {
      params.push(options.root);
      where.push(`root = $${params.length}`);
    }
    const prefix = normalisePathPrefix(options.pathPrefix);
    if (prefix !== undefined) {
      params.push(prefix, `${prefix}/`);
      where.push(`(path = $${params.length - 1} OR starts_with(path, $${params.length}))`);
    }
    const q = `$1::${this.type}(${this.dimensions})`;
    const sql =
      `SELECT id, root, path, payload, 1 - (embedding <=> ${q}) AS score FROM ${this.table}` +
      (where.length ? ` WHERE ${where.join(" AND ")}` : "") +
      ` ORDER BY embedding <=> ${q} LIMIT $2`;
    type Row = { id: string; root: string; path: string; payload: Record<string, unknown>; score: number };
    const rows = this.hasHnsw
      ? await this.db.transaction(async (tx) => {
          const ef = Math.min(1000, Math.max(100, 2 * limit));
          await tx.query(`SET LOCAL hnsw.ef_search = ${ef}`);
          if (this.tuning.iterativeScan) await tx.query("SET LOCAL hnsw.iterative_scan = strict_order");
          return (await tx.query<Row>(sql, params)).rows;
        })
      : (await this.db.query<Row>(sql, params)).rows;
    return rows.map((r) => ({ id: r.id, score: Number(r.score), root: r.root, path: r.path, payload: r.payload }));
  }

  async count(filter: { root?: string } = {}): Promise<number> {
    const r =
      filter.root === undefined
        ? await this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.table}`)
        : await this.db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${this.table} WHERE root = $1`, [
            filter.root,
          ]);
    return Number(r.rows[0]?.n ?? 0);
  }

  async optimize(): Promise<void> {
    await this.refreshIndexState();
    if (this.hasHnsw || this.dimensions > HNSW_MAX_HALFVEC) return;
    if ((await this.count()) < this.tuning.hnswMinRows) return;
    await this.db.transaction(async (tx) => {
      // The build is far faster when the graph fits in maintenance_work_mem (notes: 512MB for 50k × 768).
      await tx.query("SET LOCAL maintenance_work_mem = '512MB'");
      await tx.query(
        `CREATE INDEX IF NOT EXISTS ${this.table}_hnsw ON ${this.table} ` +
          `USING hnsw (embedding ${this.type}_cosine_ops) WITH (m = 16, ef_construction = 64)`,
      );
    });
    this.hasHnsw = true;
  }
}

/** Collection names are checked against a strict pattern, so this is a safe identifier. */
function tableName(collection: string): string {
  return `vec_${collection}`;
}

async function existingDimensions(q: Queryable, table: string): Promise<number | undefined> {
  const r = await q.query<{ t: string }>(
    `SELECT format_type(a.atttypid, a.atttypmod) AS t FROM pg_attribute a
      WHERE a.attrelid = to_regclass($1) AND a.attname = 'embedding' AND NOT a.attisdropped`,
    [table],
  );
  const t = r.rows[0]?.t;
  if (t === undefined) return undefined;
  const m = /\((\d+)\)/.exec(t);
  return m ? Number(m[1]) : undefined;
}
