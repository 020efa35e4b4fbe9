/**
 * Gitignore-style globs, shared by .gitignore rules and request globs (ripgrep builds its `-g`
 * overrides with the same gitignore rules, so both grep engines agree). Compiled to RE2 with
 * re2js: globs come from clients and from files inside the roots, and a backtracking RegExp on
 * `*a*a*a*b` is polynomial.
 */
import { RE2JS } from "re2js";
import { GatewayError } from "../../errors/gateway-error.js";

export interface CompiledGlob {
  /** Matches a path relative to the glob's base directory. */
  re: RE2JS;
  /** Only directories match. */
  dirOnly: boolean;
  /** Negated (`!` prefix). */
  negate: boolean;
  source: string;
}

export const MAX_GLOB_LENGTH = 1024;

/**
 * Parses one gitignore line. Returns undefined for blank lines and comments. A pattern with
 * no "/" (besides a trailing one) matches a name at any depth; otherwise it is anchored to the
 * base directory.
 */
export function compileGlob(line: string): CompiledGlob | undefined {
  let s = line;
  if (s.endsWith("\r")) s = s.slice(0, -1);
  s = trimTrailingSpaces(s);
  if (s === "" || s.startsWith("#")) return undefined;
  let negate = false;
  if (s.startsWith("!")) {
    negate = true;
    s = s.slice(1);
  } else if (s.startsWith("\\!") || s.startsWith("\\#")) {
    s = s.slice(1);
  }
  let dirOnly = false;
  if (s.endsWith("/") && !s.endsWith("\\/")) {
    dirOnly = true;
    s = s.slice(0, -1);
  }
  if (s === "") return undefined;
  const anchored = s.includes("/");
  if (s.startsWith("/")) s = s.slice(1);
  if (!anchored && !s.startsWith("**/")) s = `**/${s}`;
  const re = RE2JS.compile(`^${globToRegex(s)}$`, RE2JS.DOTALL);
  return { re, dirOnly, negate, source: line };
}

/** Translates glob syntax (`*`, `?`, `[...]`, `**`, `\x`) into an RE2 expression. */
export function globToRegex(glob: string): string {
  let out = "";
  let i = 0;
  const n = glob.length;
  while (i < n) {
    const c = glob[i];
    if (c === "*") {
      if (glob[i + 1] === "*") {
        const atStart = i === 0 || glob[i - 1] === "/";
        const atEnd = i + 2 === n || glob[i + 2] === "/";
        if (atStart && atEnd) {
          if (i + 2 === n) {
            // "a/**" matches everything inside a; a lone "**" matches everything.
            out += i === 0 ? ".*" : ".+";
            i += 2;
          } else {
            out += "(?:.*/)?";
            i += 3;
          }
          continue;
        }
        // "a**b" acts like "a*b", as in git.
        while (glob[i] === "*") i++;
        out += "[^/]*";
        continue;
      }
      out += "[^/]*";
      i++;
    } else if (c === "?") {
      out += "[^/]";
      i++;
    } else if (c === "[") {
      const cls = readClass(glob, i);
      if (cls) {
        out += cls.regex;
        i = cls.next;
      } else {
        out += "\\[";
        i++;
      }
    } else if (c === "\\" && i + 1 < n) {
      out += quoteChar(glob[i + 1]);
      i += 2;
    } else {
      out += quoteChar(c);
      i++;
    }
  }
  return out;
}

function readClass(glob: string, start: number): { regex: string; next: number } | undefined {
  let i = start + 1;
  let negate = false;
  if (glob[i] === "!" || glob[i] === "^") {
    negate = true;
    i++;
  }
  let body = "";
  let first = true;
  while (i < glob.length) {
    const c = glob[i];
    if (c === "]" && !first) {
      // A class never matches "/" (paths are matched segment-wise).
      return { regex: negate ? `[^/${body}]` : `[${body}]`, next: i + 1 };
    }
    first = false;
    if (c === "\\" && i + 1 < glob.length) {
      body += escapeClassChar(glob[i + 1]);
      i += 2;
    } else if (c === "-") {
      body += "-";
      i++;
    } else {
      body += escapeClassChar(c);
      i++;
    }
  }
  return undefined;
}

