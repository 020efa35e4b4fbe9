/**
 * SearchService RPC handlers: translate (search-convert.ts), delegate to the search domain
 * (src/search/), translate back. Errors are GatewayErrors from the domain, made Connect codes by
 * the shared interceptor. Requests name roots; the index knows them by directory, so roots are
 * resolved here (SearchRoots) and handed to the index as directories.
 */
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import path from "node:path";
import {
  ApplyPatchResponseSchema,
  FindSymbolsResponseSchema,
  GetIndexStatusResponseSchema,
  GrepResponseSchema,
  ListFilesResponseSchema,
  LocateStackTraceResponseSchema,
  ReadFileResponseSchema,
  ReindexResponseSchema,
  SearchResponseSchema,
  WatchIndexResponseSchema,
  WriteFileResponseSchema,
  type SearchService,
  type WatchIndexResponse,
} from "../../gen/agentgate/v1/search_service_pb.js";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { GatewayError } from "../errors/gateway-error.js";
import { IgnoreScope } from "../search/files/gitignore.js";
import { listFiles } from "../search/files/list-files.js";
import { readFileLines } from "../search/files/read-file.js";
import { walkFiles } from "../search/files/walk.js";
import { grep } from "../search/grep/grep.js";
import type { IndexEvent } from "../search/index/indexer.js";
import type { SearchRoot } from "../search/roots.js";
import type { SearchDomain } from "../search/search-module.js";
import { locateStackTrace } from "../search/stack-trace.js";
import { applyPatch } from "../search/write/apply-patch.js";
import { writeFileAtomic } from "../search/write/write-file.js";
import {
  isFileEvent,
  pbFileEntry,
  pbFrame,
  pbGrepMatch,
  pbIndexEvent,
  pbPatchedFile,
  pbRootStatus,
  pbSearchHit,
  pbSymbol,
  toGrepCaseMode,
  toLayout,
  toReadSelection,
  toSearchMode,
  toSymbolKinds,
  toSymbolMatchMode,
} from "./search-convert.js";

/** Events a WatchIndex stream may hold for a client that reads too slowly; beyond it the stream fails. */
const MAX_PENDING_EVENTS = 10_000;

export function searchService(domain: SearchDomain): Partial<ServiceImpl<typeof SearchService>> {
  const { roots, indexer } = domain;
  /** The named root, or every root for an empty name. */
  const rootsOf = (name: string): readonly SearchRoot[] => (name ? [roots.get(name)] : roots.list());
  const status = async (r: SearchRoot) => pbRootStatus(await indexer.status(r));

  return {
    async search(request) {
      const mode = toSearchMode(request.mode);
      const r = await domain.search.search({
        query: request.query,
        roots: rootsOf(request.root).map((x) => x.dir),
        limit: request.limit,
        pathGlobs: request.pathGlobs,
        languages: request.languages,
        mode,
      });
      return create(SearchResponseSchema, {
        hits: r.hits.map((h) => pbSearchHit(roots, h, mode, !r.lexicalOnly)),
        lexicalOnly: r.lexicalOnly,
        lexicalOnlyReason: r.lexicalOnlyReason,
        embeddingModel: r.embeddingModel,
      });
    },

    async grep(request, ctx) {
      const r = await grep(
        roots,
        {
          pattern: request.pattern,
          literal: request.literal,
          caseMode: toGrepCaseMode(request.caseMode),
          wholeWord: request.wholeWord,
          root: request.root,
          paths: request.paths,
          globs: request.globs,
          contextLines: request.contextLines,
          maxMatches: request.maxMatches,
          includeHidden: request.includeHidden,
        },
        { tools: domain.tools, signal: ctx.signal },
      );
      return create(GrepResponseSchema, {
        matches: r.matches.map(pbGrepMatch),
        truncated: r.truncated,
        filesSearched: r.filesSearched,
        engine: r.engine,
      });
    },

    async findSymbols(request) {
      const r = await domain.symbols.find({
        query: request.query,
        mode: toSymbolMatchMode(request.matchMode),
        caseSensitive: request.caseSensitive,
        kinds: toSymbolKinds(request.kinds),
        language: request.language,
        roots: rootsOf(request.root).map((x) => x.dir),
        pathGlobs: request.pathGlobs,
        limit: request.limit,
      });
      return create(FindSymbolsResponseSchema, {
        symbols: r.symbols.map((s) => pbSymbol(roots, s)),
        truncated: r.truncated,
      });
    },

    async listFiles(request) {
      const r = await listFiles(roots, {
        root: request.root,
        path: request.path,
        layout: toLayout(request.layout),
        depth: request.depth,
        globs: request.globs,
        includeHidden: request.includeHidden,
        includeIgnored: request.includeIgnored,
        maxEntries: request.maxEntries,
      });
      return create(ListFilesResponseSchema, {
        root: r.root,
        path: r.path,
        entries: r.entries.map(pbFileEntry),
        truncated: r.truncated,
      });
    },

    async readFile(request) {
      const r = await readFileLines(roots, {
        root: request.root,
        path: request.path,
        ...toReadSelection(request),
        maxBytes: request.maxBytes,
      });
      return create(ReadFileResponseSchema, {
        ...r,
        sizeBytes: BigInt(r.sizeBytes),
        modifiedAt: timestampFromDate(r.modifiedAt),
      });
    },

    async reindex(request) {
      const targets = request.paths.length
        ? await reindexTargets(domain, request.root, request.paths)
        : new Map(rootsOf(request.root).map((r) => [r, [] as string[]]));
      let queued = 0;
      for (const [root, rels] of targets) {
        // A path naming the root itself is the whole root (a scan).
        const whole = rels.length === 0 || rels.includes("");
        queued += await indexer.reindex(root, whole ? [] : rels, request.force);
      }
      return create(ReindexResponseSchema, {
        queuedFiles: queued,
        roots: await Promise.all([...targets.keys()].map(status)),
      });
    },

    async getIndexStatus(request) {
      return create(GetIndexStatusResponseSchema, {
        roots: await Promise.all(rootsOf(request.root).map(status)),
        embeddingModel: domain.vectors.model,
        embeddingsAvailable: domain.vectors.unavailableReason === "",
        vectorStore: domain.vectors.storeKind,
      });
    },

    async *watchIndex(request, ctx): AsyncIterable<WatchIndexResponse> {
      const watched = new Map(rootsOf(request.root).map((r) => [r.dir, r]));
      // Subscribed before the snapshots are read, so no change between them and the stream is lost.
      const events = new EventQueue(MAX_PENDING_EVENTS);
      const unsubscribe = indexer.subscribe((e) => {
        if (watched.has(e.root) && (request.includeFileEvents || !isFileEvent(e))) events.push(e);
      });
      try {
        for (const r of watched.values()) yield create(WatchIndexResponseSchema, { status: await status(r) });
        for (;;) {
          const e = await events.next(ctx.signal);
          if (!e) return; // the client went away
          const root = watched.get(e.root)!;
          yield create(WatchIndexResponseSchema, { status: await status(root), event: pbIndexEvent(e) });
        }
      } finally {
        unsubscribe();
      }
    },

    async locateStackTrace(request) {
      const frames = await locateStackTrace(roots, {
        text: request.text,
        contextLines: request.contextLines,
        root: request.root,
        maxFrames: request.maxFrames,
        includeUnresolved: request.includeUnresolved,
      });
      return create(LocateStackTraceResponseSchema, { frames: frames.map(pbFrame) });
    },

    async writeFile(request) {
      const r = await writeFileAtomic(
        roots,
        {
          root: request.root,
          path: request.path,
          content: request.content,
          expectedSha256: request.expectedSha256,
          createParents: request.createParents,
        },
        domain.writeOptions,
      );
      return create(WriteFileResponseSchema, { ...r, sizeBytes: BigInt(r.sizeBytes) });
    },

    async applyPatch(request) {
      const r = await applyPatch(
        roots,
        { root: request.root, patch: request.patch, dryRun: request.dryRun },
        domain.writeOptions,
      );
      return create(ApplyPatchResponseSchema, { files: r.files.map(pbPatchedFile), applied: r.applied });
    },
  };
}

