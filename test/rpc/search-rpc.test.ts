// agentgate.v1.SearchService through the typed clients against real gateways, with SEARCH_ROOTS at a
// small temporary tree (TypeScript, Python, Go, a .gitignore, a binary file, symlinks out of the
// root) and the Ollama double serving embeddings. Connect over HTTP/1.1 for most calls, gRPC over
// h2c for some. Index waits follow WatchIndex, never a fixed sleep. A second gateway (writes off,
// embedding model unreachable) covers permission_denied and the lexical-only fallback.
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createAgentgateClients,
  FileEntryType,
  IndexEventKind,
  IndexState,
  ListFilesLayout,
  PatchFileChangeKind,
  SearchMode,
  SearchRanker,
  StackTraceFormat,
  SymbolKind,
  SymbolMatchMode,
  type AgentgateClients,
  type IndexRootStatus,
  type SearchHit,
  type WatchIndexResponse,
} from "../../clients/index.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import { isIdle, untilIdle } from "../support/index-wait.js";

const INVOICE_TS = `/**
 * Billing: invoice totals with tax.
 */
export interface LineItem {
  description: string;
  quantity: number;
  unitPrice: number;
}

/** Sums the line items and applies the tax rate. */
export function computeInvoiceTotal(items: LineItem[], taxRate: number): number {
  const subtotal = items.reduce((sum, item) => sum + item.quantity * item.unitPrice, 0);
  return Math.round(subtotal * (1 + taxRate) * 100) / 100;
}

export class InvoiceLedger {
  private readonly entries: LineItem[] = [];

  addEntry(item: LineItem): void {
    this.entries.push(item);
  }
}
`;

const GEOMETRY_PY = `import math


class Circle:
    """A circle with a radius."""

    def __init__(self, radius):
        self.radius = radius

    def area(self):
        return math.pi * self.radius ** 2


def haversine_distance(lat1, lon1, lat2, lon2):
    r = 6371.0
    return r * math.acos(math.sin(lat1) * math.sin(lat2))
`;

const QUEUE_GO = `package queue

// RingBuffer is a fixed-size FIFO queue.
type RingBuffer struct {
	items []int
	head  int
}

// NewRingBuffer makes an empty buffer.
func NewRingBuffer(size int) *RingBuffer {
	return &RingBuffer{items: make([]int, 0, size)}
}

// Push appends an item.
func (r *RingBuffer) Push(v int) {
	r.items = append(r.items, v)
}
`;

const PARCEL_TS = `/** Shipping rates. */
export function estimateParcelPostage(weightGrams: number): number {
  return 3.5 + weightGrams * 0.002;
}
`;

let tmp: string;
let root: string;
let outside: string;
let marker: string;
let prePattern: string;
let h: GatewayHarness;
let ag: AgentgateClients; // Connect over HTTP/1.1
let grpc: AgentgateClients; // gRPC over h2c

function makeTree(): void {
  const w = (rel: string, content: string | Buffer) => {
    const abs = path.join(root, rel);
    fs.mkdirSync(path.dirname(abs), { recursive: true });
    fs.writeFileSync(abs, content);
  };
  fs.mkdirSync(outside, { recursive: true });
  fs.writeFileSync(path.join(outside, "secret.txt"), "top secret\n");
  // Run by rg only if a pattern were ever read as `--pre=<script>`.
  const script = path.join(outside, "pre.sh");
  fs.writeFileSync(script, `#!/bin/sh\ntouch ${marker}\ncat "$1"\n`, { mode: 0o755 });
  prePattern = `--pre=${script}`;

  w(".gitignore", "build/\n*.log\n");
  w(".git/HEAD", "ref: refs/heads/main\n");
  w("README.md", "# Fixture\n\nA small tree for SearchService tests.\n");
  w("src/billing/invoice.ts", INVOICE_TS);
  w(
    "src/util/strings.ts",
    `export function slugify(title: string): string {\n  return title.toLowerCase().replace(/[^a-z0-9]+/g, "-");\n}\n// Never run: rg ${prePattern}\n`,
  );
  w("py/geometry.py", GEOMETRY_PY);
  w("go/queue.go", QUEUE_GO);
  w("build/bundle.js", "function computeInvoiceTotal() { return 0; }\n");
  w("debug.log", "computeInvoiceTotal failed\n");
  w("assets/logo.png", Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d, 0x49, 0x48, 0, 0]));
  w("data/long.txt", `${"a".repeat(100_000)}!\n`);
  for (const tag of ["a", "b"])
    w(`data/needles-${tag}.txt`, Array.from({ length: 60 }, (_, i) => `needle ${tag} ${i + 1}\n`).join(""));
  fs.symlinkSync(outside, path.join(root, "outside-link"));
  fs.symlinkSync(path.join(outside, "secret.txt"), path.join(root, "secret-link.txt"));
}

