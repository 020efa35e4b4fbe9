/**
 * agentgate.v1.SearchService messages <-> the search domain's types (src/search/). The index keys
 * files by their root's absolute directory; clients only ever see root names (SearchRoots), so
 * every root leaving here goes through `rootName`. Enum values outside the known set are
 * invalid_argument; UNSPECIFIED takes the default the proto documents.
 */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  CodeSymbolSchema,
  FileEntrySchema,
  FileEntryType as PbFileEntryType,
  GrepCaseMode as PbGrepCaseMode,
  GrepMatchSchema,
  IndexEventKind as PbIndexEventKind,
  IndexEventSchema,
  IndexRootStatusSchema,
  IndexState as PbIndexState,
  ListFilesLayout as PbListFilesLayout,
  PatchFileChangeKind as PbPatchKind,
  PatchedFileSchema,
  SearchHitSchema,
  SearchMode as PbSearchMode,
  SearchRanker,
  SearchRankerScoreSchema,
  StackTraceFormat as PbStackTraceFormat,
  StackTraceFrameSchema,
  SymbolKind,
  SymbolMatchMode,
  type CodeSymbol,
  type FileEntry as PbFileEntry,
  type GrepMatch as PbGrepMatch,
  type IndexEvent as PbIndexEvent,
  type IndexRootStatus,
  type PatchedFile as PbPatchedFile,
  type ReadFileRequest,
  type SearchHit as PbSearchHit,
  type SearchRankerScore,
  type StackTraceFrame,
} from "../../gen/agentgate/v1/search_service_pb.js";
import { invalidArgument } from "../errors/gateway-error.js";
import type { FileEntry, ListFilesInput } from "../search/files/list-files.js";
import type { ReadFileInput } from "../search/files/read-file.js";
import type { GrepCaseMode, GrepMatch } from "../search/grep/types.js";
import type { SearchHit, SearchMode } from "../search/index/hybrid-search.js";
import type { IndexEvent, IndexState, RootStatus } from "../search/index/indexer.js";
import type { SearchRoots } from "../search/roots.js";
import type { LocatedFrame, StackTraceFormat } from "../search/stack-trace.js";
import type { ScoredSymbol } from "../search/symbols/match.js";
import type { PatchChangeKind, PatchedFile } from "../search/write/apply-patch.js";

/** A protobuf enum value -> domain value; UNSPECIFIED gives `fallback`, an unknown value is invalid_argument. */
function fromEnum<P extends number, D>(map: Map<number, D>, value: P, fallback: D, param: string): D {
  if (value === 0) return fallback;
  const d = map.get(value);
  if (d === undefined) throw invalidArgument(`${param} is not a known value`, param);
  return d;
}

const SEARCH_MODES = new Map<number, SearchMode>([
  [PbSearchMode.HYBRID, "hybrid"],
  [PbSearchMode.LEXICAL, "lexical"],
  [PbSearchMode.VECTOR, "vector"],
]);
const CASE_MODES = new Map<number, GrepCaseMode>([
  [PbGrepCaseMode.SENSITIVE, "sensitive"],
  [PbGrepCaseMode.INSENSITIVE, "insensitive"],
  [PbGrepCaseMode.SMART, "smart"],
]);
const LAYOUTS = new Map<number, "flat" | "tree">([
  [PbListFilesLayout.FLAT, "flat"],
  [PbListFilesLayout.TREE, "tree"],
]);
const ENTRY_TYPES: Record<FileEntry["type"], PbFileEntryType> = {
  file: PbFileEntryType.FILE,
  directory: PbFileEntryType.DIRECTORY,
  symlink: PbFileEntryType.SYMLINK,
};
const STATES: Record<IndexState, PbIndexState> = {
  scanning: PbIndexState.SCANNING,
  indexing: PbIndexState.INDEXING,
  idle: PbIndexState.IDLE,
  error: PbIndexState.ERROR,
};
const EVENT_KINDS: Record<IndexEvent["kind"], PbIndexEventKind> = {
  run_started: PbIndexEventKind.RUN_STARTED,
  file_indexed: PbIndexEventKind.FILE_INDEXED,
  file_removed: PbIndexEventKind.FILE_REMOVED,
  file_failed: PbIndexEventKind.FILE_FAILED,
  run_finished: PbIndexEventKind.RUN_FINISHED,
};
const FORMATS: Record<StackTraceFormat, PbStackTraceFormat> = {
  node: PbStackTraceFormat.NODE,
  python: PbStackTraceFormat.PYTHON,
  go: PbStackTraceFormat.GO,
  rust: PbStackTraceFormat.RUST,
};
const PATCH_KINDS: Record<PatchChangeKind, PbPatchKind> = {
  add: PbPatchKind.ADD,
  modify: PbPatchKind.MODIFY,
  delete: PbPatchKind.DELETE,
  rename: PbPatchKind.RENAME,
};

// --- requests -> domain ---

export function toSearchMode(m: PbSearchMode): SearchMode {
  return fromEnum(SEARCH_MODES, m, "hybrid", "mode");
}

export function toGrepCaseMode(m: PbGrepCaseMode): GrepCaseMode {
  return fromEnum(CASE_MODES, m, "sensitive", "case_mode");
}

export function toLayout(l: PbListFilesLayout): ListFilesInput["layout"] {
  return fromEnum(LAYOUTS, l, "flat", "layout");
}

