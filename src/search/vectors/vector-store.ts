/**
 * One interface for chunk vectors, implemented by pgvector (in the agentgate database, the default) and
 * Qdrant (`QDRANT_URL`). test/search/vector-store-contract.test.ts runs the same suite against both.
 *
 * Conventions shared by every implementation (the contract suite checks each):
 * - Distance is cosine; `score` is cosine SIMILARITY in [-1, 1], higher is better (never a distance: the
 *   earlier bridge reported pgvector's `<=>` distance as a score and ranked backwards).
 * - Chunk ids are arbitrary strings, unique within a collection. Qdrant only takes unsigned integers or
 *   UUIDs as point ids, so the Qdrant store uses `pointIdFor(chunkId)` (a UUIDv5-style SHA-1 name hash,
 *   deterministic, so re-upserting a chunk overwrites its point) and keeps the chunk id in the payload;
 *   pgvector keys rows by the chunk id itself. Callers only ever see chunk ids.
 * - `pathPrefix` is a directory prefix on `/`-separated root-relative paths: "src/a" matches "src/a" and
 *   "src/a/x.ts", not "src/ab.ts". Trailing slashes are ignored; "" and "." mean no filter.
 * - A collection has one dimension count, fixed when created. `ensure` with another count fails with
 *   failed_precondition unless `onDimensionMismatch: "recreate"` (then every vector is dropped and the
 *   result says so, so the indexer knows to re-embed everything).
 * - Zero, non-finite or wrong-length vectors are rejected (invalid_argument): cosine is undefined for a
 *   zero vector and the two engines would disagree about it.
 */
import { createHash } from "node:crypto";
import { GatewayError } from "../../errors/gateway-error.js";

export interface VectorPoint {
  /** Chunk id (any string, unique within the collection). */
  id: string;
  vector: Float32Array | readonly number[];
  /** The search root the chunk belongs to (as configured in SEARCH_ROOTS). */
  root: string;
  /** Root-relative path with `/` separators. */
  path: string;
  /** Small JSON object kept with the vector (e.g. line range, hash); returned by `query`. */
  payload?: Record<string, unknown>;
}

export interface VectorQuery {
  limit: number;
  root?: string;
  pathPrefix?: string;
}

export interface VectorHit {
  id: string;
  /** Cosine similarity, higher is better. */
  score: number;
  root: string;
  path: string;
  payload: Record<string, unknown>;
}

export interface EnsureOptions {
  /** What to do when the collection exists with another dimension count (default "error"). */
  onDimensionMismatch?: "error" | "recreate";
}

export interface EnsureResult {
  collection: VectorCollection;
  /** True when the collection did not exist or was recreated: it is empty. */
  created: boolean;
  /** True when an existing collection with another dimension count was dropped and recreated. */
  recreated: boolean;
}

/** A collection of chunk vectors with a fixed dimension count. */
export interface VectorCollection {
  readonly name: string;
  readonly dimensions: number;
  /** Inserts or replaces (by chunk id). Batched internally; an empty list is a no-op. */
  upsert(points: readonly VectorPoint[]): Promise<void>;
  /** Removes every vector of one file; returns how many went (Qdrant: how many matched before). */
  deleteByPath(root: string, path: string): Promise<number>;
  deleteByIds(ids: readonly string[]): Promise<void>;
  /** Nearest neighbours by cosine similarity, best first. An empty collection gives []. */
  query(vector: Float32Array | readonly number[], options: VectorQuery): Promise<VectorHit[]>;
  count(filter?: { root?: string }): Promise<number>;
  /**
   * Call after a bulk load. pgvector builds its HNSW index here once the collection is large enough (see
   * pgvector-store.ts); Qdrant indexes by itself, so it is a no-op there.
   */
  optimize(): Promise<void>;
}

export interface VectorStore {
  readonly kind: "pgvector" | "qdrant";
  /** Creates the collection or verifies its dimension count. */
  ensure(collection: string, dimensions: number, options?: EnsureOptions): Promise<EnsureResult>;
  /** Deletes the collection and its vectors; false when it did not exist. */
  drop(collection: string): Promise<boolean>;
  close(): Promise<void>;
}

// ---------------------------------------------------------------------------------------------------------
// Helpers shared by the implementations

