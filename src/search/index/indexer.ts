/**
 * Keeps the search index current (docs/search.md "The index"):
 *
 * - A scan per root walks its files with ripgrep's rules (.gitignore, hidden files, `.git` never),
 *   queues the files whose size or modification time differ from the index, and removes the files
 *   the index has but the tree no longer has. A restart is a scan: work lost to a crash is found again.
 * - A queued file is read, skipped when its content hash is unchanged (unless forced), parsed once
 *   for symbols, chunked by code structure, and replaced in the index in one transaction.
 * - Embedding is a second step per file (vectors deleted by path, then upserted); a file whose step
 *   failed (no embedding model reachable) stays `embedded = false` and is retried later.
 * - chokidar watches every root; changes are debounced and queued like any other.
 *
 * One worker indexes one file at a time: parsing is synchronous CPU work, and one writer keeps the
 * embedded database's single connection free for queries between files.
 */
import { createHash } from "node:crypto";
import { EventEmitter } from "node:events";
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { watch, type FSWatcher } from "chokidar";
import type { Logger } from "pino";
import { chunkSource } from "../chunker.js";
import type { OllamaEmbedder } from "../embeddings.js";
import { IgnoreScope } from "../files/gitignore.js";
import { looksBinary } from "../files/text.js";
import { includeEntry, walkFiles, type FilterOptions } from "../files/walk.js";
import type { SearchRoot, SearchRoots } from "../roots.js";
import { parseSymbols } from "../symbols/extract.js";
import type { VectorCollection } from "../vectors/vector-store.js";
import type { IndexedChunk, IndexStore } from "./index-store.js";

export type IndexState = "scanning" | "indexing" | "idle" | "error";

export interface RootStatus {
  root: SearchRoot;
  state: IndexState;
  filesTotal: number;
  filesIndexed: number;
  filesQueued: number;
  filesFailed: number;
  chunks: number;
  chunksEmbedded: number;
  symbols: number;
  runStartedAt?: Date;
  runFinishedAt?: Date;
  lastError: string;
  watching: boolean;
}

export type IndexEvent =
  | { kind: "run_started"; root: string; time: Date }
  | { kind: "file_indexed"; root: string; path: string; chunks: number; time: Date }
  | { kind: "file_removed"; root: string; path: string; time: Date }
  | { kind: "file_failed"; root: string; path: string; error: string; time: Date }
  | { kind: "run_finished"; root: string; time: Date };

/** Where vectors go: the collection, once embeddings are known to work (undefined: lexical only). */
export interface VectorTarget {
  embedder: Pick<OllamaEmbedder, "embedDocuments" | "embedQuery">;
  collection: VectorCollection;
}

export interface IndexerOptions {
  roots: SearchRoots;
  store: IndexStore;
  /** Resolved lazily: the embedding model may come up after agentgate. */
  vectors?: () => Promise<VectorTarget | undefined>;
  /** Files above this are recorded as too large, not chunked (default 1 MiB). */
  maxFileBytes?: number;
  watch?: boolean;
  /** Quiet time before watched changes are indexed (default 300 ms). */
  debounceMs?: number;
  /** Called after every file change in the index (the lexical statistics cache listens). */
  onChange?: () => void;
  logger?: Logger;
}

const FILTER: FilterOptions = { includeHidden: false, respectGitignore: true };
const EMBED_TEXT_MAX = 4000;
/** A run that changed at least this many files refreshes the planner's statistics. */
const ANALYZE_AFTER_FILES = 200;
/** Files embedded per pass of the retry of earlier embedding failures. */
const EMBED_RETRY_BATCH = 200;

interface RootWork {
  root: SearchRoot;
  queue: Set<string>;
  forced: Set<string>;
  /** Queued by a scan's walk: known to pass the ignore rules, no need to check them again. */
  walked: Set<string>;
  state: IndexState;
  runStartedAt?: Date;
  runFinishedAt?: Date;
  lastError: string;
  watcher?: FSWatcher;
  watchStarting?: Promise<void>;
  pending: Set<string>;
  timer?: NodeJS.Timeout;
  scanning?: Promise<void>;
  /** The file the worker is indexing now: the run has not finished while there is one. */
  inFlight?: string;
  /** Files (re)indexed or removed since the last ANALYZE. */
  changedSinceAnalyze: number;
}

export class Indexer {
  private readonly work = new Map<string, RootWork>();
  private readonly events = new EventEmitter();
  private readonly maxFileBytes: number;
  private running?: Promise<void>;
  private analyzing?: Promise<void>;
  private closed = false;