/**
 * Reindex's paths, resolved inside their root (the same rules as every other path) and expanded:
 * a directory stands for the files the walker finds under it plus those the index still has there
 * (deleted since), so both new and stale files are queued. Paths are real paths relative to the root.
 */
async function reindexTargets(
  domain: SearchDomain,
  rootName: string,
  paths: string[],
): Promise<Map<SearchRoot, string[]>> {
  const out = new Map<SearchRoot, Set<string>>();
  let known: Map<string, Map<string, unknown>> | undefined;
  for (const [i, p] of paths.entries()) {
    const r = await domain.roots.resolve(p, { root: rootName, field: `paths[${i}]` });
    const rel = path.relative(r.root.dir, r.abs).split(path.sep).join("/");
    let set = out.get(r.root);
    if (!set) out.set(r.root, (set = new Set()));
    if (rel === "") {
      set.add("");
      continue;
    }
    if (!r.stats?.isDirectory()) set.add(rel);
    if (r.stats?.isFile()) continue;
    // A directory, or nothing (a deleted file or directory): what the index has under it.
    known ??= new Map();
    let files = known.get(r.root.dir);
    if (!files) known.set(r.root.dir, (files = await domain.store.files(r.root.dir)));
    for (const f of files.keys()) if (f.startsWith(`${rel}/`)) set.add(f);
    if (r.stats?.isDirectory()) {
      const scope = await IgnoreScope.forDirectory(r.root.dir, rel);
      for await (const f of walkFiles(r.root.dir, rel, scope, { includeHidden: false, respectGitignore: true }))
        set.add(f);
    }
  }
  return new Map([...out].map(([root, set]) => [root, [...set]]));
}

/** Index events waiting for a WatchIndex stream, with a wait that ends when the call's signal does. */
class EventQueue {
  private readonly items: IndexEvent[] = [];
  private wake?: () => void;
  private overflowed = false;

  constructor(private readonly max: number) {}

  push(e: IndexEvent): void {
    if (this.items.length >= this.max) this.overflowed = true;
    else this.items.push(e);
    this.wake?.();
  }

  /**
   * The next event; undefined once the client has gone away. A server shutting down aborts the
   * signal with a GatewayError (unavailable), which ends the stream with that error, so clients retry.
   */
  async next(signal: AbortSignal): Promise<IndexEvent | undefined> {
    for (;;) {
      if (signal.aborted) {
        if (signal.reason instanceof GatewayError) throw signal.reason;
        return undefined;
      }
      if (this.overflowed) {
        throw new GatewayError(
          "resource_exhausted",
          `the client fell more than ${this.max} index events behind; watch again (the first frames are a fresh status)`,
        );
      }
      const e = this.items.shift();
      if (e) return e;
      await new Promise<void>((resolve) => {
        const done = () => {
          this.wake = undefined;
          signal.removeEventListener("abort", done);
          resolve();
        };
        this.wake = done;
        signal.addEventListener("abort", done, { once: true });
      });
    }
  }
}
