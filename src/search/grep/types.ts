/** Grep's request and answer, shaped to map one-to-one onto GrepRequest/GrepResponse. */

export type GrepCaseMode = "sensitive" | "insensitive" | "smart";

export interface GrepInput {
  pattern: string;
  literal?: boolean;
  caseMode?: GrepCaseMode;
  wholeWord?: boolean;
  root?: string;
  /** Files or directories relative to the root; empty for the whole root. */
  paths?: string[];
  /** Include globs; "!glob" excludes. ripgrep semantics: an include glob overrides .gitignore. */
  globs?: string[];
  /** 0..20. */
  contextLines?: number;
  /** 0 means 200; at most 10000. Exact across files. */
  maxMatches?: number;
  includeHidden?: boolean;
}

export interface GrepSubmatch {
  /** Byte offsets in lineText's UTF-8. */
  start: number;
  end: number;
  text: string;
}

export interface GrepContextLine {
  line: number;
  text: string;
}

export interface GrepMatch {
  root: string;
  path: string;
  line: number;
  /** 1-based byte column of the first submatch. */
  column: number;
  lineText: string;
  submatches: GrepSubmatch[];
  contextBefore: GrepContextLine[];
  contextAfter: GrepContextLine[];
}

export interface GrepResult {
  matches: GrepMatch[];
  truncated: boolean;
  filesSearched: number;
  engine: "ripgrep" | "builtin";
}

/** One file's raw hits as an engine found them (byte offsets into the raw line). */
export interface FileHits {
  path: string;
  matches: { line: number; raw: Uint8Array; subs: [number, number][] }[];
  /** Raw text (without line ending) of lines near matches, by line number. */
  lines: Map<number, Uint8Array>;
}