  constructor(private readonly o: IndexerOptions) {
    this.maxFileBytes = o.maxFileBytes ?? 1024 * 1024;
    this.events.setMaxListeners(0);
    for (const root of o.roots.list())
      this.work.set(root.dir, {
        root,
        queue: new Set(),
        forced: new Set(),
        walked: new Set(),
        changedSinceAnalyze: 0,
        pending: new Set(),
        state: "idle",
        lastError: "",
      });
  }

  /** Scans every root (in the background) and starts watching them. */
  start(): void {
    for (const w of this.work.values()) {
      void this.scan(w, false);
      if (this.o.watch)
        w.watchStarting = this.startWatching(w).catch((err) =>
          this.o.logger?.warn({ err, root: w.root.dir }, "search index: cannot watch the root"),
        );
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const w of this.work.values()) {
      clearTimeout(w.timer);
      await w.watchStarting;
      await w.watcher?.close();
    }
    await this.running;
    await this.analyzing;
  }

  /**
   * Queues a root's files: all of them (a scan; `force` re-indexes unchanged ones too) or the given
   * paths (relative to the root). Returns how many files were queued.
   */
  async reindex(root: SearchRoot, paths: string[] = [], force = false): Promise<number> {
    const w = this.rootWork(root);
    if (paths.length === 0) return this.scan(w, force);
    for (const p of paths) {
      w.queue.add(p);
      if (force) w.forced.add(p);
    }
    this.kick();
    return paths.length;
  }

  /** Whether nothing is queued or running (tests and benchmarks wait on it). */
  async idle(): Promise<void> {
    for (;;) {
      const busy = [...this.work.values()].some((w) => w.scanning || w.queue.size || w.pending.size);
      if (!busy && !this.running) return;
      await Promise.all([this.running, ...[...this.work.values()].map((w) => w.scanning)]);
      if (!this.running && [...this.work.values()].some((w) => w.pending.size))
        await new Promise((r) => setTimeout(r, 20));
    }
  }

  async status(root: SearchRoot): Promise<RootStatus> {
    const w = this.rootWork(root);
    const c = await this.o.store.counts(root.dir);
    return {
      root,
      state: w.state,
      filesTotal: c.files + w.queue.size,
      filesIndexed: c.files - c.failed,
      filesQueued: w.queue.size + w.pending.size,
      filesFailed: c.failed,
      chunks: c.chunks,
      chunksEmbedded: c.embeddedChunks,
      symbols: c.symbols,
      runStartedAt: w.runStartedAt,
      runFinishedAt: w.runFinishedAt,
      lastError: w.lastError,
      watching: !!w.watcher,
    };
  }

  /** Every index event; returns the unsubscribe function. */
  subscribe(listener: (e: IndexEvent) => void): () => void {
    this.events.on("event", listener);
    return () => this.events.off("event", listener);
  }

  // --- scanning ---

  private rootWork(root: SearchRoot): RootWork {
    const w = this.work.get(root.dir);
    if (!w) throw new Error(`not a search root: ${root.dir}`);
    return w;
  }

  private scan(w: RootWork, force: boolean): Promise<number> {
    // A scan asked for while one runs (Reindex during the startup scan) runs after it, not beside it.
    const previous = w.scanning;
    const run = (async () => {
      await previous;
      w.state = "scanning";
      w.runStartedAt = new Date();
      w.runFinishedAt = undefined;
      this.emit({ kind: "run_started", root: w.root.dir, time: w.runStartedAt });
      let queued = 0;
      try {
        const known = await this.o.store.files(w.root.dir);
        const seen = new Set<string>();
        const scope = await IgnoreScope.forDirectory(w.root.dir, "");
        for await (const rel of walkFiles(w.root.dir, "", scope, FILTER)) {
          if (this.closed) break;
          seen.add(rel);
          const before = known.get(rel);
          if (!force && before) {
            const st = await stat(path.join(w.root.dir, rel)).catch(() => undefined);
            if (st && st.size === before.sizeBytes && st.mtime.getTime() === before.modifiedAt?.getTime()) continue;
          }
          w.queue.add(rel);
          w.walked.add(rel);
          if (force) w.forced.add(rel);
          queued++;
        }
        for (const rel of known.keys()) if (!seen.has(rel)) w.queue.add(rel); // gone: indexFile removes it
        // Files indexed while no embedding model was reachable.
        for (const rel of await this.o.store.unembeddedFiles(w.root.dir, EMBED_RETRY_BATCH)) w.queue.add(rel);
        w.lastError = "";
      } catch (err) {
        w.state = "error";
        w.lastError = `scan failed: ${(err as Error).message}`;
        this.o.logger?.warn({ err, root: w.root.dir }, "search index scan failed");
      }
      this.kick();
      return queued;
    })();
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    w.scanning = settled;
    void settled.then(() => {
      // Only the latest scan clears the flag: an earlier one ending must not end the run early.
      if (w.scanning === settled) w.scanning = undefined;
      this.finishIfDone(w);
    });
    return run;
  }

