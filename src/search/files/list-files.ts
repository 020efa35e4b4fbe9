/**
 * ListFiles: a directory's entries, flat or as a tree, to a depth, filtered by .gitignore,
 * hidden-ness and globs, and capped in count. Breadth first, so a cap cuts the deepest
 * entries, never a directory's own top level.
 */
import { lstat } from "node:fs/promises";
import path from "node:path";
import { GatewayError } from "../../errors/gateway-error.js";
import type { SearchRoots } from "../roots.js";
import { IgnoreScope } from "./gitignore.js";
import { GlobError, OverrideGlobs } from "./glob.js";
import { compareNames, includeEntry, readDirSorted, type FilterOptions } from "./walk.js";

export const DEFAULT_LIST_ENTRIES = 1000;
export const MAX_LIST_ENTRIES = 10_000;
export const MAX_LIST_DEPTH = 20;

export type FileEntryKind = "file" | "directory" | "symlink";

export interface FileEntry {
  name: string;
  /** Relative to the root, "/"-separated. */
  path: string;
  type: FileEntryKind;
  sizeBytes: number;
  modifiedAt: Date;
  /** Tree layout only. */
  children: FileEntry[];
  /** Tree layout: the directory has entries the depth limit left out. */
  hasMoreChildren: boolean;
}

export interface ListFilesInput {
  root?: string;
  path?: string;
  layout?: "flat" | "tree";
  /** 1 lists only the directory; 0 means 1; clamped to 20. */
  depth?: number;
  globs?: string[];
  includeHidden?: boolean;
  includeIgnored?: boolean;
  /** 0 means 1000; clamped to 10000. */
  maxEntries?: number;
}

export interface ListFilesResult {
  root: string;
  path: string;
  entries: FileEntry[];
  truncated: boolean;
}

export async function listFiles(roots: SearchRoots, input: ListFilesInput): Promise<ListFilesResult> {
  const resolved = await roots.resolve(input.path ?? "", { root: input.root });
  if (!resolved.stats) throw new GatewayError("not_found", `no such directory: ${resolved.rel}`, { param: "path" });
  if (!resolved.stats.isDirectory()) {
    throw new GatewayError("invalid_argument", `${resolved.rel} is not a directory`, { param: "path" });
  }
  const depth = Math.min(Math.max(input.depth || 1, 1), MAX_LIST_DEPTH);
  const maxEntries = Math.min(input.maxEntries || DEFAULT_LIST_ENTRIES, MAX_LIST_ENTRIES);
  let globs: OverrideGlobs | undefined;
  try {
    globs = input.globs?.length ? new OverrideGlobs(input.globs) : undefined;
  } catch (err) {
    if (err instanceof GlobError) throw new GatewayError("invalid_argument", err.message, { param: err.field });
    throw err;
  }
  const rootDir = resolved.root.dir;
  const realRel = path.relative(rootDir, resolved.abs).split(path.sep).join("/");
  const filter: FilterOptions = {
    includeHidden: !!input.includeHidden,
    respectGitignore: !input.includeIgnored,
  };

  // Breadth-first: each queue item is a directory whose entries are still to be read.
  interface Pending {
    realRel: string;
    shownRel: string;
    scope: IgnoreScope;
    level: number;
    into: FileEntry[];
    owner?: FileEntry;
  }
  const top: FileEntry[] = [];
  const queue: Pending[] = [
    {
      realRel,
      shownRel: resolved.rel,
      scope: filter.respectGitignore ? await IgnoreScope.forDirectory(rootDir, realRel) : IgnoreScope.EMPTY,
      level: 1,
      into: top,
    },
  ];
  let count = 0;
  let truncated = false;
  while (queue.length && !truncated) {
    const dir = queue.shift()!;
    for (const d of await readDirSorted(path.join(rootDir, dir.realRel))) {
      const rel = dir.realRel ? `${dir.realRel}/${d.name}` : d.name;
      const isDir = d.isDirectory();
      if (!includeEntry(filter, dir.scope, rel, d.name, isDir)) continue;
      if (!isDir && globs && globs.matched(rel, false) === "ignore") continue;
      if (count >= maxEntries) {
        truncated = true;
        break;
      }
      let st;
      try {
        st = await lstat(path.join(rootDir, rel));
      } catch {
        continue; // vanished while listing
      }
      const shown = dir.shownRel ? `${dir.shownRel}/${d.name}` : d.name;
      const entry: FileEntry = {
        name: d.name,
        path: shown,
        type: st.isSymbolicLink() ? "symlink" : isDir ? "directory" : "file",
        sizeBytes: st.isFile() ? st.size : 0,
        modifiedAt: st.mtime,
        children: [],
        hasMoreChildren: false,
      };
      dir.into.push(entry);
      count++;
      if (isDir) {
        if (dir.level < depth) {
          const scope = filter.respectGitignore ? await dir.scope.child(rootDir, rel) : dir.scope;
          queue.push({
            realRel: rel,
            shownRel: shown,
            scope,
            level: dir.level + 1,
            into: entry.children,
            owner: entry,
          });
        } else {
          entry.hasMoreChildren = (await readDirSorted(path.join(rootDir, rel))).length > 0;
        }
      }
    }
  }
  // With globs, a directory stays only when something under it matched (or it was not explored).
  if (globs) prune(top, depth, 1);
  const sortTree = (list: FileEntry[]) => {
    list.sort(dirsFirst);
    for (const e of list) sortTree(e.children);
  };
  sortTree(top);
  const entries = input.layout === "tree" ? top : flatten(top);
  return { root: resolved.root.name, path: resolved.rel, entries, truncated };
}

function prune(list: FileEntry[], depth: number, level: number): void {
  for (let i = list.length - 1; i >= 0; i--) {
    const e = list[i];
    if (e.type !== "directory" || (level >= depth && e.hasMoreChildren)) continue;
    prune(e.children, depth, level + 1);
    if (e.children.length === 0) list.splice(i, 1);
  }
}

function dirsFirst(a: FileEntry, b: FileEntry): number {
  const da = a.type === "directory" ? 0 : 1;
  const db = b.type === "directory" ? 0 : 1;
  return da - db || compareNames(a.name, b.name);
}

/** Flat layout: every entry, directories first, then by path; no children. */
function flatten(top: FileEntry[]): FileEntry[] {
  const out: FileEntry[] = [];
  const visit = (list: FileEntry[]) => {
    for (const e of list) {
      out.push({ ...e, children: [], hasMoreChildren: false });
      visit(e.children);
    }
  };
  visit(top);
  return out.sort((a, b) => {
    const da = a.type === "directory" ? 0 : 1;
    const db = b.type === "directory" ? 0 : 1;
    return da - db || compareNames(a.path, b.path);
  });
}
