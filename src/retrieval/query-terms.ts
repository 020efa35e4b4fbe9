/**
 * The identifiers a question names, for the symbol and grep sources. The earlier codex-context sent the
 * whole question to grep as a regular expression (seed-systems.md §5 item 1); here grep only ever sees
 * identifiers, escaped, so a question cannot be read as a pattern, let alone as a flag.
 */

const MAX_TERMS = 8;
const MIN_WORD = 5;

/** Words too common in questions to name a declaration. */
const STOPWORDS = new Set(
  (
    "about above after again against because before being below between could does doing during every " +
    "function functions method methods class classes where which while would there their these those " +
    "should other under until value values works happen happens called calls return returns string " +
    "number object explain please using without within through"
  ).split(" "),
);

const TOKEN = /[A-Za-z_$][\w$]*(?:(?:\.|::)[A-Za-z_$][\w$]*)*/g;

/** camelCase, PascalCase with a second capital, snake_case, digits inside, or a `$`. */
function looksLikeIdentifier(word: string): boolean {
  return /[a-z][A-Z]|[A-Z][a-z]+[A-Z]|_|\$|[A-Za-z]\d/.test(word) && word.length >= 3;
}

export interface QueryTerms {
  /** Identifier-like tokens: grepped as whole words and looked up as symbol names. */
  identifiers: string[];
  /** Longer plain words: looked up as symbol names only (a declaration called `backoff`). */
  words: string[];
}

export function queryTerms(question: string): QueryTerms {
  const identifiers = new Set<string>();
  const words = new Set<string>();
  const backticked = new Set<string>();
  for (const m of question.matchAll(/`([^`\n]{1,200})`/g)) for (const t of m[1]!.match(TOKEN) ?? []) backticked.add(t);
  for (const token of question.match(TOKEN) ?? []) {
    // `config.searchRoots` and `Foo::bar` name both parts; the last is usually the declaration.
    const parts = token.split(/\.|::/);
    for (const part of parts) {
      if (part.length < 2) continue;
      if (backticked.has(token) || parts.length > 1 || looksLikeIdentifier(part)) identifiers.add(part);
      else if (part.length >= MIN_WORD && !STOPWORDS.has(part.toLowerCase())) words.add(part.toLowerCase());
    }
  }
  for (const id of identifiers) words.delete(id.toLowerCase());
  return { identifiers: [...identifiers].slice(0, MAX_TERMS), words: [...words].slice(0, MAX_TERMS) };
}

/** A regular expression matching any of the identifiers literally. */
export function alternationOf(identifiers: readonly string[]): string {
  return identifiers.map((t) => t.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
}
