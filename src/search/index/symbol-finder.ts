/**
 * FindSymbols over the index: the database narrows the candidates with a LIKE on the lower-cased
 * name (every query character in order, which covers exact, prefix, substring and fuzzy matches),
 * then matchSymbols (symbols/match.ts) scores and ranks them.
 */
import { SymbolMatchMode, type SymbolKind } from "../../../gen/agentgate/v1/search_service_pb.js";
import { invalidArgument } from "../../errors/gateway-error.js";
import { matchSymbols, type ScoredSymbol } from "../symbols/match.js";
import { pathGlobFilter } from "../files/glob.js";
import type { IndexStore } from "./index-store.js";

export interface FindSymbolsQuery {
  query: string;
  mode?: SymbolMatchMode;
  caseSensitive?: boolean;
  kinds?: SymbolKind[];
  language?: string;
  /** Root directories (absolute). */
  roots: string[];
  pathGlobs?: string[];
  limit?: number;
}

/** Candidates read per query; a name query rarely has more (listing every symbol by kind might). */
const MAX_CANDIDATES = 50_000;
const MAX_QUERY_CHARS = 200;

export class SymbolFinder {
  constructor(private readonly store: IndexStore) {}

  async find(q: FindSymbolsQuery): Promise<{ symbols: (ScoredSymbol & { root: string })[]; truncated: boolean }> {
    const query = q.query.trim();
    if (query.length > MAX_QUERY_CHARS)
      throw invalidArgument(`query is longer than ${MAX_QUERY_CHARS} characters`, "query");
    const mode = q.mode || SymbolMatchMode.SUBSTRING;
    const candidates = await this.store.symbolCandidates(q.roots, {
      likePattern: likePattern(query.toLowerCase(), mode),
      kinds: q.kinds ?? [],
      language: q.language ?? "",
      limit: MAX_CANDIDATES,
    });
    const r = matchSymbols(candidates, {
      query,
      mode,
      caseSensitive: q.caseSensitive,
      kinds: q.kinds,
      language: q.language,
      pathFilter: pathGlobFilter(q.pathGlobs ?? [], "path_globs"),
      limit: q.limit,
    });
    // matchSymbols copies each symbol; the root travels along with the spread.
    return {
      symbols: r.symbols as (ScoredSymbol & { root: string })[],
      truncated: r.truncated || candidates.length >= MAX_CANDIDATES,
    };
  }
}

const escapeLike = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/** The LIKE pattern (on lower(name)) every match of the mode satisfies. */
export function likePattern(lowerQuery: string, mode: SymbolMatchMode): string {
  if (!lowerQuery) return "%";
  switch (mode) {
    case SymbolMatchMode.EXACT:
      return escapeLike(lowerQuery);
    case SymbolMatchMode.PREFIX:
      return `${escapeLike(lowerQuery)}%`;
    case SymbolMatchMode.FUZZY:
      return `%${[...lowerQuery].map(escapeLike).join("%")}%`;
    default:
      return `%${escapeLike(lowerQuery)}%`;
  }
}
