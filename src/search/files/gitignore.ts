/**
 * .gitignore files at any depth, each re-rooted at its own directory (the earlier bridge
 * applied nested files as if they sat at the root, seed-systems.md §5 item 23). Only files
 * inside the search root count: what lies above it is not ours to read. `.git/` is always
 * excluded by the walker, not here.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { compileGlob, matchRules, type CompiledGlob, type RuleMatch } from "./glob.js";

/** Bigger .gitignore files are read only up to this size. */
const MAX_GITIGNORE_BYTES = 1 << 20;

/** The rules in effect in one directory: its own .gitignore, then its parents'. */
export class IgnoreScope {
  private constructor(
    /** The directory, relative to the root ("" for the root). */
    readonly dirRel: string,
    private readonly rules: readonly CompiledGlob[],
    readonly parent: IgnoreScope | undefined,
  ) {}

  static readonly EMPTY = new IgnoreScope("", [], undefined);

  /** The scope for dirRel (under this scope's directory), reading its .gitignore if any. */
  async child(rootDir: string, dirRel: string): Promise<IgnoreScope> {
    const rules = await readGitignore(path.join(rootDir, dirRel, ".gitignore"));
    return rules.length ? new IgnoreScope(dirRel, rules, this) : this;
  }

  /** Builds the scope of dirRel from the root down (for a search that starts below the root). */
  static async forDirectory(rootDir: string, dirRel: string): Promise<IgnoreScope> {
    let scope = await IgnoreScope.EMPTY.child(rootDir, "");
    const parts = dirRel ? dirRel.split("/") : [];
    for (let i = 1; i <= parts.length; i++) scope = await scope.child(rootDir, parts.slice(0, i).join("/"));
    return scope;
  }

  /** Deeper .gitignore files win; within one file the last matching line wins. */
  match(rel: string, isDir: boolean): RuleMatch {
    for (let s: IgnoreScope | undefined = this; s; s = s.parent) {
      if (!s.rules.length) continue;
      const local = s.dirRel ? rel.slice(s.dirRel.length + 1) : rel;
      const m = matchRules(s.rules, local, isDir);
      if (m) return m;
    }
    return undefined;
  }

  /** Every scope from the root down with its rules, for re-rooting into one ignore file. */
  chain(): { dirRel: string; rules: readonly CompiledGlob[] }[] {
    const out: { dirRel: string; rules: readonly CompiledGlob[] }[] = [];
    for (let s: IgnoreScope | undefined = this; s; s = s.parent) {
      if (s.rules.length) out.unshift({ dirRel: s.dirRel, rules: s.rules });
    }
    return out;
  }
}

export function parseGitignore(text: string): CompiledGlob[] {
  const out: CompiledGlob[] = [];
  for (const line of text.split("\n")) {
    try {
      const g = compileGlob(line);
      if (g) out.push(g);
    } catch {
      // git skips lines it cannot parse; so do we.
    }
  }
  return out;
}

async function readGitignore(file: string): Promise<CompiledGlob[]> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch {
    return [];
  }
  return parseGitignore(buf.subarray(0, MAX_GITIGNORE_BYTES).toString("utf8"));
}

/**
 * One gitignore line re-rooted from its directory to the root, for ripgrep's --ignore-file
 * (whose patterns are matched relative to its working directory, the root).
 */
export function rerootRule(rule: CompiledGlob, dirRel: string): string {
  let s = rule.source.endsWith("\r") ? rule.source.slice(0, -1) : rule.source;
  let bang = "";
  if (s.startsWith("!")) {
    bang = "!";
    s = s.slice(1);
  }
  if (!dirRel) return bang + s;
  const body = s.replace(/^\//, "");
  const anchored = body.replace(/\/+$/, "").includes("/") || s.startsWith("/");
  return `${bang}/${escapeGlobLiteral(dirRel)}/${anchored ? body : `**/${body}`}`;
}

function escapeGlobLiteral(s: string): string {
  return s.replace(/[\\*?[\]!# ]/g, (c) => `\\${c}`);
}
