/**
 * Description embeddings of dreamed endpoints in the vector store (pgvector or Qdrant), one point per
 * endpoint: `root` is the HTTP method and `path` the route key without its leading "/", so the cache
 * lookup filters to one route. Descriptions are embedded as documents on both sides of the cache
 * comparison (stored and asked-for descriptions are the same kind of text); ListEndpoints' free-text
 * query is embedded as a query.
 */
import type { VectorTargetProvider } from "../search/index/vector-target.js";

export interface EndpointHit {
  id: string;
  similarity: number;
}

export type Embedding = { ok: true; vector: Float32Array; model: string } | { ok: false; reason: string };

export class EndpointVectors {
  constructor(private readonly target: VectorTargetProvider) {}

  /** Why there are no vectors now ("" when there are). */
  get unavailableReason(): string {
    return this.target.unavailableReason;
  }

  async embed(text: string, as: "document" | "query"): Promise<Embedding> {
    const t = await this.target.get();
    if (!t) return { ok: false, reason: this.target.unavailableReason || "vectors are unavailable" };
    const r = as === "document" ? await t.embedder.embedDocuments([text]) : await t.embedder.embedQuery(text);
    if (r.status !== "ok")
      return { ok: false, reason: `embedding model ${this.target.model} unavailable: ${r.message}` };
    return { ok: true, vector: r.vectors[0]!, model: this.target.model };
  }

  async upsert(e: { id: string; method: string; pathKey: string }, vector: Float32Array): Promise<void> {
    const t = await this.target.get();
    if (!t) return;
    await t.collection.upsert([
      { id: e.id, vector, root: e.method, path: routePath(e.pathKey), payload: { path_key: e.pathKey } },
    ]);
  }

  /** The endpoint dreamed for this exact route, with its similarity to `vector` (one route, one endpoint). */
  async onRoute(vector: Float32Array, method: string, pathKey: string): Promise<EndpointHit | undefined> {
    const t = await this.target.get();
    if (!t) return undefined;
    const hits = await t.collection.query(vector, { limit: 5, root: method, pathPrefix: routePath(pathKey) });
    const hit = hits.find((h) => h.payload.path_key === pathKey);
    return hit ? { id: hit.id, similarity: clamp(hit.score) } : undefined;
  }

  /** The most similar endpoints, best first (any route); `method` filters. */
  async nearest(vector: Float32Array, limit: number, method?: string): Promise<EndpointHit[]> {
    const t = await this.target.get();
    if (!t) return [];
    const hits = await t.collection.query(vector, { limit, root: method || undefined });
    return hits.map((h) => ({ id: h.id, similarity: clamp(h.score) }));
  }

  async delete(id: string): Promise<void> {
    const t = await this.target.get();
    if (t) await t.collection.deleteByIds([id]);
  }
}

/** "/images/{}/thumbnail" -> "images/{}/thumbnail" (vector paths are relative). */
const routePath = (pathKey: string): string => pathKey.replace(/^\/+/, "");

/** The API reports similarity from 0 to 1; cosine can dip below 0 for unrelated texts. */
const clamp = (score: number): number => Math.min(1, Math.max(0, score));
