import { extname } from "node:path";
import {
  C_QUERY,
  CPP_QUERY,
  GO_QUERY,
  JAVA_QUERY,
  JAVASCRIPT_QUERY,
  PYTHON_QUERY,
  RUBY_QUERY,
  RUST_QUERY,
  TYPESCRIPT_QUERY,
} from "./queries.js";

/** A language the symbol extractor and the chunker understand. */
export interface LanguageSpec {
  /** Stable id reported to clients ("typescript"; TSX reports "typescript", JSX "javascript"). */
  id: string;
  /** Grammar wasm name in @repomix/tree-sitter-wasms (tree-sitter-<grammar>.wasm). */
  grammar: string;
  extensions: readonly string[];
  query: string;
  /** Sibling node types just before a declaration that belong to it (decorators, attributes). */
  leadingTypes: ReadonlySet<string>;
}

const none = new Set<string>();

export const LANGUAGES: readonly LanguageSpec[] = [
  {
    id: "typescript",
    grammar: "typescript",
    extensions: [".ts", ".mts", ".cts"],
    query: TYPESCRIPT_QUERY,
    leadingTypes: new Set(["decorator"]),
  },
  // TSX needs its own grammar (JSX and `<T>` casts conflict), but it is the same language to a user.
  {
    id: "typescript",
    grammar: "tsx",
    extensions: [".tsx"],
    query: TYPESCRIPT_QUERY,
    leadingTypes: new Set(["decorator"]),
  },
  // tree-sitter-javascript parses JSX natively.
  {
    id: "javascript",
    grammar: "javascript",
    extensions: [".js", ".mjs", ".cjs", ".jsx"],
    query: JAVASCRIPT_QUERY,
    leadingTypes: new Set(["decorator"]),
  },
  { id: "python", grammar: "python", extensions: [".py", ".pyi"], query: PYTHON_QUERY, leadingTypes: none },
  { id: "go", grammar: "go", extensions: [".go"], query: GO_QUERY, leadingTypes: none },
  { id: "rust", grammar: "rust", extensions: [".rs"], query: RUST_QUERY, leadingTypes: new Set(["attribute_item"]) },
  { id: "java", grammar: "java", extensions: [".java"], query: JAVA_QUERY, leadingTypes: none },
  { id: "c", grammar: "c", extensions: [".c", ".h"], query: C_QUERY, leadingTypes: none },
  {
    id: "cpp",
    grammar: "cpp",
    extensions: [".cc", ".cpp", ".cxx", ".c++", ".hh", ".hpp", ".hxx"],
    query: CPP_QUERY,
    leadingTypes: none,
  },
  { id: "ruby", grammar: "ruby", extensions: [".rb", ".rake"], query: RUBY_QUERY, leadingTypes: none },
];

const byExtension = new Map<string, LanguageSpec>();
for (const spec of LANGUAGES) for (const ext of spec.extensions) byExtension.set(ext, spec);

/** The language for a path by its extension (case-insensitive), or undefined when none has a grammar. */
export function languageForPath(path: string): LanguageSpec | undefined {
  return byExtension.get(extname(path).toLowerCase());
}

/** The distinct language ids (the values FindSymbols' `language` filter accepts). */
export const LANGUAGE_IDS: readonly string[] = [...new Set(LANGUAGES.map((l) => l.id))];