async function connectError(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

/**
 * Opens WatchIndex (file events on), runs `action` once the snapshot is in, and reads frames until
 * `rel` has a file event of `kind` and the root is idle again. Returns the action's result and the frames.
 */
async function indexedAfter<T>(
  client: AgentgateClients,
  rel: string,
  kind: IndexEventKind,
  action: () => Promise<T>,
): Promise<{ result: T; frames: WatchIndexResponse[] }> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), 30_000);
  const frames: WatchIndexResponse[] = [];
  const it = client.search.watchIndex({ includeFileEvents: true }, { signal: ac.signal })[Symbol.asyncIterator]();
  try {
    const first = await it.next();
    frames.push(first.value as WatchIndexResponse);
    const result = await action();
    let seen = false;
    for (;;) {
      const { value, done } = await it.next();
      if (done) throw new Error("WatchIndex ended early");
      frames.push(value);
      if (value.event?.path === rel && value.event.kind === kind) seen = true;
      if (seen && isIdle(value.status)) return { result, frames };
    }
  } finally {
    clearTimeout(timer);
    ac.abort();
    await it.return?.().catch(() => undefined);
  }
}

/** Listeners on the gateway's indexer (WatchIndex subscriptions and nothing else). */
function subscriptions(harness: GatewayHarness): number {
  const indexer = harness.gate.search.indexer as unknown as {
    events: { listenerCount(name: string): number };
  };
  return indexer.events.listenerCount("event");
}