/** Lower-case letters, digits and `_`, starting with a letter: valid unquoted in SQL and in Qdrant. */
const COLLECTION_NAME = /^[a-z][a-z0-9_]{0,47}$/;

export function checkCollectionName(name: string): void {
  if (!COLLECTION_NAME.test(name)) {
    throw new GatewayError(
      "invalid_argument",
      `vector collection name ${JSON.stringify(name)} must match ${COLLECTION_NAME.source}`,
      { param: "collection" },
    );
  }
}

export const MAX_DIMENSIONS = 16_000; // pgvector's `vector` limit; Qdrant allows 65 536.

export function checkDimensions(dimensions: number): void {
  if (!Number.isInteger(dimensions) || dimensions < 1 || dimensions > MAX_DIMENSIONS) {
    throw new GatewayError("invalid_argument", `vector dimensions must be an integer in 1..${MAX_DIMENSIONS}`, {
      param: "dimensions",
    });
  }
}

export function dimensionMismatch(collection: string, have: number, want: number): GatewayError {
  return new GatewayError(
    "failed_precondition",
    `vector collection ${collection} holds ${have}-dimensional vectors but ${want} were requested ` +
      `(the embedding model changed?): drop the collection and reindex, or ensure it with ` +
      `onDimensionMismatch "recreate"`,
    { code: "dimension_mismatch" },
  );
}

/** Validates a vector against the collection and returns it as plain numbers. */
export function checkVector(vector: Float32Array | readonly number[], dimensions: number, what: string): number[] {
  if (vector.length !== dimensions) {
    throw new GatewayError(
      "invalid_argument",
      `${what} has ${vector.length} dimensions, the collection has ${dimensions}`,
      { code: "dimension_mismatch" },
    );
  }
  let norm = 0;
  const out = new Array<number>(vector.length);
  for (let i = 0; i < vector.length; i++) {
    const x = vector[i]!;
    if (!Number.isFinite(x)) throw new GatewayError("invalid_argument", `${what} has a non-finite component`);
    norm += x * x;
    out[i] = x;
  }
  if (norm === 0) throw new GatewayError("invalid_argument", `${what} is the zero vector (cosine is undefined)`);
  return out;
}

export function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
    throw new GatewayError("invalid_argument", "vector query limit must be an integer in 1..1000", {
      param: "limit",
    });
  }
  return limit;
}

/** "src/a/" -> "src/a"; "", "." and "/" -> undefined (no filter). Also strips a leading "./". */
export function normalisePathPrefix(prefix: string | undefined): string | undefined {
  if (prefix === undefined) return undefined;
  const p = prefix.replace(/^\.\//, "").replace(/\/+$/, "");
  return p === "" || p === "." ? undefined : p;
}

/** "src/a/x.ts" -> ["src", "src/a", "src/a/x.ts"]: each is a valid `pathPrefix` that matches the file. */
export function pathPrefixes(path: string): string[] {
  const parts = path.split("/").filter((s) => s !== "");
  return parts.map((_, i) => parts.slice(0, i + 1).join("/"));
}

/** Drops earlier duplicates of an id within one batch (last write wins, as separate upserts would). */
export function dedupeById<T extends { id: string }>(points: readonly T[]): T[] {
  const byId = new Map<string, T>();
  for (const p of points) {
    byId.delete(p.id);
    byId.set(p.id, p);
  }
  return [...byId.values()];
}

// UUIDv5 namespace for chunk ids: an arbitrary constant, fixed forever (changing it would orphan every
// point in existing Qdrant collections).
const CHUNK_NAMESPACE = Buffer.from("5d0d5a1e6f2a5c8b9b1e0f4c3a2d7e61", "hex");

/** Deterministic RFC 4122 version-5 UUID (SHA-1 of namespace + chunk id) used as the Qdrant point id. */
export function pointIdFor(chunkId: string): string {
  const h = createHash("sha1").update(CHUNK_NAMESPACE).update(chunkId, "utf8").digest();
  h[6] = (h[6]! & 0x0f) | 0x50; // version 5
  h[8] = (h[8]! & 0x3f) | 0x80; // RFC 4122 variant
  const hex = h.subarray(0, 16).toString("hex");
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

export function chunks<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
