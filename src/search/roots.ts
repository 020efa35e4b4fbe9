/**
 * The directories SearchService may touch (SEARCH_ROOTS) and the one function that turns a
 * client's path into a host path inside one of them. The earlier bridge joined paths with no
 * containment check (seed-systems.md §5 items 2 and 6); everything here fails closed.
 */
import { lstat, readlink, realpath, stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import path from "node:path";
import { GatewayError } from "../errors/gateway-error.js";

export interface SearchRoot {
  /** Name clients use (the directory's base name, made unique). */
  name: string;
  /** Absolute, realpath'd directory. */
  dir: string;
  /** The directory as configured (may differ from dir through symlinks). */
  configured: string;
}

export interface ResolvedPath {
  root: SearchRoot;
  /** Path relative to the root, "/"-separated, "" for the root itself. */
  rel: string;
  /** Real host path (symlinks resolved, or the would-be path for a missing file); use it for IO. */
  abs: string;
  /** stat() of abs, undefined when nothing exists there. */
  stats?: Stats;
}

export interface ResolveOptions {
  /** Root name; empty or undefined means the first root. */
  root?: string;
  /** Request field named in errors ("path", "paths[2]"). */
  field?: string;
  /** Field name of the root, for errors. */
  rootField?: string;
  /** Allow paths under a `.git` directory (never for writes or listings). */
  allowGit?: boolean;
}

export const MAX_PATH_LENGTH = 4096;
const MAX_LINK_HOPS = 40;

export class SearchRoots {
  private constructor(private readonly roots: SearchRoot[]) {}

  /** Realpaths each configured directory; a missing one fails (config error, not a request error). */
  static async create(dirs: readonly string[]): Promise<SearchRoots> {
    if (dirs.length === 0) throw new Error("at least one search root is needed");
    const used = new Set<string>();
    const roots: SearchRoot[] = [];
    for (const configured of dirs) {
      const dir = await realpath(path.resolve(configured));
      const st = await stat(dir);
      if (!st.isDirectory()) throw new Error(`search root ${configured} is not a directory`);
      const base = path.basename(dir) || "root";
      let name = base;
      for (let i = 2; used.has(name); i++) name = `${base}-${i}`;
      used.add(name);
      roots.push({ name, dir, configured: path.resolve(configured) });
    }
    return new SearchRoots(roots);
  }

  list(): readonly SearchRoot[] {
    return this.roots;
  }

  /** The named root (its name or its directory); the first root when name is empty. */
  get(name: string | undefined, field = "root"): SearchRoot {
    if (!name) return this.roots[0];
    const found = this.roots.find((r) => r.name === name || r.dir === name || r.configured === name);
    if (!found) {
      throw new GatewayError("invalid_argument", `unknown root "${clip(name)}"; roots: ${this.names()}`, {
        param: field,
      });
    }
    return found;
  }

  /** The innermost root whose directory holds abs (lexically), if any. */
  containing(abs: string): SearchRoot | undefined {
    let best: SearchRoot | undefined;
    for (const r of this.roots) {
      const base = [r.dir, r.configured].find((d) => isInside(d, abs));
      if (base !== undefined && (!best || base.length > best.dir.length)) best = r;
    }
    return best;
  }

  names(): string {
    return this.roots.map((r) => r.name).join(", ");
  }

  /**
   * Resolves a client path inside a root. Relative paths are relative to the root; absolute
   * ones must lie inside it. Refuses NUL bytes and `..` segments (invalid_argument), and a
   * path whose real location (symlinks followed, for the longest existing prefix) leaves the
   * root or enters `.git` (permission_denied).
   */
  async resolve(clientPath: string, opts: ResolveOptions = {}): Promise<ResolvedPath> {
    const field = opts.field ?? "path";
    // An absolute path with no root named picks the (innermost) root that contains it.
    const root =
      !opts.root && typeof clientPath === "string" && path.isAbsolute(clientPath)
        ? (this.containing(path.resolve(clientPath)) ?? this.roots[0])
        : this.get(opts.root, opts.rootField ?? "root");
    const rel = lexicalRelative(root, clientPath ?? "", field);
    if (!opts.allowGit && hasGitSegment(rel)) {
      throw new GatewayError("permission_denied", `${field} is inside .git, which is never exposed`, {
        param: field,
      });
    }
    const lexical = rel ? path.join(root.dir, ...rel.split("/")) : root.dir;
    const real = await resolveReal(lexical, 0);
    if (!isInside(root.dir, real)) {
      throw new GatewayError("permission_denied", `${field} leads outside the root (through a symlink)`, {
        param: field,
      });
    }
    const realRel = path.relative(root.dir, real).split(path.sep).join("/");
    if (!opts.allowGit && hasGitSegment(realRel)) {
      throw new GatewayError("permission_denied", `${field} leads into .git, which is never exposed`, {
        param: field,
      });
    }
    let stats: Stats | undefined;
    try {
      stats = await stat(real);
    } catch {
      stats = undefined;
    }
    return { root, rel, abs: real, stats };
  }
}

/** The path relative to the root, normalised; throws on NUL, `..` and absolute paths outside. */
function lexicalRelative(root: SearchRoot, p: string, field: string): string {
  if (typeof p !== "string") throw new GatewayError("invalid_argument", `${field} must be a string`, { param: field });
  if (p.length > MAX_PATH_LENGTH) {
    throw new GatewayError("invalid_argument", `${field} is longer than ${MAX_PATH_LENGTH} characters`, {
      param: field,
    });
  }
  if (p.includes("\0")) throw new GatewayError("invalid_argument", `${field} contains a NUL byte`, { param: field });
  let relative = p;
  if (path.isAbsolute(p)) {
    const normal = path.resolve(p);
    const base = [root.dir, root.configured].find((d) => isInside(d, normal));
    if (base === undefined) {
      throw new GatewayError("invalid_argument", `${field} is an absolute path outside root "${root.name}"`, {
        param: field,
      });
    }
    relative = path.relative(base, normal);
  }
  const parts = relative.split("/").filter((s) => s !== "" && s !== ".");
  if (parts.includes("..")) {
    throw new GatewayError("invalid_argument", `${field} may not contain ".." segments`, { param: field });
  }
  return parts.join("/");
}

/** True when `child` is `parent` or below it (both absolute, normalised). */
export function isInside(parent: string, child: string): boolean {
  const r = path.relative(parent, child);
  return r === "" || (!r.startsWith("..") && !path.isAbsolute(r));
}

/** True when any segment of a "/"-separated relative path is `.git`. */
export function hasGitSegment(rel: string): boolean {
  return rel.split("/").includes(".git");
}

/**
 * The real location of abs: realpath when it exists; for a dangling symlink its target
 * (followed by hand, so a write through it cannot land outside); otherwise the realpath of the
 * longest existing prefix plus the missing tail.
 */
async function resolveReal(abs: string, hops: number): Promise<string> {
  if (hops > MAX_LINK_HOPS) {
    throw new GatewayError("invalid_argument", "too many levels of symbolic links", { param: "path" });
  }
  try {
    return await realpath(abs);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  let st: Stats | undefined;
  try {
    st = await lstat(abs);
  } catch (err) {
    if (!isMissing(err)) throw err;
  }
  if (st?.isSymbolicLink()) {
    const target = path.resolve(path.dirname(abs), await readlink(abs));
    return resolveReal(target, hops + 1);
  }
  const parent = path.dirname(abs);
  if (parent === abs) return abs;
  return path.join(await resolveReal(parent, hops), path.basename(abs));
}

function isMissing(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return code === "ENOENT" || code === "ENOTDIR";
}

function clip(s: string): string {
  return s.length > 80 ? `${s.slice(0, 80)}…` : s;
}
