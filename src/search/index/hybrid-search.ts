/**
 * Search over the index: BM25 on full-text candidates (lexical-search.ts) and cosine similarity of
 * embeddings, fused by reciprocal rank (RRF, k = 60: a chunk's fused score is the sum of
 * 1 / (60 + rank) over the rankings that returned it). Without a reachable embedding model the
 * search is lexical only and says why (`lexicalOnlyReason`).
 */
import { GatewayError, invalidArgument } from "../../errors/gateway-error.js";
import { pathGlobFilter } from "../files/glob.js";
import type { StoredChunk, IndexStore } from "./index-store.js";
import type { LexicalSearch } from "./lexical-search.js";
import type { VectorTargetProvider } from "./vector-target.js";

export type SearchMode = "hybrid" | "lexical" | "vector";

export interface SearchQuery {
  query: string;
  /** Root directories (absolute) to search. */
  roots: string[];
  /** 0/undefined: 8; at most 100. */
  limit?: number;
  pathGlobs?: string[];
  languages?: string[];
  mode?: SearchMode;
}

export interface RankerPlace {
  rank: number;
  score: number;
}

export interface SearchHit {
  chunk: StoredChunk;
  /** RRF in hybrid mode, else the ranker's own score; higher is better. */
  score: number;
  lexical?: RankerPlace;
  vector?: RankerPlace;
}

export interface SearchResult {
  hits: SearchHit[];
  lexicalOnly: boolean;
  lexicalOnlyReason: string;
  embeddingModel: string;
}

export const RRF_K = 60;
const DEFAULT_LIMIT = 8;
const MAX_LIMIT = 100;
const MAX_QUERY_CHARS = 4000;
/** Each ranking contributes this many candidates per requested hit (filters drop some). */
const POOL_FACTOR = 5;
const MIN_POOL = 50;

export class HybridSearch {
  constructor(private readonly o: { store: IndexStore; lexical: LexicalSearch; vectors: VectorTargetProvider }) {}

  async search(q: SearchQuery): Promise<SearchResult> {
    const query = q.query.trim();
    if (!query) throw invalidArgument("query is required", "query");
    if (query.length > MAX_QUERY_CHARS)
      throw invalidArgument(`query is longer than ${MAX_QUERY_CHARS} characters`, "query");
    const limit = q.limit || DEFAULT_LIMIT;
    if (limit > MAX_LIMIT) throw invalidArgument(`limit must be at most ${MAX_LIMIT}`, "limit");
    const mode = q.mode ?? "hybrid";
    const pathOk = pathGlobFilter(q.pathGlobs ?? [], "path_globs");
    const languages = q.languages ?? [];
    const pool = Math.max(MIN_POOL, limit * POOL_FACTOR);

    const target = mode === "lexical" ? undefined : await this.o.vectors.get();
    if (mode === "vector" && !target)
      throw new GatewayError("unavailable", `vector search is unavailable: ${this.o.vectors.unavailableReason}`, {
        param: "mode",
      });

    const [lexical, vector] = await Promise.all([
      mode === "vector"
        ? Promise.resolve([])
        : this.o.lexical
            .search(query, { roots: q.roots, languages, limit: pool })
            .then((hits) => hits.filter((h) => pathOk(h.chunk.path))),
      target ? this.vectorRanking(query, q.roots, languages, pathOk, pool, target) : Promise.resolve([]),
    ]);

    const byId = new Map<string, SearchHit>();
    lexical.forEach((h, i) =>
      byId.set(h.chunk.id, { chunk: h.chunk, score: 0, lexical: { rank: i + 1, score: h.score } }),
    );
    vector.forEach((h, i) => {
      const place = { rank: i + 1, score: h.score };
      const hit = byId.get(h.chunk.id);
      if (hit) hit.vector = place;
      else byId.set(h.chunk.id, { chunk: h.chunk, score: 0, vector: place });
    });
    for (const hit of byId.values()) {
      hit.score =
        mode === "hybrid"
          ? (hit.lexical ? 1 / (RRF_K + hit.lexical.rank) : 0) + (hit.vector ? 1 / (RRF_K + hit.vector.rank) : 0)
          : (hit.lexical ?? hit.vector)!.score;
    }
    const hits = [...byId.values()]
      .sort((a, b) => b.score - a.score || (a.chunk.id < b.chunk.id ? -1 : 1))
      .slice(0, limit);
    const lexicalOnly = !target;
    return {
      hits,
      lexicalOnly,
      lexicalOnlyReason: lexicalOnly
        ? mode === "lexical"
          ? "lexical mode was requested"
          : this.o.vectors.unavailableReason
        : "",
      embeddingModel: target ? this.o.vectors.model : "",
    };
  }

  private async vectorRanking(
    query: string,
    roots: string[],
    languages: string[],
    pathOk: (p: string) => boolean,
    pool: number,
    target: NonNullable<Awaited<ReturnType<VectorTargetProvider["get"]>>>,
  ): Promise<{ chunk: StoredChunk; score: number }[]> {
    const e = await target.embedder.embedQuery(query);
    if (e.status !== "ok") return [];
    const perRoot = await Promise.all(
      roots.map((root) => target.collection.query(e.vectors[0]!, { limit: pool, root })),
    );
    const scored = perRoot.flat().sort((a, b) => b.score - a.score);
    const chunks = await this.o.store.chunksById(scored.map((h) => h.id));
    const out: { chunk: StoredChunk; score: number }[] = [];
    for (const h of scored) {
      const chunk = chunks.get(h.id);
      // A vector whose chunk is gone (replaced meanwhile) is skipped, as are filtered ones.
      if (!chunk || !pathOk(chunk.path) || (languages.length && !languages.includes(chunk.language))) continue;
      out.push({ chunk, score: h.score });
    }
    return out.slice(0, pool);
  }
}
