/**
 * What full-text search sees of code. Postgres' parsers keep `parseConfigFile` and `parse_config` as
 * one token, so a query for "parse config" would miss both: identifiers are split here (camelCase,
 * PascalCase, snake_case, kebab-case, letters/digits) and indexed both whole and in parts, together
 * with the words of the file's path. The result goes through `to_tsvector('english', ...)`, which
 * stems and drops stop words; queries are split the same way and OR-ed (the ranking, BM25 in
 * lexical-search.ts, rewards chunks that match more and rarer terms).
 */

/** Longest identifier kept whole; longer runs are usually data (hashes, base64). */
const MAX_IDENTIFIER = 64;
/** Terms kept from one query (a pasted stack trace should not become a 500-term query). */
export const MAX_QUERY_TERMS = 32;

const IDENTIFIER = /[\p{L}\p{N}_]+/gu;
/** Boundaries inside an identifier: fooBar, FOOBar, foo_bar, foo2bar. */
const PARTS = /\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lu}+|\p{N}+/gu;

/** The identifier's parts, lower-cased: "parseHTTPConfig2" -> parse, http, config, 2. */
export function identifierParts(identifier: string): string[] {
  return (identifier.match(PARTS) ?? []).map((p) => p.toLowerCase());
}

/** Terms of a text: every identifier whole (lower-cased) and, when compound, its parts. */
export function codeTerms(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(IDENTIFIER)) {
    const word = m[0].replace(/^_+|_+$/g, "");
    if (word.length < 2 || word.length > MAX_IDENTIFIER) continue;
    const lower = word.toLowerCase();
    out.push(lower);
    const parts = identifierParts(word).filter((p) => p.length > 1);
    if (parts.length > 1) for (const p of parts) out.push(p);
  }
  return out;
}

/** The text handed to to_tsvector for a chunk: its code terms plus its path's. */
export function chunkLexemeText(path: string, text: string): string {
  return [...codeTerms(path), ...codeTerms(text)].join(" ");
}

/** A query's distinct terms, in order, capped (input to to_tsvector, then OR-ed as a tsquery). */
export function queryTerms(query: string): string[] {
  return [...new Set(codeTerms(query))].slice(0, MAX_QUERY_TERMS);
}
