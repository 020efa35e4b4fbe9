/**
 * Chunk vectors in Qdrant (`QDRANT_URL`, optional `QDRANT_API_KEY`) through @qdrant/js-client-rest 1.18
 * (the newest for Node 20). Only endpoints present in Qdrant 1.19's OpenAPI are used: `query()` rather than
 * `search()` (1.19 removed /points/search).
 *
 * Point ids: Qdrant accepts only unsigned integers and UUIDs, so each chunk id maps to `pointIdFor(id)`, a
 * deterministic UUIDv5 (re-upserting a chunk overwrites its point; deleting by chunk id needs no lookup).
 * Payload: `{chunk_id, root, path, path_prefixes, data}`; `data` holds the caller's payload so its keys can
 * never shadow ours.
 *
 * Path-prefix filtering: `path_prefixes` holds every directory prefix of the path ("src", "src/a",
 * "src/a/x.ts") and has a keyword index like `root` and `path`, so `pathPrefix` is an exact keyword match on
 * an array field, served by the index on any Qdrant version. (MatchPrefix needs 1.19 and a keyword index
 * with the prefix option; a `text` index tokenises and would also match inside names.) The cost is a few
 * extra keywords per point.
 */
import { QdrantClient } from "@qdrant/js-client-rest";
import { GatewayError } from "../../errors/gateway-error.js";
import {
  checkCollectionName,
  checkDimensions,
  checkLimit,
  checkVector,
  chunks,
  dedupeById,
  dimensionMismatch,
  normalisePathPrefix,
  pathPrefixes,
  pointIdFor,
  type EnsureOptions,
  type EnsureResult,
  type VectorCollection,
  type VectorHit,
  type VectorPoint,
  type VectorQuery,
  type VectorStore,
} from "./vector-store.js";

export interface QdrantStoreOptions {
  url: string;
  apiKey?: string;
  /** Per-request timeout in ms (default 30 000; the client's own default is 300 s). */
  timeoutMs?: number;
  /** Points per upsert request (default 256, ~1 MB of JSON at 768 dimensions). */
  batchSize?: number;
}

/** Payload fields with a keyword index, used by filters. */
const INDEXED_FIELDS = ["root", "path", "path_prefixes"] as const;

type Filter = { must: { key: string; match: { value: string } }[] };

export class QdrantStore implements VectorStore {
  readonly kind = "qdrant" as const;
  private readonly client: QdrantClient;
  private readonly batchSize: number;

  constructor(private readonly options: QdrantStoreOptions) {
    // checkCompatibility would call the server from the constructor (and only warn); startup health
    // checks are the caller's business.
    this.client = new QdrantClient({
      url: options.url,
      apiKey: options.apiKey,
      timeout: options.timeoutMs ?? 30_000,
      checkCompatibility: false,
    });
    this.batchSize = options.batchSize ?? 256;
  }

  async ensure(collection: string, dimensions: number, options: EnsureOptions = {}): Promise<EnsureResult> {
    checkCollectionName(collection);
    checkDimensions(dimensions);
    return this.call(`ensure collection ${collection}`, async () => {
      let created = false;
      let recreated = false;
      let have = await this.describe(collection);
      if (have && have.size !== dimensions) {
        if (options.onDimensionMismatch !== "recreate") throw dimensionMismatch(collection, have.size, dimensions);
        await this.client.deleteCollection(collection);
        have = undefined;
        recreated = true;
      }
      if (!have) {
        try {
          await this.client.createCollection(collection, { vectors: { size: dimensions, distance: "Cosine" } });
          created = true;
        } catch (err) {
          // Another replica created it first (409): verify what it made.
          if (statusOf(err) !== 409) throw err;
          have = await this.describe(collection);
          if (have && have.size !== dimensions) throw dimensionMismatch(collection, have.size, dimensions);
        }
      }
      for (const field of INDEXED_FIELDS) {
        if (have?.indexed.has(field)) continue;
        await this.client.createPayloadIndex(collection, { field_name: field, field_schema: "keyword", wait: true });
      }
      const coll = new QdrantCollection(this.client, collection, dimensions, this.batchSize, this.call.bind(this));
      return { collection: coll, created: created || recreated, recreated };
    });
  }

  async drop(collection: string): Promise<boolean> {
    checkCollectionName(collection);
    return this.call(`drop collection ${collection}`, async () => {
      if (!(await this.client.collectionExists(collection)).exists) return false;
      await this.client.deleteCollection(collection);
      return true;
    });
  }

  async close(): Promise<void> {
    // The REST client keeps no state that needs closing.
  }

