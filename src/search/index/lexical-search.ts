/**
 * Lexical ranking: Postgres full-text search finds the candidates (GIN index on the chunks'
 * lexemes, terms OR-ed), BM25 ranks them. ts_rank has no inverse document frequency, so a common
 * word ("value", "return") would outweigh the rare identifier a query is really about; BM25 weighs
 * each term by how few chunks contain it (notes/storage-search.md §3 measured BM25 best on code).
 */
import type { Database } from "../../storage/database.js";
import { CHUNK_COLUMNS, toChunk, type ChunkRow, type StoredChunk } from "./index-store.js";
import { queryTerms } from "./lexemes.js";

export interface LexicalHit {
  chunk: StoredChunk;
  /** BM25, higher is better. */
  score: number;
}

export interface LexicalQuery {
  roots: string[];
  /** Empty: every language. */
  languages: string[];
  limit: number;
  /** Candidates fetched by full-text match before BM25 re-ranks them. */
  candidates?: number;
}

const K1 = 1.2;
const B = 0.75;
const DEFAULT_CANDIDATES = 300;
/**
 * Candidates are fetched by the rarest lexemes only, while together they match at most this many
 * chunks (at least one lexeme always). Ranking every chunk that holds a common word ("return") made a
 * query at 54k chunks take ~350 ms; a chunk with only common words scores low in BM25 anyway.
 */
const CANDIDATE_MATCH_BUDGET = 4000;
/**
 * Document frequencies are cached per root set until this indexer changes the index (invalidate) or,
 * for changes another replica makes, for a minute (they move slowly and only weigh terms).
 */
const MAX_CACHED_DF = 100_000;
const DF_TTL_MS = 60_000;
/** Corpus statistics (chunk count, mean length) are reused this long. */
const STATS_TTL_MS = 10_000;

interface CorpusStats {
  chunks: number;
  meanLength: number;
  at: number;
}

export class LexicalSearch {
  private readonly stats = new Map<string, CorpusStats>();
  private readonly df = new Map<string, number>();
  private dfSince = 0;

  constructor(private readonly db: Database) {}

  /** Forget cached statistics (the indexer calls this after a run). */
  invalidate(): void {
    this.stats.clear();
    this.df.clear();
  }

  async search(query: string, q: LexicalQuery): Promise<LexicalHit[]> {
    const terms = queryTerms(query);
    if (terms.length === 0 || q.roots.length === 0) return [];
    const lx = await this.db.query<{ l: string }>(
      `SELECT DISTINCT unnest(tsvector_to_array(to_tsvector('english', $1))) AS l`,
      [terms.join(" ")],
    );
    const lexemes = lx.rows.map((r) => r.l);
    if (lexemes.length === 0) return [];
    const [stats, df] = await Promise.all([this.corpus(q.roots), this.documentFrequencies(lexemes, q.roots)]);
    const rarestFirst = [...lexemes].sort((a, b) => (df.get(a) ?? 0) - (df.get(b) ?? 0));
    const matchers: string[] = [];
    let matched = 0;
    for (const l of rarestFirst) {
      const n = df.get(l) ?? 0;
      if (n === 0) continue;
      if (matchers.length > 0 && matched + n > CANDIDATE_MATCH_BUDGET) break;
      matchers.push(l);
      matched += n;
    }
    if (matchers.length === 0) return [];

    // Lexemes are quoted (quote_literal), so no character of theirs is read as tsquery syntax.
    const tsquery = `to_tsquery('simple', array_to_string(array(SELECT quote_literal(x) FROM unnest($1::text[]) x), ' | '))`;
    const rows = await this.db.query<ChunkRow & { lx: string; len: number }>(
      `SELECT ${CHUNK_COLUMNS}, lexemes::text AS lx, length(lexemes) AS len
       FROM search_chunks, ${tsquery} AS q
       WHERE lexemes @@ q AND root = ANY($2::text[]) AND (cardinality($3::text[]) = 0 OR language = ANY($3::text[]))
       ORDER BY ts_rank(lexemes, q) DESC, id
       LIMIT $4`,
      [matchers, q.roots, q.languages, q.candidates ?? DEFAULT_CANDIDATES],
    );
    if (rows.rows.length === 0) return [];
    const hits = rows.rows.map((r) => {
      const tf = termFrequencies(r.lx);
      let score = 0;
      for (const l of lexemes) {
        const f = tf.get(l);
        if (!f) continue;
        const n = df.get(l) ?? 1;
        const idf = Math.log(1 + (stats.chunks - n + 0.5) / (n + 0.5));
        score += (idf * (f * (K1 + 1))) / (f + K1 * (1 - B + (B * r.len) / Math.max(stats.meanLength, 1)));
      }
      return { chunk: toChunk(r), score };
    });
    hits.sort((a, b) => b.score - a.score || (a.chunk.id < b.chunk.id ? -1 : 1));
    return hits.slice(0, q.limit);
  }

  /** Chunks holding each lexeme; counted once per root set until the index changes. */
  private async documentFrequencies(lexemes: string[], roots: string[]): Promise<Map<string, number>> {
    if (Date.now() - this.dfSince > DF_TTL_MS) {
      this.df.clear();
      this.dfSince = Date.now();
    }
    const prefix = `${[...roots].sort().join("\0")}\0\0`;
    const out = new Map<string, number>();
    const missing: string[] = [];
    for (const l of lexemes) {
      const n = this.df.get(prefix + l);
      if (n === undefined) missing.push(l);
      else out.set(l, n);
    }
    if (missing.length === 0) return out;
    const r = await this.db.query<{ l: string; n: string }>(
      `SELECT x AS l, (SELECT count(*) FROM search_chunks
                       WHERE lexemes @@ to_tsquery('simple', quote_literal(x)) AND root = ANY($2::text[])) AS n
       FROM unnest($1::text[]) AS x`,
      [missing, roots],
    );
    if (this.df.size + missing.length > MAX_CACHED_DF) this.df.clear();
    for (const x of r.rows) {
      out.set(x.l, Number(x.n));
      this.df.set(prefix + x.l, Number(x.n));
    }
    return out;
  }

  private async corpus(roots: string[]): Promise<CorpusStats> {
    const key = [...roots].sort().join("\0");
    const cached = this.stats.get(key);
    if (cached && Date.now() - cached.at < STATS_TTL_MS) return cached;
    const r = await this.db.query<{ n: string; mean: string | null }>(
      `SELECT count(*) AS n, avg(length(lexemes)) AS mean FROM search_chunks WHERE root = ANY($1::text[])`,
      [roots],
    );
    const s = { chunks: Number(r.rows[0]!.n), meanLength: Number(r.rows[0]!.mean ?? 1), at: Date.now() };
    this.stats.set(key, s);
    return s;
  }
}

/** Positions per lexeme from a tsvector's text form: `'config':3 'pars':1,7`. */
export function termFrequencies(tsvectorText: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of tsvectorText.matchAll(/'((?:[^']|'')*)'(?::([0-9A-D,]+))?/g)) {
    const lexeme = m[1]!.replaceAll("''", "'");
    out.set(lexeme, m[2] ? m[2].split(",").length : 1);
  }
  return out;
}
