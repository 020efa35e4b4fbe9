/**
 * Retrieves repository context for a question from three sources at once: hybrid search over the
 * index, declarations the question names (symbols) and literal occurrences of the identifiers it
 * names (grep). Each source ranks line ranges; the rankings are fused by reciprocal rank (as in
 * hybrid search), overlapping ranges of a file are merged, the lines are read fresh from disk (so a
 * citation always points at real lines) and the best ranges are kept while they fit the budget.
 */
import { SymbolMatchMode } from "../../gen/agentgate/v1/search_service_pb.js";
import { asGatewayError, invalidArgument } from "../errors/gateway-error.js";
import { pathGlobFilter } from "../search/files/glob.js";
import { readFileLines } from "../search/files/read-file.js";
import { grep } from "../search/grep/grep.js";
import type { GrepMatch } from "../search/grep/types.js";
import { RRF_K } from "../search/index/hybrid-search.js";
import type { SearchRoot } from "../search/roots.js";
import type { SearchDomain } from "../search/search-module.js";
import {
  buildContextPrompt,
  citationLabel,
  contextBudgetChars,
  estimateTokens,
  type PromptEntry,
} from "./context-prompt.js";
import { alternationOf, queryTerms, type QueryTerms } from "./query-terms.js";
import {
  RETRIEVAL_SOURCES,
  type Citation,
  type RetrievalOptions,
  type RetrievalSource,
  type RetrievedContext,
} from "./types.js";

export const DEFAULT_CONTEXT_TOKENS = 2048;
export const MAX_CONTEXT_TOKENS = 32_768;
export const DEFAULT_CITATIONS = 16;
export const MAX_CITATIONS = 64;
/** Search takes queries up to this long; a longer question is cut. */
const MAX_QUERY_CHARS = 4000;
/** A symbol's range is cut to its first lines (a whole class rarely fits a budget). */
const MAX_SYMBOL_LINES = 80;
/** Ranges of one file merge while the union stays this short. */
const MAX_MERGED_LINES = 120;
/** Ranges this close merge (the gap lines come along). */
const MERGE_GAP = 2;
const GREP_CONTEXT_LINES = 4;
const GREP_MATCHES_PER_FILE = 3;
const GREP_MAX_MATCHES = 300;
const SYMBOLS_PER_TERM = 5;
/** A range cut to fit the budget keeps at least this many lines, else it is left out. */
const MIN_CUT_LINES = 3;
/** Bytes read per range (a minified line can be huge); the budget trims further. */
const READ_MAX_BYTES = 256 * 1024;

type SearchSources = Pick<SearchDomain, "roots" | "search" | "symbols" | "tools">;

/** One ranked line range from one source. */
interface Candidate {
  rootDir: string;
  path: string;
  startLine: number;
  endLine: number;
  symbol: string;
  source: RetrievalSource;
}

interface FusedRange {
  rootDir: string;
  path: string;
  startLine: number;
  endLine: number;
  symbol: string;
  /** Each source's best reciprocal rank in the range: one source counts once, however often it hit. */
  bySource: Map<RetrievalSource, number>;
  /** The sum of bySource. */
  score: number;
}

export class ContextRetriever {
  constructor(private readonly search: SearchSources) {}

  async retrieve(question: string, options: RetrievalOptions, signal?: AbortSignal): Promise<RetrievedContext> {
    const query = (options.query?.trim() || question.trim()).slice(0, MAX_QUERY_CHARS);
    if (!query)
      throw invalidArgument("retrieval needs a query: set retrieval.query or send a user message", "retrieval.query");
    const budgetTokens = bounded(
      options.maxContextTokens,
      DEFAULT_CONTEXT_TOKENS,
      MAX_CONTEXT_TOKENS,
      "retrieval.max_context_tokens",
    );
    const maxCitations = bounded(options.maxCitations, DEFAULT_CITATIONS, MAX_CITATIONS, "retrieval.max_citations");
    const sources = options.sources?.length ? [...new Set(options.sources)] : [...RETRIEVAL_SOURCES];
    const pathGlobs = options.pathGlobs ?? [];
    const pathOk = pathGlobFilter(pathGlobs, "retrieval.path_globs");
    const roots = options.root
      ? [this.search.roots.get(options.root, "retrieval.root")]
      : [...this.search.roots.list()];

    const notices: string[] = [];
    const terms = queryTerms(query);
    const rankings = await Promise.all(
      sources.map(async (source) => {
        try {
          const ranked = await this.fromSource(source, query, terms, roots, pathGlobs, maxCitations, notices, signal);
          return ranked.filter((c) => pathOk(c.path));
        } catch (err) {
          const e = asGatewayError(err);
          if (e.kind === "canceled") throw e;
          notices.push(`${source}: ${e.message}`);
          return [];
        }
      }),
    );
    const ranges = fuse(rankings);
    const entries = await this.fitBudget(ranges, roots, budgetTokens, maxCitations, notices);
    const prompt = buildContextPrompt(entries);
    return { query, citations: entries.map((e) => e.citation), prompt, tokens: estimateTokens(prompt), notices };
  }