function escapeClassChar(c: string): string {
  return /[\\\]\[^-]/.test(c) ? `\\${c}` : c;
}

function quoteChar(c: string): string {
  return /[\\.+*?()|[\]{}^$]/.test(c) ? `\\${c}` : c;
}

function trimTrailingSpaces(s: string): string {
  let end = s.length;
  while (end > 0 && s[end - 1] === " " && s[end - 2] !== "\\") end--;
  s = s.slice(0, end);
  return s.endsWith("\\ ") ? `${s.slice(0, -2)} ` : s;
}

/** How a path fared against a list of rules: the last matching rule decides. */
export type RuleMatch = "ignore" | "whitelist" | undefined;

export function matchRules(rules: readonly CompiledGlob[], rel: string, isDir: boolean): RuleMatch {
  for (let i = rules.length - 1; i >= 0; i--) {
    const r = rules[i];
    if (r.dirOnly && !isDir) continue;
    if (r.re.testExact(rel)) return r.negate ? "whitelist" : "ignore";
  }
  return undefined;
}

/**
 * Request globs with ripgrep's override semantics: a matching glob includes a file even when
 * .gitignore excludes it; "!glob" excludes; with any include glob, files matching none are
 * excluded (directories are still entered). The last matching glob wins.
 */
export class OverrideGlobs {
  private readonly rules: CompiledGlob[];
  private readonly hasIncludes: boolean;

  constructor(globs: readonly string[], field = "globs") {
    this.rules = [];
    globs.forEach((g, i) => {
      if (typeof g !== "string" || g.length > MAX_GLOB_LENGTH || g.includes("\0") || g.includes("\n")) {
        throw new GlobError(`${field}[${i}] is not a valid glob`, `${field}[${i}]`);
      }
      let compiled: CompiledGlob | undefined;
      try {
        // Overrides invert gitignore: a plain glob includes, "!glob" excludes.
        compiled = compileGlob(g.startsWith("!") ? g.slice(1) : `!${g}`);
      } catch {
        throw new GlobError(`${field}[${i}] is not a valid glob`, `${field}[${i}]`);
      }
      if (compiled) this.rules.push(compiled);
    });
    this.hasIncludes = this.rules.some((r) => r.negate);
  }

  get empty(): boolean {
    return this.rules.length === 0;
  }

  matched(rel: string, isDir: boolean): RuleMatch {
    const m = matchRules(this.rules, rel, isDir);
    if (m) return m;
    return this.hasIncludes && !isDir ? "ignore" : undefined;
  }
}

/**
 * A path filter from request globs ("src/**\/*.ts", "*.md": a glob without "/" matches a name at
 * any depth, as in .gitignore); a path passes when any glob matches it, every path when there are none.
 * Unlike OverrideGlobs nothing here overrides .gitignore: it filters what an index already holds.
 */
export function pathGlobFilter(globs: readonly string[], field: string): (path: string) => boolean {
  if (globs.length === 0) return () => true;
  const compiled = globs.map((g, i) => {
    const bad = () =>
      new GatewayError("invalid_argument", `${field}[${i}] is not a valid glob`, { param: `${field}[${i}]` });
    if (typeof g !== "string" || g.length > MAX_GLOB_LENGTH || g.includes("\0") || g.includes("\n")) throw bad();
    let c: CompiledGlob | undefined;
    try {
      c = compileGlob(g);
    } catch {
      throw bad();
    }
    if (!c || c.negate) throw bad();
    return c.re;
  });
  return (p) => compiled.some((re) => re.matches(p));
}

export class GlobError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}