beforeAll(async () => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "agentgate-rpc-search-")));
  root = path.join(tmp, "repo");
  outside = path.join(tmp, "outside");
  marker = path.join(tmp, "pre-ran");
  makeTree();
  h = await startGateway({
    env: { DATA_DIR: path.join(tmp, "data"), SEARCH_ROOTS: root, SEARCH_WATCH: "true", SEARCH_WRITE: "true" },
  });
  ag = createAgentgateClients({ baseUrl: h.url, httpVersion: "1.1" });
  grpc = createAgentgateClients({ baseUrl: h.url, protocol: "grpc" });
  // SEARCH_WATCH=true indexes the root at start.
  await untilIdle(ag);
});
afterAll(async () => {
  await h?.close();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

describe("files", () => {
  it("lists flat and as a tree, with .gitignore, hidden files and symlinks", async () => {
    const flat = await ag.search.listFiles({ depth: 3 });
    expect(flat.root).toBe("repo");
    const paths = flat.entries.map((e) => e.path);
    expect(paths).toContain("src/billing/invoice.ts");
    expect(paths).toContain("go/queue.go");
    expect(paths).not.toContain("build");
    expect(paths).not.toContain("debug.log");
    expect(paths).not.toContain(".gitignore");
    expect(paths.some((p) => p.startsWith(".git"))).toBe(false);
    // Directories first, then by path; no children in the flat layout.
    const firstFile = flat.entries.findIndex((e) => e.type !== FileEntryType.DIRECTORY);
    expect(flat.entries.slice(firstFile).every((e) => e.type !== FileEntryType.DIRECTORY)).toBe(true);
    expect(flat.entries.every((e) => e.children.length === 0)).toBe(true);
    const link = flat.entries.find((e) => e.path === "outside-link")!;
    expect(link.type).toBe(FileEntryType.SYMLINK);
    expect(paths.some((p) => p.startsWith("outside-link/"))).toBe(false);
    const invoice = flat.entries.find((e) => e.path === "src/billing/invoice.ts")!;
    expect(invoice.sizeBytes).toBe(BigInt(Buffer.byteLength(INVOICE_TS)));
    expect(invoice.modifiedAt).toBeDefined();

    const tree = await grpc.search.listFiles({ layout: ListFilesLayout.TREE, depth: 1, includeIgnored: true });
    const src = tree.entries.find((e) => e.name === "src")!;
    expect(src.type).toBe(FileEntryType.DIRECTORY);
    expect(src.children).toEqual([]);
    expect(src.hasMoreChildren).toBe(true);
    expect(tree.entries.map((e) => e.name)).toEqual(expect.arrayContaining(["build", "debug.log"]));

    const deep = await ag.search.listFiles({ layout: ListFilesLayout.TREE, path: "src", depth: 2, globs: ["*.ts"] });
    expect(deep.path).toBe("src");
    const billing = deep.entries.find((e) => e.name === "billing")!;
    expect(billing.children.map((c) => c.path)).toEqual(["src/billing/invoice.ts"]);
  });

  it("reads a focus line with context, and reports binary files", async () => {
    const r = await ag.search.readFile({
      path: "src/billing/invoice.ts",
      selection: { case: "focus", value: { line: 12, contextLines: 2 } },
    });
    expect(r).toMatchObject({ root: "repo", startLine: 10, endLine: 14, focusLine: 12, totalLines: 22 });
    expect(r.content).toBe(INVOICE_TS.split("\n").slice(9, 14).join("\n") + "\n");
    expect(r.language).toBe("typescript");
    expect(r.binary).toBe(false);
    expect(r.sha256).toMatch(/^[0-9a-f]{64}$/);

    const range = await grpc.search.readFile({
      path: "py/geometry.py",
      selection: { case: "range", value: { startLine: 10, endLine: 11 } },
    });
    expect(range.content).toBe("    def area(self):\n        return math.pi * self.radius ** 2\n");

    const bin = await ag.search.readFile({ path: "assets/logo.png" });
    expect(bin).toMatchObject({ binary: true, content: "", sizeBytes: 16n });
  });

  it("refuses paths that leave the root", async () => {
    const cases: [() => Promise<unknown>, Code][] = [
      [() => ag.search.readFile({ path: "../../etc/passwd" }), Code.InvalidArgument],
      [() => ag.search.readFile({ path: "/etc/passwd" }), Code.InvalidArgument],
      [() => ag.search.readFile({ path: "outside-link/secret.txt" }), Code.PermissionDenied],
      [() => ag.search.readFile({ path: "secret-link.txt" }), Code.PermissionDenied],
      [() => ag.search.readFile({ path: ".git/HEAD" }), Code.PermissionDenied],
      [() => ag.search.listFiles({ path: "../" }), Code.InvalidArgument],
      [() => ag.search.listFiles({ path: "/etc" }), Code.InvalidArgument],
      [() => ag.search.listFiles({ path: "outside-link" }), Code.PermissionDenied],
      [() => ag.search.writeFile({ path: "../escape.txt", content: "x" }), Code.InvalidArgument],
      [() => ag.search.writeFile({ path: path.join(outside, "abs.txt"), content: "x" }), Code.InvalidArgument],
      [() => ag.search.writeFile({ path: "outside-link/new.txt", content: "x" }), Code.PermissionDenied],
      [() => ag.search.writeFile({ path: "secret-link.txt", content: "x" }), Code.PermissionDenied],
      [
        () => ag.search.writeFile({ path: ".git/hooks/pre-commit", content: "x", createParents: true }),
        Code.PermissionDenied,
      ],
      [() => grpc.search.readFile({ path: "../../etc/passwd" }), Code.InvalidArgument],
      [() => grpc.search.readFile({ path: "outside-link/secret.txt" }), Code.PermissionDenied],
      [() => ag.search.readFile({ root: "nope", path: "README.md" }), Code.InvalidArgument],
    ];
    for (const [call, code] of cases) {
      const err = await connectError(call());
      expect(err.code, `${call.toString()}: ${err.message}`).toBe(code);
    }
    expect(fs.readFileSync(path.join(outside, "secret.txt"), "utf8")).toBe("top secret\n");
    expect(fs.readdirSync(outside).sort()).toEqual(["pre.sh", "secret.txt"]);
    expect(fs.existsSync(path.join(tmp, "escape.txt"))).toBe(false);
    expect(fs.existsSync(path.join(root, ".git/hooks"))).toBe(false);
  });
});

describe("grep", () => {
  it("takes a pattern beginning with --pre= as text and runs nothing", async () => {
    const r = await ag.search.grep({ pattern: prePattern, literal: true });
    expect(r.matches.map((m) => `${m.path}:${m.line}`)).toEqual(["src/util/strings.ts:4"]);
    expect(r.matches[0]!.submatches[0]!.text).toBe(prePattern);
    const asRegex = await grpc.search.grep({ pattern: prePattern });
    expect(asRegex.matches).toHaveLength(1);
    expect(fs.existsSync(marker)).toBe(false);
  });

  it("answers (a+)+$ on a long line promptly", async () => {
    const started = Date.now();
    const r = await ag.search.grep({ pattern: "(a+)+$", paths: ["data/long.txt"] });
    expect(r.matches).toEqual([]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("caps matches exactly across files and says so", async () => {
    const cut = await ag.search.grep({ pattern: "^needle", paths: ["data"], maxMatches: 75, contextLines: 1 });
    expect(cut.matches).toHaveLength(75);
    expect(cut.truncated).toBe(true);
    expect(cut.matches.filter((m) => m.path === "data/needles-a.txt")).toHaveLength(60);
    expect(cut.matches.at(-1)).toMatchObject({ path: "data/needles-b.txt", line: 15, lineText: "needle b 15" });
    expect(cut.matches[1]!.contextBefore).toEqual([expect.objectContaining({ line: 1, text: "needle a 1" })]);
    const all = await ag.search.grep({ pattern: "needle", globs: ["data/*.txt"], maxMatches: 120 });
    expect(all.matches).toHaveLength(120);
    expect(all.truncated).toBe(false);
    expect(all.engine).toBe("ripgrep");
    // .gitignore'd files are not searched.
    const ignored = await ag.search.grep({ pattern: "computeInvoiceTotal", literal: true });
    expect(new Set(ignored.matches.map((m) => m.path))).toEqual(new Set(["src/billing/invoice.ts"]));
  });
});

describe("index", () => {
  it("finds symbols with exact lines in TypeScript, Python and Go", async () => {
    const one = async (query: string, client = ag) => {
      const r = await client.search.findSymbols({ query, matchMode: SymbolMatchMode.EXACT, caseSensitive: true });
      expect(r.symbols, query).toHaveLength(1);
      return r.symbols[0]!;
    };
    expect(await one("computeInvoiceTotal")).toMatchObject({
      kind: SymbolKind.FUNCTION,
      root: "repo",
      path: "src/billing/invoice.ts",
      startLine: 11,
      endLine: 14,
      language: "typescript",
      score: 1,
    });
    expect(await one("addEntry")).toMatchObject({
      kind: SymbolKind.METHOD,
      startLine: 19,
      endLine: 21,
      container: "InvoiceLedger",
    });
    expect(await one("InvoiceLedger")).toMatchObject({ kind: SymbolKind.CLASS, startLine: 16, endLine: 22 });
    expect(await one("LineItem")).toMatchObject({ kind: SymbolKind.INTERFACE, startLine: 4, endLine: 8 });
    expect(await one("Circle", grpc)).toMatchObject({ kind: SymbolKind.CLASS, path: "py/geometry.py", startLine: 4 });
    expect(await one("area")).toMatchObject({
      kind: SymbolKind.METHOD,
      container: "Circle",
      startLine: 10,
      endLine: 11,
      language: "python",
    });
    expect(await one("haversine_distance")).toMatchObject({ kind: SymbolKind.FUNCTION, startLine: 14, endLine: 16 });
    expect(await one("NewRingBuffer")).toMatchObject({
      kind: SymbolKind.FUNCTION,
      path: "go/queue.go",
      startLine: 10,
      endLine: 12,
      language: "go",
    });
    expect(await one("Push")).toMatchObject({ kind: SymbolKind.METHOD, startLine: 15, endLine: 17 });
    expect(await one("RingBuffer")).toMatchObject({ startLine: 4, endLine: 7 });

    const fuzzy = await ag.search.findSymbols({ query: "cmpInvTot", matchMode: SymbolMatchMode.FUZZY });
    expect(fuzzy.symbols[0]?.name).toBe("computeInvoiceTotal");
    const kinds = await ag.search.findSymbols({ query: "", kinds: [SymbolKind.METHOD], language: "python" });
    expect(kinds.symbols.map((s) => s.name).sort()).toEqual(["__init__", "area"]);
    const bad = await connectError(ag.search.findSymbols({ query: "x", kinds: [SymbolKind.UNSPECIFIED] }));
    expect(bad.code).toBe(Code.InvalidArgument);
  });

  it("re-indexes on request; WatchIndex follows until idle", async () => {
    const { result, frames } = await indexedAfter(ag, "src/billing/invoice.ts", IndexEventKind.FILE_INDEXED, () =>
      ag.search.reindex({ force: true }),
    );
    expect(result.queuedFiles).toBeGreaterThanOrEqual(8);
    expect(result.roots.map((r) => r.root)).toEqual(["repo"]);
    // A snapshot first (no event), then events each with the root's fresh status.
    expect(frames[0]!.event).toBeUndefined();
    expect(frames[0]!.status?.directory).toBe(root);
    const kinds = frames.slice(1).map((f) => f.event?.kind);
    expect(kinds[0]).toBe(IndexEventKind.RUN_STARTED);
    expect(kinds).toContain(IndexEventKind.FILE_INDEXED);
    expect(frames.every((f) => f.status?.root === "repo")).toBe(true);
    const indexed = frames.find((f) => f.event?.path === "src/billing/invoice.ts")!;
    expect(indexed.event!.chunks).toBeGreaterThan(0);
    expect(indexed.event!.time).toBeDefined();

    const status = await ag.search.getIndexStatus({});
    expect(status).toMatchObject({
      embeddingModel: "nomic-embed-text",
      embeddingsAvailable: true,
      vectorStore: "pgvector",
    });
    const s = status.roots[0]!;
    expect(s).toMatchObject({ root: "repo", directory: root, state: IndexState.IDLE, watching: true, filesQueued: 0 });
    expect(s.chunks).toBeGreaterThan(0n);
    expect(s.chunksEmbedded).toBe(s.chunks);
    expect(s.symbols).toBeGreaterThanOrEqual(10n);
    // Ignored and binary files are not indexed as text.
    expect(s.filesIndexed).toBeLessThanOrEqual(s.filesTotal);

    // Paths: a file and a directory, resolved like every other path.
    const some = await ag.search.reindex({ paths: ["src", "go/queue.go"] });
    expect(some.queuedFiles).toBe(3);
    expect((await connectError(ag.search.reindex({ paths: ["../x"] }))).code).toBe(Code.InvalidArgument);
    await untilIdle(ag);
  });

  it("searches hybrid, with both rankers, and lexically", async () => {
    const r = await ag.search.search({ query: "computeInvoiceTotal tax rate", limit: 20 });
    expect(r.lexicalOnly).toBe(false);
    expect(r.lexicalOnlyReason).toBe("");
    expect(r.embeddingModel).toBe("nomic-embed-text");
    const rank = (hit: SearchHit, ranker: SearchRanker) => hit.ranks.find((x) => x.ranker === ranker)!;
    const best = r.hits.find((x) => rank(x, SearchRanker.LEXICAL).rank === 1)!;
    expect(best).toMatchObject({ root: "repo", path: "src/billing/invoice.ts", language: "typescript" });
    expect(best.startLine).toBeLessThanOrEqual(11);
    expect(best.endLine).toBeGreaterThanOrEqual(14);
    expect(best.snippet).toContain("export function computeInvoiceTotal");
    expect(best.chunkId).toMatch(/^[0-9a-f]{32}$/);
    expect(rank(best, SearchRanker.VECTOR).rank).toBeGreaterThan(0);
    expect(rank(best, SearchRanker.VECTOR).score).toBeGreaterThan(-1);
    expect(rank(best, SearchRanker.LEXICAL).score).toBeGreaterThan(0);
    // Fused: 1/(60 + lexical rank) + 1/(60 + vector rank), best first.
    const vr = rank(best, SearchRanker.VECTOR).rank;
    expect(best.score).toBeCloseTo(1 / 61 + 1 / (60 + vr), 9);
    for (let i = 1; i < r.hits.length; i++) expect(r.hits[i - 1]!.score).toBeGreaterThanOrEqual(r.hits[i]!.score);
    expect(r.hits.some((x) => x.path.startsWith("build/") || x.path === "debug.log")).toBe(false);

    const lex = await grpc.search.search({ query: "haversine distance", mode: SearchMode.LEXICAL });
    expect(lex).toMatchObject({
      lexicalOnly: true,
      lexicalOnlyReason: "lexical mode was requested",
      embeddingModel: "",
    });
    expect(lex.hits[0]).toMatchObject({ path: "py/geometry.py", language: "python" });
    expect(lex.hits[0]!.ranks).toEqual([expect.objectContaining({ ranker: SearchRanker.LEXICAL, rank: 1 })]);
    expect(lex.hits[0]!.score).toBe(lex.hits[0]!.ranks[0]!.score);

    const vec = await ag.search.search({ query: "ring buffer", mode: SearchMode.VECTOR, root: "repo" });
    expect(vec.hits.length).toBeGreaterThan(0);
    expect(vec.hits[0]!.ranks.map((x) => x.ranker)).toEqual([SearchRanker.VECTOR]);

    const filtered = await ag.search.search({ query: "computeInvoiceTotal", pathGlobs: ["go/**"] });
    expect(filtered.hits.every((x) => x.path.startsWith("go/"))).toBe(true);
    expect((await connectError(ag.search.search({ query: "" }))).code).toBe(Code.InvalidArgument);
    expect((await connectError(ag.search.search({ query: "x", mode: 9 as SearchMode }))).code).toBe(
      Code.InvalidArgument,
    );
  });

  it("follows WriteFile, ApplyPatch and a deletion", async () => {
    const rel = "src/shipping/parcel.ts";
    const { result: written } = await indexedAfter(ag, rel, IndexEventKind.FILE_INDEXED, () =>
      ag.search.writeFile({ path: rel, content: PARCEL_TS, createParents: true, expectedSha256: "" }),
    );
    expect(written).toMatchObject({ root: "repo", path: rel, created: true, sizeBytes: BigInt(PARCEL_TS.length) });
    expect(fs.readFileSync(path.join(root, rel), "utf8")).toBe(PARCEL_TS);
    const found = await ag.search.search({ query: "estimateParcelPostage", mode: SearchMode.LEXICAL });
    expect(found.hits[0]).toMatchObject({ path: rel, startLine: 1 });
    const oldChunk = found.hits[0]!.chunkId;
    const sym = await ag.search.findSymbols({ query: "estimateParcelPostage", matchMode: SymbolMatchMode.EXACT });
    expect(sym.symbols.map((s) => [s.path, s.startLine, s.endLine])).toEqual([[rel, 2, 4]]);

    // A stale sha256 is refused.
    const stale = await connectError(ag.search.writeFile({ path: rel, content: "x", expectedSha256: "0".repeat(64) }));
    expect(stale.code).toBe(Code.Aborted);

    const patch = [
      `--- a/${rel}`,
      `+++ b/${rel}`,
      "@@ -1,4 +1,4 @@",
      " /** Shipping rates. */",
      "-export function estimateParcelPostage(weightGrams: number): number {",
      "+export function estimateFreightCharge(weightGrams: number): number {",
      "   return 3.5 + weightGrams * 0.002;",
      " }",
      "",
    ].join("\n");
    const dry = await ag.search.applyPatch({ patch, dryRun: true });
    expect(dry.applied).toBe(false);
    expect(fs.readFileSync(path.join(root, rel), "utf8")).toBe(PARCEL_TS);
    const { result: patched } = await indexedAfter(ag, rel, IndexEventKind.FILE_INDEXED, () =>
      ag.search.applyPatch({ patch }),
    );
    expect(patched.applied).toBe(true);
    expect(patched.files).toEqual([
      expect.objectContaining({ path: rel, kind: PatchFileChangeKind.MODIFY, hunks: 1, sha256: expect.any(String) }),
    ]);
    const renamed = await ag.search.search({ query: "estimateFreightCharge", mode: SearchMode.LEXICAL });
    expect(renamed.hits[0]).toMatchObject({ path: rel });
    const gone = await ag.search.search({ query: "estimateParcelPostage", mode: SearchMode.LEXICAL });
    // The path still matches "parcel"; the old chunk (and its text) is gone.
    expect(gone.hits.filter((x) => x.chunkId === oldChunk || x.snippet.includes("estimateParcelPostage"))).toEqual([]);
    expect(
      (await ag.search.findSymbols({ query: "estimateFreightCharge", matchMode: SymbolMatchMode.EXACT })).symbols,
    ).toHaveLength(1);

    // A hunk that does not apply: failed_precondition, nothing changed.
    const again = await connectError(ag.search.applyPatch({ patch }));
    expect(again.code).toBe(Code.FailedPrecondition);

    const content = fs.readFileSync(path.join(root, rel), "utf8").split("\n").slice(0, -1);
    const del = [
      `--- a/${rel}`,
      "+++ /dev/null",
      `@@ -1,${content.length} +0,0 @@`,
      ...content.map((l) => `-${l}`),
      "",
    ].join("\n");
    const { result: deleted, frames } = await indexedAfter(ag, rel, IndexEventKind.FILE_REMOVED, () =>
      ag.search.applyPatch({ patch: del }),
    );
    expect(deleted.files[0]).toMatchObject({ path: rel, kind: PatchFileChangeKind.DELETE, sha256: "" });
    expect(fs.existsSync(path.join(root, rel))).toBe(false);
    expect(frames.some((f) => f.event?.kind === IndexEventKind.FILE_REMOVED && f.event.path === rel)).toBe(true);
    for (const mode of [SearchMode.LEXICAL, SearchMode.HYBRID]) {
      const after = await ag.search.search({ query: "estimateFreightCharge weightGrams", mode, limit: 100 });
      expect(after.hits.filter((x) => x.path === rel || x.chunkId === oldChunk)).toEqual([]);
    }
    expect(
      (await ag.search.findSymbols({ query: "estimateFreightCharge", matchMode: SymbolMatchMode.EXACT })).symbols,
    ).toEqual([]);
    const s = (await ag.search.getIndexStatus({ root: "repo" })).roots[0]!;
    expect(s.chunksEmbedded).toBe(s.chunks);
  });

  it("ends WatchIndex streams when the client cancels, leaving no subscription behind", async () => {
    const before = subscriptions(h);
    const streams = [ag, grpc].map(async (client) => {
      const ac = new AbortController();
      const it = client.search.watchIndex({ includeFileEvents: true }, { signal: ac.signal })[Symbol.asyncIterator]();
      const first = await it.next();
      expect(first.value?.status?.root).toBe("repo");
      const pending = it.next();
      ac.abort();
      const err = await connectError(pending);
      expect(err.code).toBe(Code.Canceled);
    });
    await Promise.all(streams);
    // The server sees the cancellation asynchronously: follow it with cheap status calls.
    for (let i = 0; i < 200 && subscriptions(h) > before; i++) await ag.search.getIndexStatus({});
    expect(subscriptions(h)).toBe(before);
  });
});

describe("stack traces", () => {
  it("locates a Node trace's frames in the tree", async () => {
    const trace = [
      "TypeError: Cannot read properties of undefined (reading 'unitPrice')",
      "    at computeInvoiceTotal (/home/ci/build/project/src/billing/invoice.ts:12:60)",
      `    at slugify (file://${root}/src/util/strings.ts:2:10)`,
      "    at node:internal/main/run_main_module:28:49",
    ].join("\n");
    const r = await ag.search.locateStackTrace({ text: trace, contextLines: 1 });
    expect(r.frames).toHaveLength(2);
    expect(r.frames[0]).toMatchObject({
      format: StackTraceFormat.NODE,
      function: "computeInvoiceTotal",
      line: 12,
      column: 60,
      resolved: true,
      root: "repo",
      path: "src/billing/invoice.ts",
      startLine: 11,
      endLine: 13,
    });
    expect(r.frames[0]!.snippet).toBe(INVOICE_TS.split("\n").slice(10, 13).join("\n") + "\n");
    expect(r.frames[1]).toMatchObject({ path: "src/util/strings.ts", line: 2, startLine: 1, endLine: 3 });
    const all = await grpc.search.locateStackTrace({ text: trace, includeUnresolved: true });
    expect(all.frames).toHaveLength(3);
    expect(all.frames[2]).toMatchObject({ resolved: false, snippet: "" });
  });
});

describe("writes off, embedding model unreachable", () => {
  let h2: GatewayHarness;
  let ag2: AgentgateClients;

  beforeAll(async () => {
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    h2 = await startGateway({
      ollama: h.ollama,
      env: { SEARCH_ROOTS: root, SEARCH_WATCH: "false", UPSTREAM: `http://127.0.0.1:${port}` },
    });
    ag2 = createAgentgateClients({ baseUrl: h2.url, httpVersion: "1.1" });
    const since = Date.now();
    const queued = await ag2.search.reindex({});
    expect(queued.queuedFiles).toBeGreaterThan(0);
    await untilIdle(ag2, since);
  });
  afterAll(async () => {
    await h2?.close();
  });

  it("refuses WriteFile and ApplyPatch with permission_denied", async () => {
    const w = await connectError(ag2.search.writeFile({ path: "new.txt", content: "x" }));
    expect(w.code).toBe(Code.PermissionDenied);
    expect(w.rawMessage).toMatch(/SEARCH_WRITE/);
    const p = await connectError(ag2.search.applyPatch({ patch: "--- /dev/null\n+++ b/new.txt\n@@ -0,0 +1 @@\n+x\n" }));
    expect(p.code).toBe(Code.PermissionDenied);
    expect(fs.existsSync(path.join(root, "new.txt"))).toBe(false);
  });

  it("searches lexically and says why; VECTOR mode is unavailable", async () => {
    const r = await ag2.search.search({ query: "computeInvoiceTotal" });
    expect(r.lexicalOnly).toBe(true);
    expect(r.lexicalOnlyReason).toMatch(/nomic-embed-text/);
    expect(r.embeddingModel).toBe("");
    expect(r.hits[0]).toMatchObject({ path: "src/billing/invoice.ts" });
    expect(r.hits[0]!.ranks.map((x) => x.ranker)).toEqual([SearchRanker.LEXICAL]);
    const v = await connectError(ag2.search.search({ query: "computeInvoiceTotal", mode: SearchMode.VECTOR }));
    expect(v.code).toBe(Code.Unavailable);
    const s = await ag2.search.getIndexStatus({});
    expect(s.embeddingsAvailable).toBe(false);
    expect(s.roots[0]!.chunksEmbedded).toBe(0n);
    expect(s.roots[0]!.chunks).toBeGreaterThan(0n);
  });

  it("ends open WatchIndex streams with unavailable when the gateway shuts down", async () => {
    const stream = ag2.search.watchIndex({})[Symbol.asyncIterator]();
    expect((await stream.next()).value?.status?.root).toBe("repo");
    const pending = stream.next();
    const closing = h2.close();
    h2 = undefined as unknown as GatewayHarness;
    expect((await connectError(pending)).code).toBe(Code.Unavailable);
    await closing;
  });
});
