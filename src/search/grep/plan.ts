/** What a grep searches, worked out once from the request and shared by both engines. */
import type { FilterOptions } from "../files/walk.js";

export interface GrepTarget {
  /** Relative to the root ("" for the root itself). */
  rel: string;
  isDir: boolean;
}

export interface GrepPlan {
  rootDir: string;
  rootName: string;
  /** Explicit files and directories; empty for the whole root. */
  targets: GrepTarget[];
  filter: FilterOptions;
  /** The request globs as given (rg gets them as -g). */
  globs: string[];
  contextLines: number;
  maxMatches: number;
  timeoutMs: number;
  /** Larger files are skipped by both engines. */
  maxFileBytes: number;
  signal?: AbortSignal;
}