  private fromSource(
    source: RetrievalSource,
    query: string,
    terms: QueryTerms,
    roots: SearchRoot[],
    pathGlobs: string[],
    maxCitations: number,
    notices: string[],
    signal?: AbortSignal,
  ): Promise<Candidate[]> {
    if (source === "search") return this.fromSearch(query, roots, pathGlobs, maxCitations, notices);
    if (source === "symbols") {
      const names = [...terms.identifiers, ...terms.words];
      if (!names.length) notices.push("symbols: the query names no identifiers");
      return this.fromSymbols(names, roots, pathGlobs);
    }
    if (!terms.identifiers.length) {
      notices.push("grep: the query names no identifiers");
      return Promise.resolve([]);
    }
    return this.fromGrep(terms.identifiers, roots, signal);
  }

  private async fromSearch(
    query: string,
    roots: SearchRoot[],
    pathGlobs: string[],
    maxCitations: number,
    notices: string[],
  ): Promise<Candidate[]> {
    const r = await this.search.search.search({
      query,
      roots: roots.map((x) => x.dir),
      limit: Math.min(100, maxCitations * 2),
      pathGlobs,
    });
    if (r.lexicalOnly) notices.push(`search: lexical only (${r.lexicalOnlyReason})`);
    return r.hits.map(({ chunk }) => ({
      rootDir: chunk.root,
      path: chunk.path,
      startLine: chunk.startLine,
      endLine: chunk.endLine,
      symbol: chunk.symbol,
      source: "search",
    }));
  }

  private async fromSymbols(names: string[], roots: SearchRoot[], pathGlobs: string[]): Promise<Candidate[]> {
    const perName = await Promise.all(
      names.map((name) =>
        this.search.symbols.find({
          query: name,
          mode: SymbolMatchMode.EXACT,
          caseSensitive: false,
          roots: roots.map((x) => x.dir),
          pathGlobs,
          limit: SYMBOLS_PER_TERM,
        }),
      ),
    );
    return perName.flatMap((r) =>
      r.symbols.map((s) => ({
        rootDir: s.root,
        path: s.path,
        startLine: s.startLine,
        endLine: Math.min(s.endLine, s.startLine + MAX_SYMBOL_LINES - 1),
        symbol: s.container ? `${s.container}.${s.name}` : s.name,
        source: "symbols" as const,
      })),
    );
  }

  /**
   * Whole-word, case-sensitive occurrences of the identifiers. grep answers in path order, so files
   * are ranked here: more distinct identifiers first, then more occurrences.
   */
  private async fromGrep(identifiers: string[], roots: SearchRoot[], signal?: AbortSignal): Promise<Candidate[]> {
    const pattern = alternationOf(identifiers);
    const results = await Promise.all(
      roots.map((root) =>
        grep(
          this.search.roots,
          { pattern, caseMode: "sensitive", wholeWord: true, root: root.name, maxMatches: GREP_MAX_MATCHES },
          { tools: this.search.tools, signal },
        ).then((r) => ({ root, matches: r.matches })),
      ),
    );
    const files: { rootDir: string; path: string; matches: GrepMatch[]; terms: Set<string> }[] = [];
    for (const { root, matches } of results) {
      const byPath = new Map<string, (typeof files)[number]>();
      for (const m of matches) {
        let f = byPath.get(m.path);
        if (!f) byPath.set(m.path, (f = { rootDir: root.dir, path: m.path, matches: [], terms: new Set() }));
        f.matches.push(m);
        for (const s of m.submatches) f.terms.add(s.text);
      }
      files.push(...byPath.values());
    }
    files.sort((a, b) => b.terms.size - a.terms.size || b.matches.length - a.matches.length);
    return files.flatMap((f) =>
      f.matches.slice(0, GREP_MATCHES_PER_FILE).map((m) => ({
        rootDir: f.rootDir,
        path: f.path,
        startLine: Math.max(1, m.line - GREP_CONTEXT_LINES),
        endLine: m.line + GREP_CONTEXT_LINES,
        symbol: "",
        source: "grep" as const,
      })),
    );
  }