export function toSymbolMatchMode(m: SymbolMatchMode): SymbolMatchMode {
  if (!(m in SymbolMatchMode)) throw invalidArgument("match_mode is not a known value", "match_mode");
  return m;
}

export function toSymbolKinds(kinds: SymbolKind[]): SymbolKind[] {
  kinds.forEach((k, i) => {
    if (k === SymbolKind.UNSPECIFIED || !(k in SymbolKind))
      throw invalidArgument(`kinds[${i}] is not a known value`, `kinds[${i}]`);
  });
  return kinds;
}

export function toReadSelection(r: ReadFileRequest): Pick<ReadFileInput, "range" | "focus"> {
  switch (r.selection.case) {
    case "range":
      return { range: { startLine: r.selection.value.startLine, endLine: r.selection.value.endLine } };
    case "focus":
      return { focus: { line: r.selection.value.line, contextLines: r.selection.value.contextLines } };
    default:
      return {};
  }
}

// --- domain -> responses ---

/** The name clients know a root by, from the directory the index stores. */
export function rootName(roots: SearchRoots, dir: string): string {
  return roots.list().find((r) => r.dir === dir)?.name ?? dir;
}

export function pbSearchHit(roots: SearchRoots, h: SearchHit, mode: SearchMode, vectorsUsed: boolean): PbSearchHit {
  const ranks: SearchRankerScore[] = [];
  const place = (ranker: SearchRanker, p?: { rank: number; score: number }) =>
    ranks.push(create(SearchRankerScoreSchema, { ranker, rank: p?.rank ?? 0, score: p?.score ?? 0 }));
  if (mode !== "vector") place(SearchRanker.LEXICAL, h.lexical);
  if (vectorsUsed) place(SearchRanker.VECTOR, h.vector);
  return create(SearchHitSchema, {
    root: rootName(roots, h.chunk.root),
    path: h.chunk.path,
    startLine: h.chunk.startLine,
    endLine: h.chunk.endLine,
    snippet: h.chunk.content,
    score: h.score,
    ranks,
    chunkId: h.chunk.id,
    language: h.chunk.language,
    symbol: h.chunk.symbol,
  });
}

export function pbGrepMatch(m: GrepMatch): PbGrepMatch {
  return create(GrepMatchSchema, {
    root: m.root,
    path: m.path,
    line: m.line,
    column: m.column,
    lineText: m.lineText,
    submatches: m.submatches,
    contextBefore: m.contextBefore,
    contextAfter: m.contextAfter,
  });
}

export function pbSymbol(roots: SearchRoots, s: ScoredSymbol & { root: string }): CodeSymbol {
  return create(CodeSymbolSchema, {
    name: s.name,
    kind: s.kind,
    root: rootName(roots, s.root),
    path: s.path,
    startLine: s.startLine,
    endLine: s.endLine,
    signature: s.signature,
    language: s.language,
    container: s.container,
    score: s.score,
  });
}

export function pbFileEntry(e: FileEntry): PbFileEntry {
  return create(FileEntrySchema, {
    name: e.name,
    path: e.path,
    type: ENTRY_TYPES[e.type],
    sizeBytes: BigInt(e.sizeBytes),
    modifiedAt: timestampFromDate(e.modifiedAt),
    children: e.children.map(pbFileEntry),
    hasMoreChildren: e.hasMoreChildren,
  });
}

export function pbRootStatus(s: RootStatus): IndexRootStatus {
  return create(IndexRootStatusSchema, {
    root: s.root.name,
    directory: s.root.dir,
    state: STATES[s.state],
    filesTotal: s.filesTotal,
    filesIndexed: s.filesIndexed,
    filesQueued: s.filesQueued,
    filesFailed: s.filesFailed,
    chunks: BigInt(s.chunks),
    chunksEmbedded: BigInt(s.chunksEmbedded),
    symbols: BigInt(s.symbols),
    runStartedAt: s.runStartedAt && timestampFromDate(s.runStartedAt),
    runFinishedAt: s.runFinishedAt && timestampFromDate(s.runFinishedAt),
    lastError: s.lastError,
    watching: s.watching,
  });
}

export function isFileEvent(e: IndexEvent): boolean {
  return e.kind === "file_indexed" || e.kind === "file_removed" || e.kind === "file_failed";
}

export function pbIndexEvent(e: IndexEvent): PbIndexEvent {
  return create(IndexEventSchema, {
    kind: EVENT_KINDS[e.kind],
    path: "path" in e ? e.path : "",
    chunks: e.kind === "file_indexed" ? e.chunks : 0,
    error: e.kind === "file_failed" ? e.error : "",
    time: timestampFromDate(e.time),
  });
}

export function pbFrame(f: LocatedFrame): StackTraceFrame {
  return create(StackTraceFrameSchema, {
    raw: f.raw,
    format: FORMATS[f.format],
    function: f.function,
    tracePath: f.tracePath,
    line: f.line,
    column: f.column,
    resolved: f.resolved,
    root: f.root,
    path: f.path,
    startLine: f.startLine,
    endLine: f.endLine,
    snippet: f.snippet,
  });
}

export function pbPatchedFile(f: PatchedFile): PbPatchedFile {
  return create(PatchedFileSchema, {
    path: f.path,
    oldPath: f.oldPath,
    kind: PATCH_KINDS[f.kind],
    hunks: f.hunks,
    sha256: f.sha256,
  });
}
