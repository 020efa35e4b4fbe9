import { SymbolMatchMode, type SymbolKind } from "../../../gen/agentgate/v1/search_service_pb.js";
import type { CodeSymbolInfo } from "./types.js";

export const DEFAULT_SYMBOL_LIMIT = 50;
export const MAX_SYMBOL_LIMIT = 1000;

export interface SymbolQuery {
  /** The name to look for; empty matches every symbol (score 0), for listing by kind or path. */
  query: string;
  /** UNSPECIFIED is treated as SUBSTRING, as the proto says. */
  mode?: SymbolMatchMode;
  caseSensitive?: boolean;
  /** Only these kinds; empty or absent for all. */
  kinds?: readonly SymbolKind[];
  /** Only this language id ("typescript"); empty for all. */
  language?: string;
  /** Only paths equal to or under this prefix ("src/search" matches "src/search/x.ts", not "src/searchy"). */
  pathPrefix?: string;
  /** Extra path test, e.g. the RPC layer's glob matcher. */
  pathFilter?: (path: string) => boolean;
  /** 0 or absent means 50; at most 1000. */
  limit?: number;
}

export interface ScoredSymbol extends CodeSymbolInfo {
  /** Higher is better: 1 exact, (0.95) exact but for case, [0.4, 0.9] prefix/substring, (0, 0.4) fuzzy. */
  score: number;
}

export interface SymbolMatches {
  symbols: ScoredSymbol[];
  /** True when the limit cut the results. */
  truncated: boolean;
}

/** Filters, scores and ranks symbols for FindSymbols (pure; the caller supplies the candidate list). */
export function matchSymbols(symbols: Iterable<CodeSymbolInfo>, q: SymbolQuery): SymbolMatches {
  const mode = q.mode || SymbolMatchMode.SUBSTRING;
  const cs = q.caseSensitive ?? false;
  const query = q.query.trim();
  const needle = cs ? query : query.toLowerCase();
  const kinds = q.kinds?.length ? new Set(q.kinds) : undefined;
  const prefix = normalizePrefix(q.pathPrefix);
  const limit = Math.min(q.limit || DEFAULT_SYMBOL_LIMIT, MAX_SYMBOL_LIMIT);

  const hits: ScoredSymbol[] = [];
  for (const s of symbols) {
    if (kinds && !kinds.has(s.kind)) continue;
    if (q.language && s.language !== q.language) continue;
    if (prefix && s.path !== prefix && !s.path.startsWith(`${prefix}/`)) continue;
    if (q.pathFilter && !q.pathFilter(s.path)) continue;
    const score = query ? scoreName(s.name, query, needle, mode, cs) : 0;
    if (score < 0) continue;
    hits.push({ ...s, score });
  }
  hits.sort(
    (a, b) =>
      b.score - a.score ||
      a.name.length - b.name.length ||
      (a.path < b.path ? -1 : a.path > b.path ? 1 : 0) ||
      a.startLine - b.startLine ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
  );
  return { symbols: hits.slice(0, limit), truncated: hits.length > limit };
}

function normalizePrefix(prefix: string | undefined): string {
  return (prefix ?? "").replace(/^\.\/+/, "").replace(/\/+$/, "");
}

/** The score of `name` against the query, or -1 when it does not match in this mode. */
export function scoreName(name: string, query: string, needle: string, mode: SymbolMatchMode, cs: boolean): number {
  if (name === query) return 1;
  const hay = cs ? name : name.toLowerCase();
  if (hay === needle) return 0.95;
  if (mode === SymbolMatchMode.EXACT) return -1;
  const coverage = needle.length / hay.length;
  if (hay.startsWith(needle)) return 0.7 + 0.2 * coverage;
  if (mode === SymbolMatchMode.PREFIX) return -1;
  const idx = hay.indexOf(needle);
  if (idx > 0) return 0.4 + 0.2 * coverage + (isBoundary(name, idx) ? 0.1 : 0);
  if (mode !== SymbolMatchMode.FUZZY) return -1;
  const raw = fuzzyScore(name, hay, needle);
  if (raw <= 0) return -1;
  // Normalised into (0, 0.4): below every substring hit, longer names slightly lower.
  return Math.min(0.39, 0.39 * Math.min(1, raw / (needle.length * 4)) * (0.8 + 0.2 * coverage));
}

/** Start of a word: index 0, after a separator, a camelCase hump, or letter->digit. */
function isBoundary(name: string, i: number): boolean {
  if (i === 0) return true;
  const prev = name[i - 1]!;
  const cur = name[i]!;
  if (/[_\-.\s:/$#]/.test(prev)) return true;
  if (/[a-z]/.test(prev) && /[A-Z]/.test(cur)) return true;
  return /[A-Za-z]/.test(prev) && /[0-9]/.test(cur);
}

const GAP = 0.15;
const CONSECUTIVE = 1;

/**
 * Best subsequence alignment of needle in hay (fzf-like): each matched character earns 1, plus 2 at the
 * name's start or 1.5 at another word boundary, plus 1 when it follows the previous match directly; each
 * skipped character between matches costs GAP. O(|needle|·|name|) with a running maximum. <= 0: no match.
 */
function fuzzyScore(name: string, hay: string, needle: string): number {
  const n = hay.length;
  const m = needle.length;
  if (m === 0 || m > n) return 0;
  // Cheap rejection first: most candidates are not even a subsequence.
  let j = 0;
  for (let i = 0; i < n && j < m; i++) if (hay[i] === needle[j]) j++;
  if (j < m) return 0;

  const bonus = new Float64Array(n);
  for (let i = 0; i < n; i++) bonus[i] = 1 + (i === 0 ? 2 : isBoundary(name, i) ? 1.5 : 0);
  const NEG = -1e9;
  let prev = new Float64Array(n).fill(NEG);
  for (let i = 0; i < n; i++) if (hay[i] === needle[0]) prev[i] = bonus[i]! - GAP * 0.2 * i;
  for (let k = 1; k < m; k++) {
    const cur = new Float64Array(n).fill(NEG);
    let carry = NEG; // best prev[i'] - GAP * (i - i' - 1) over i' < i - 1
    for (let i = 1; i < n; i++) {
      const adjacent = prev[i - 1]!;
      if (hay[i] === needle[k]) {
        const viaGap = carry;
        const viaAdjacent = adjacent > NEG ? adjacent + CONSECUTIVE : NEG;
        const best = Math.max(viaGap, viaAdjacent);
        if (best > NEG) cur[i] = best + bonus[i]!;
      }
      carry = Math.max(carry - GAP, adjacent - GAP);
    }
    prev = cur;
  }
  let best = NEG;
  for (let i = 0; i < n; i++) if (prev[i]! > best) best = prev[i]!;
  return best > NEG ? Math.max(best, 0.01) : 0;
}
