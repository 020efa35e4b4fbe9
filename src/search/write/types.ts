/** Options and change reports shared by WriteFile and ApplyPatch. */

export interface WriteOptions {
  /** SEARCH_WRITE: without it every write fails with permission_denied. */
  writeEnabled: boolean;
  /** Largest file a write or patch may produce; default 4 MiB. */
  maxFileBytes?: number;
  /** Largest patch text accepted; default 1 MiB. */
  maxPatchBytes?: number;
  /** Told what changed once it is on disk, so the indexer can re-index at once. */
  onChange?: (change: WriteChange) => void | Promise<void>;
}

export interface ChangedPath {
  /** Relative to the root. */
  path: string;
  kind: "add" | "modify" | "delete";
}

export interface WriteChange {
  root: string;
  paths: ChangedPath[];
}

export const DEFAULT_MAX_WRITE_BYTES = 4 * 1024 * 1024;
export const DEFAULT_MAX_PATCH_BYTES = 1024 * 1024;
