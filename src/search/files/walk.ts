/**
 * Directory walking with ripgrep's rules, so the builtin grep and ListFiles see the same files
 * rg does: entries in byte order of their names, depth first; symlinks found while walking are
 * never followed; `.git` is always skipped; request globs, then .gitignore, then hidden-ness.
 */
import type { Dirent } from "node:fs";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { IgnoreScope } from "./gitignore.js";
import type { OverrideGlobs } from "./glob.js";

export interface FilterOptions {
  includeHidden: boolean;
  respectGitignore: boolean;
  overrides?: OverrideGlobs;
}

/** ripgrep's order of decisions (ignore crate `Ignore::matched`), minus the sources we disable. */
export function includeEntry(
  opts: FilterOptions,
  scope: IgnoreScope,
  rel: string,
  name: string,
  isDir: boolean,
): boolean {
  if (name === ".git") return false;
  const o = opts.overrides?.matched(rel, isDir);
  if (o === "ignore") return false;
  if (o === "whitelist") return true;
  const g = opts.respectGitignore ? scope.match(rel, isDir) : undefined;
  if (g === "ignore") return false;
  if (g !== "whitelist" && !opts.includeHidden && name.startsWith(".")) return false;
  return true;
}

export function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

/** Directory entries sorted by name bytes; an unreadable directory reads as empty. */
export async function readDirSorted(abs: string): Promise<Dirent[]> {
  let entries: Dirent[];
  try {
    entries = await readdir(abs, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.sort((a, b) => compareNames(a.name, b.name));
}

/**
 * Regular files under dirRel (relative to rootDir), depth first in name order. The scope must
 * be the one for dirRel (IgnoreScope.forDirectory).
 */
export async function* walkFiles(
  rootDir: string,
  dirRel: string,
  scope: IgnoreScope,
  opts: FilterOptions,
  signal?: AbortSignal,
): AsyncGenerator<string> {
  const here = scope;
  for (const e of await readDirSorted(path.join(rootDir, dirRel))) {
    if (signal?.aborted) return;
    const rel = dirRel ? `${dirRel}/${e.name}` : e.name;
    const isDir = e.isDirectory();
    if (!isDir && !e.isFile()) continue; // symlinks, sockets, fifos: not while walking
    if (!includeEntry(opts, here, rel, e.name, isDir)) continue;
    if (isDir) {
      const sub = opts.respectGitignore ? await here.child(rootDir, rel) : here;
      yield* walkFiles(rootDir, rel, sub, opts, signal);
    } else {
      yield rel;
    }
  }
}

/** Compares "/"-separated paths in walk order (component by component, by bytes). */
export function compareWalkOrder(a: string, b: string): number {
  const pa = a.split("/");
  const pb = b.split("/");
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const c = compareNames(pa[i], pb[i]);
    if (c) return c;
  }
  return pa.length - pb.length;
}