  private async describe(collection: string): Promise<{ size: number; indexed: Set<string> } | undefined> {
    if (!(await this.client.collectionExists(collection)).exists) return undefined;
    const info = await this.client.getCollection(collection);
    const vectors = info.config.params.vectors as { size?: number } | Record<string, unknown> | undefined;
    const size = vectors && typeof vectors.size === "number" ? vectors.size : undefined;
    if (size === undefined) {
      throw new GatewayError(
        "failed_precondition",
        `Qdrant collection ${collection} was not created by agentgate (it has named vectors): choose another ` +
          `collection name or drop it`,
      );
    }
    return { size, indexed: new Set(Object.keys(info.payload_schema ?? {})) };
  }

  /** Maps client failures to gateway errors that name Qdrant and its URL. */
  private async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      const status = statusOf(err);
      const detail = qdrantMessage(err);
      if (status === undefined) {
        throw new GatewayError("unavailable", `Qdrant at ${this.options.url} is unreachable (${what}): ${detail}`, {
          cause: err,
        });
      }
      throw new GatewayError(
        status === 404 ? "not_found" : status < 500 ? "invalid_argument" : "upstream_error",
        `Qdrant at ${this.options.url} refused ${what} (HTTP ${status}): ${detail}`,
        { cause: err },
      );
    }
  }
}

class QdrantCollection implements VectorCollection {
  constructor(
    private readonly client: QdrantClient,
    readonly name: string,
    readonly dimensions: number,
    private readonly batchSize: number,
    private readonly call: <T>(what: string, fn: () => Promise<T>) => Promise<T>,
  ) {}

  async upsert(points: readonly VectorPoint[]): Promise<void> {
    const prepared = dedupeById(points).map((p) => ({
      id: pointIdFor(p.id),
      vector: checkVector(p.vector, this.dimensions, `vector of chunk ${p.id}`),
      payload: {
        chunk_id: p.id,
        root: p.root,
        path: p.path,
        path_prefixes: pathPrefixes(p.path),
        data: p.payload ?? {},
      },
    }));
    for (const batch of chunks(prepared, this.batchSize)) {
      await this.call(`upsert into ${this.name}`, () => this.client.upsert(this.name, { wait: true, points: batch }));
    }
  }

  async deleteByPath(root: string, path: string): Promise<number> {
    const filter = matchAll({ root, path });
    return this.call(`delete from ${this.name}`, async () => {
      const { count } = await this.client.count(this.name, { filter, exact: true });
      if (count > 0) await this.client.delete(this.name, { wait: true, filter });
      return count;
    });
  }

  async deleteByIds(ids: readonly string[]): Promise<void> {
    for (const batch of chunks(ids, 1000)) {
      await this.call(`delete from ${this.name}`, () =>
        this.client.delete(this.name, { wait: true, points: batch.map(pointIdFor) }),
      );
    }
  }

  async query(vector: Float32Array | readonly number[], options: VectorQuery): Promise<VectorHit[]> {
    const limit = checkLimit(options.limit);
    const query = checkVector(vector, this.dimensions, "query vector");
    const filter = matchAll({ root: options.root, path_prefixes: normalisePathPrefix(options.pathPrefix) });
    const res = await this.call(`query ${this.name}`, () =>
      this.client.query(this.name, {
        query,
        limit,
        with_payload: ["chunk_id", "root", "path", "data"],
        ...(filter.must.length ? { filter } : {}),
      }),
    );
    return res.points.map((p) => {
      const payload = (p.payload ?? {}) as { chunk_id?: string; root?: string; path?: string; data?: unknown };
      return {
        id: String(payload.chunk_id ?? p.id),
        score: p.score, // Cosine: Qdrant normalises vectors, so this is the similarity, higher is better.
        root: String(payload.root ?? ""),
        path: String(payload.path ?? ""),
        payload: (payload.data ?? {}) as Record<string, unknown>,
      };
    });
  }

  async count(filter: { root?: string } = {}): Promise<number> {
    const f = matchAll({ root: filter.root });
    const res = await this.call(`count ${this.name}`, () =>
      this.client.count(this.name, { exact: true, ...(f.must.length ? { filter: f } : {}) }),
    );
    return res.count;
  }

  async optimize(): Promise<void> {
    // Qdrant builds its HNSW segments itself (indexing_threshold).
  }
}

function matchAll(fields: Record<string, string | undefined>): Filter {
  const must = Object.entries(fields)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([key, value]) => ({ key, match: { value } }));
  return { must };
}

/** HTTP status of a client error (ApiError / QdrantClientUnexpectedResponseError), undefined for transport. */
function statusOf(err: unknown): number | undefined {
  const status = (err as { status?: unknown } | null)?.status;
  return typeof status === "number" ? status : undefined;
}

function qdrantMessage(err: unknown): string {
  const data = (err as { data?: { status?: { error?: unknown } } } | null)?.data;
  const text = data?.status?.error;
  if (typeof text === "string") return text;
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  return [err instanceof Error ? err.message : String(err), cause?.code ?? cause?.message].filter(Boolean).join(": ");
}