  /** Reads the best ranges and keeps them, best first, while they fit; the last one may be cut. */
  private async fitBudget(
    ranges: FusedRange[],
    roots: SearchRoot[],
    budgetTokens: number,
    maxCitations: number,
    notices: string[],
  ): Promise<PromptEntry[]> {
    const byDir = new Map(roots.map((r) => [r.dir, r]));
    const multiRoot = this.search.roots.list().length > 1;
    const wanted = ranges.slice(0, maxCitations * 2);
    const texts = await Promise.all(
      wanted.map(async (r) => {
        const root = byDir.get(r.rootDir);
        if (!root) return undefined;
        try {
          const f = await readFileLines(this.search.roots, {
            root: root.name,
            path: r.path,
            range: { startLine: r.startLine, endLine: r.endLine },
            maxBytes: READ_MAX_BYTES,
          });
          if (f.binary || !f.content) return undefined;
          return { text: f.content.replace(/\r?\n$/, ""), startLine: f.startLine, language: f.language };
        } catch (err) {
          notices.push(`${r.path}: ${asGatewayError(err).message}`);
          return undefined;
        }
      }),
    );
    let remaining = contextBudgetChars(budgetTokens);
    const entries: PromptEntry[] = [];
    for (const [i, r] of wanted.entries()) {
      const read = texts[i];
      if (!read || entries.length >= maxCitations) continue;
      const root = byDir.get(r.rootDir)!;
      const all = read.text.split(/\r?\n/);
      const label = multiRoot ? `${root.name}/${r.path}` : r.path;
      // Whole lines while they fit; a range cut too short is left out for a smaller one further down.
      let used = overheadChars(label, r.symbol, read.text, read.startLine, all.length);
      let n = 0;
      while (n < all.length) {
        const add = all[n]!.length + (n > 0 ? 1 : 0);
        if (used + add > remaining) break;
        used += add;
        n++;
      }
      if (n < Math.min(MIN_CUT_LINES, all.length)) continue;
      remaining -= used;
      const lines = all.slice(0, n);
      const endLine = read.startLine + lines.length - 1;
      const citation: Citation = {
        label: citationLabel(label, read.startLine, endLine),
        root: root.name,
        path: r.path,
        startLine: read.startLine,
        endLine,
        sources: RETRIEVAL_SOURCES.filter((s) => r.bySource.has(s)),
        score: r.score,
        symbol: r.symbol,
        text: lines.join("\n"),
      };
      entries.push({ citation, language: read.language });
    }
    return entries;
  }
}

/**
 * A citation's heading, fences and separators in characters: the label twice over (heading and its
 * path), the symbol, fences longer than any backtick run in the text, and 40 for the rest.
 */
function overheadChars(path: string, symbol: string, text: string, startLine: number, lines: number): number {
  const longestTicks = Math.max(3, ...[...text.matchAll(/`{3,}/g)].map((m) => m[0].length + 1));
  return path.length + symbol.length + String(startLine + lines).length * 2 + longestTicks * 2 + 40;
}

/**
 * Reciprocal-rank fusion over the sources' rankings, then merging of one file's overlapping or
 * adjacent ranges: a range found by several sources gathers their scores (each source's best). Best
 * first.
 */
export function fuse(rankings: Candidate[][]): FusedRange[] {
  const scored: { c: Candidate; score: number }[] = [];
  for (const ranking of rankings)
    for (const [i, c] of ranking.entries()) scored.push({ c, score: 1 / (RRF_K + i + 1) });
  scored.sort((a, b) => b.score - a.score);

  const byFile = new Map<string, FusedRange[]>();
  for (const { c, score } of scored) {
    const key = `${c.rootDir}\0${c.path}`;
    let list = byFile.get(key);
    if (!list) byFile.set(key, (list = []));
    let start = c.startLine;
    let end = Math.max(c.startLine, c.endLine);
    let placed = false;
    for (const r of list) {
      if (start > r.endLine + MERGE_GAP || end < r.startLine - MERGE_GAP) continue;
      const unionStart = Math.min(start, r.startLine);
      const unionEnd = Math.max(end, r.endLine);
      const inside = start >= r.startLine && end <= r.endLine;
      if (inside || unionEnd - unionStart + 1 <= MAX_MERGED_LINES) {
        r.startLine = unionStart;
        r.endLine = unionEnd;
        r.bySource.set(c.source, Math.max(score, r.bySource.get(c.source) ?? 0));
        // A declaration the question named labels the range better than the first one in it.
        if (c.source === "symbols") r.symbol = c.symbol;
        else r.symbol ||= c.symbol;
        placed = true;
        break;
      }
      // Too long to merge: keep only the part outside the existing range.
      if (start < r.startLine) end = r.startLine - 1;
      else start = r.endLine + 1;
      if (end < start) break;
    }
    if (!placed && end >= start)
      list.push({
        rootDir: c.rootDir,
        path: c.path,
        startLine: start,
        endLine: end,
        symbol: c.symbol,
        score: 0,
        bySource: new Map([[c.source, score]]),
      });
  }

  // A range that grew may now overlap a neighbour: cut the later one so no line is cited twice.
  const out: FusedRange[] = [];
  for (const list of byFile.values()) {
    list.sort((a, b) => a.startLine - b.startLine);
    let lastEnd = 0;
    for (const r of list) {
      if (r.startLine <= lastEnd) r.startLine = lastEnd + 1;
      if (r.endLine < r.startLine) continue;
      lastEnd = r.endLine;
      out.push(r);
    }
  }
  for (const r of out) r.score = [...r.bySource.values()].reduce((a, b) => a + b, 0);
  return out.sort((a, b) => b.score - a.score);
}

function bounded(value: number | undefined, fallback: number, max: number, field: string): number {
  if (value === undefined || value === 0) return fallback;
  if (!Number.isInteger(value) || value < 0 || value > max)
    throw invalidArgument(`${field} must be an integer from 0 to ${max}`, field);
  return value;
}