  private async startWatching(w: RootWork): Promise<void> {
    // The root's own .gitignore keeps the watcher out of node_modules, build output and the like
    // (deeper .gitignore files are applied to each change by included()); hidden entries and .git
    // are never indexed either.
    const scope = await IgnoreScope.forDirectory(w.root.dir, "");
    if (this.closed) return;
    w.watcher = watch(w.root.dir, {
      ignoreInitial: true,
      ignored: (p: string, stats?: { isDirectory(): boolean }) => {
        const rel = path.relative(w.root.dir, p).split(path.sep).join("/");
        if (!rel || rel.startsWith("..")) return false;
        if (rel.split("/").some((part) => part.startsWith("."))) return true;
        const isDir = stats?.isDirectory();
        return isDir === undefined
          ? scope.match(rel, true) === "ignore" && scope.match(rel, false) === "ignore"
          : scope.match(rel, isDir) === "ignore";
      },
      awaitWriteFinish: false,
    });
    const changed = (abs: string) => {
      const rel = path.relative(w.root.dir, abs).split(path.sep).join("/");
      if (!rel || rel.startsWith("..")) return;
      w.pending.add(rel);
      clearTimeout(w.timer);
      w.timer = setTimeout(() => void this.flushPending(w), this.o.debounceMs ?? 300);
    };
    w.watcher.on("add", changed).on("change", changed).on("unlink", changed);
    w.watcher.on("unlinkDir", (abs: string) => {
      // Everything the index has below the directory.
      const rel = path.relative(w.root.dir, abs).split(path.sep).join("/");
      void this.o.store.files(w.root.dir).then((known) => {
        for (const p of known.keys()) if (p.startsWith(`${rel}/`)) changed(path.join(w.root.dir, p));
      });
    });
    w.watcher.on("error", (err) => this.o.logger?.warn({ err, root: w.root.dir }, "search index watcher error"));
  }

  private async flushPending(w: RootWork): Promise<void> {
    const paths = [...w.pending];
    w.pending.clear();
    for (const rel of paths) w.queue.add(rel);
    this.kick();
  }

  // --- the worker ---

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = this.drain().finally(() => {
      this.running = undefined;
      if ([...this.work.values()].some((w) => w.queue.size) && !this.closed) this.kick();
    });
  }

  private async drain(): Promise<void> {
    for (;;) {
      const w = [...this.work.values()].find((x) => x.queue.size > 0);
      if (!w || this.closed) return;
      w.state = "indexing";
      const rel = w.queue.values().next().value as string;
      w.queue.delete(rel);
      const force = w.forced.delete(rel);
      const walked = w.walked.delete(rel);
      w.inFlight = rel;
      try {
        await this.indexFile(w, rel, force, walked);
      } catch (err) {
        this.o.logger?.warn({ err, root: w.root.dir, path: rel }, "search index: file failed");
        this.emit({
          kind: "file_failed",
          root: w.root.dir,
          path: rel,
          error: (err as Error).message,
          time: new Date(),
        });
      }
      w.inFlight = undefined;
      this.finishIfDone(w);
    }
  }

  private finishIfDone(w: RootWork): void {
    if (w.queue.size || w.scanning || w.inFlight !== undefined || w.state === "idle") return;
    if (w.state !== "error") w.state = "idle";
    w.runFinishedAt = new Date();
    this.o.onChange?.();
    this.emit({ kind: "run_finished", root: w.root.dir, time: w.runFinishedAt });
    if (w.changedSinceAnalyze >= ANALYZE_AFTER_FILES) {
      w.changedSinceAnalyze = 0;
      this.analyzing = this.refreshPlans()
        .catch((err) => this.o.logger?.warn({ err }, "search index: ANALYZE failed"))
        .finally(() => (this.analyzing = undefined));
    }
  }

  /**
   * After a bulk load the planner still sees near-empty tables (PGlite has no autovacuum) and skips
   * the GIN and HNSW indexes: bench/search measured 70x slower vector and 2x slower lexical queries
   * at 54k chunks until ANALYZE. The vector collection builds its ANN index here too when large.
   */
  private async refreshPlans(): Promise<void> {
    await this.o.store.analyze();
    const target = await this.vectorTarget();
    await target?.collection.optimize();
  }

  private async indexFile(w: RootWork, rel: string, force: boolean, walked: boolean): Promise<void> {
    const root = w.root.dir;
    const abs = path.join(root, rel);
    const st = await stat(abs).catch(() => undefined);
    const known = await this.o.store.file(root, rel);
    if (!st?.isFile() || !(walked || (await this.included(root, rel)))) {
      if (known) {
        await this.o.store.removeFile(root, rel);
        const target = await this.vectorTarget();
        await target?.collection.deleteByPath(root, rel);
        this.o.onChange?.();
        w.changedSinceAnalyze++;
        this.emit({ kind: "file_removed", root, path: rel, time: new Date() });
      }
      return;
    }
    const base = { root, path: rel, sizeBytes: st.size, modifiedAt: st.mtime, language: "" };
    if (st.size > this.maxFileBytes) {
      const error = `larger than ${this.maxFileBytes} bytes`;
      await this.o.store.replaceFile({ ...base, sha256: "", error }, [], []);
      this.emit({ kind: "file_failed", root, path: rel, error, time: new Date() });
      return;
    }
    const bytes = await readFile(abs);
    const sha256 = createHash("sha256").update(bytes).digest("hex");
    if (!force && known && known.sha256 === sha256 && !known.error) {
      if (!known.embedded) await this.embed(root, rel, sha256);
      // Same content, new mtime (a touch, a checkout): record it so the next scan skips the file.
      if (known.modifiedAt?.getTime() !== st.mtime.getTime()) await this.o.store.touch(root, rel, st.mtime, st.size);
      return;
    }
    if (looksBinary(bytes)) {
      await this.o.store.replaceFile({ ...base, sha256, error: "binary" }, [], []);
      return;
    }
    const source = bytes.toString("utf8");
    const parsed = await parseSymbols(rel, source);
    const chunks = chunkSource(rel, source, [...parsed.symbols, ...parsed.blocks], parsed.language);
    const indexed: IndexedChunk[] = chunks.map((c) => ({
      id: chunkId(root, rel, c.startLine, c.endLine, c.hash),
      startLine: c.startLine,
      endLine: c.endLine,
      symbol: c.symbols[0] ?? "",
      content: c.text,
    }));
    await this.o.store.replaceFile(
      { ...base, sha256, language: parsed.language ?? "", error: "" },
      indexed,
      parsed.symbols,
    );
    this.o.onChange?.();
    w.changedSinceAnalyze++;
    this.emit({ kind: "file_indexed", root, path: rel, chunks: indexed.length, time: new Date() });
    await this.embed(root, rel, sha256);
  }

  /** The file's chunks into the vector store; on failure the file stays unembedded for a later retry. */
  private async embed(root: string, rel: string, sha256: string): Promise<void> {
    const target = await this.vectorTarget();
    if (!target) return;
    const chunks = await this.o.store.chunksOf(root, rel);
    if (chunks.length === 0) return;
    const r = await target.embedder.embedDocuments(chunks.map((c) => embeddingText(rel, c.symbol, c.content)));
    if (r.status !== "ok") return;
    await target.collection.deleteByPath(root, rel);
    await target.collection.upsert(
      chunks.map((c, i) => ({
        id: c.id,
        vector: r.vectors[i]!,
        root,
        path: rel,
        payload: { start_line: c.startLine },
      })),
    );
    await this.o.store.markEmbedded(root, rel, sha256);
  }

  private async vectorTarget(): Promise<VectorTarget | undefined> {
    return this.o.vectors ? this.o.vectors().catch(() => undefined) : undefined;
  }

  /** Whether the walker would list the file: each directory on the way and the file itself pass the rules. */
  private async included(rootDir: string, rel: string): Promise<boolean> {
    const parts = rel.split("/");
    let scope = await IgnoreScope.EMPTY.child(rootDir, "");
    for (let i = 0; i < parts.length; i++) {
      const sub = parts.slice(0, i + 1).join("/");
      const isDir = i < parts.length - 1;
      if (!includeEntry(FILTER, scope, sub, parts[i]!, isDir)) return false;
      if (isDir) scope = await scope.child(rootDir, sub);
    }
    return true;
  }

  private emit(e: IndexEvent): void {
    this.events.emit("event", e);
  }
}

/** Stable for unchanged content at the same place: re-indexing an untouched chunk keeps its id. */
export function chunkId(root: string, rel: string, start: number, end: number, contentHash: string): string {
  return createHash("sha256").update(`${root}\0${rel}\0${start}\0${end}\0${contentHash}`).digest("hex").slice(0, 32);
}

/** What is embedded for a chunk: where it is and what it declares give the vector context. */
export function embeddingText(rel: string, symbol: string, content: string): string {
  const head = symbol ? `${rel} ${symbol}\n` : `${rel}\n`;
  return (head + content).slice(0, EMBED_TEXT_MAX);
}
