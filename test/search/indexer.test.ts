/**
 * The indexer and the searches over its index on a real tree: an in-memory PGlite with pgvector,
 * the Ollama double's embeddings, chokidar watching a temporary root. Edits, additions and
 * deletions must show in search results, with no stale chunks or vectors left behind.
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SymbolKind, SymbolMatchMode } from "../../gen/agentgate/v1/search_service_pb.js";
import { OllamaEmbedder } from "../../src/search/embeddings.js";
import { HybridSearch } from "../../src/search/index/hybrid-search.js";
import { IndexStore } from "../../src/search/index/index-store.js";
import { Indexer, type IndexEvent } from "../../src/search/index/indexer.js";
import { LexicalSearch } from "../../src/search/index/lexical-search.js";
import { SymbolFinder } from "../../src/search/index/symbol-finder.js";
import { VectorTargetProvider } from "../../src/search/index/vector-target.js";
import { SearchRoots } from "../../src/search/roots.js";
import { PgvectorStore } from "../../src/search/vectors/pgvector-store.js";
import { openDatabase, type Database } from "../../src/storage/database.js";
import { startOllamaDouble, type OllamaDouble } from "../doubles/ollama-double.js";

const REPO = path.resolve(import.meta.dirname, "../..");
/** A real multi-thousand-file source tree shipped with the project's dependencies. */
const REAL_TREE = path.join(REPO, "node_modules/typescript/lib");

let db: Database;
let ollama: OllamaDouble;
let dir: string;
let roots: SearchRoots;
let store: IndexStore;
let lexical: LexicalSearch;
let vectors: VectorTargetProvider;
let indexer: Indexer;
let search: HybridSearch;
let symbols: SymbolFinder;
const events: IndexEvent[] = [];

const write = (rel: string, text: string) => {
  mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
  writeFileSync(path.join(dir, rel), text);
};

async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`not reached in ${ms} ms: ${JSON.stringify(v).slice(0, 500)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const paths = async (query: string, mode: "hybrid" | "lexical" | "vector" = "hybrid") =>
  (await search.search({ query, roots: [roots.list()[0]!.dir], limit: 10, mode })).hits.map((h) => h.chunk.path);

beforeAll(async () => {
  dir = mkdtempSync(path.join(os.tmpdir(), "indexer-"));
  write(
    "src/config/parse-config.ts",
    [
      "/** Reads the settings file and validates every field. */",
      "export function parseConfigFile(text: string): Record<string, string> {",
      "  const out: Record<string, string> = {};",
      "  for (const line of text.split('\\n')) {",
      "    const [key, value] = line.split('=');",
      "    if (key) out[key.trim()] = (value ?? '').trim();",
      "  }",
      "  return out;",
      "}",
      "",
      "export class ConfigError extends Error {}",
      "",
    ].join("\n"),
  );
  write(
    "src/net/retry.py",
    [
      "import time",
      "",
      "",
      "def retry_with_backoff(fn, attempts=5):",
      '    """Call fn until it succeeds, sleeping exponentially longer between attempts."""',
      "    for i in range(attempts):",
      "        try:",
      "            return fn()",
      "        except Exception:",
      "            time.sleep(2 ** i)",
      "    return fn()",
      "",
    ].join("\n"),
  );
  write("docs/readme.md", "# Widgets\n\nThe widget factory assembles gizmos from sprockets.\n");
  write(".gitignore", "build/\n*.log\n");
  write("build/out.js", "function parseConfigFile() {}\n");
  write("debug.log", "parseConfigFile failed\n");
  writeFileSync(path.join(dir, "image.bin"), Buffer.from([0, 1, 2, 3, 0, 255]));

  db = await openDatabase({ dataDir: "", memory: true });
  ollama = await startOllamaDouble();
  roots = await SearchRoots.create([dir]);
  store = new IndexStore(db);
  lexical = new LexicalSearch(db);
  vectors = new VectorTargetProvider({
    embedder: new OllamaEmbedder({ baseUrl: ollama.url, model: "nomic-embed-text" }),
    store: new PgvectorStore(db),
  });
  indexer = new Indexer({
    roots,
    store,
    vectors: () => vectors.get(),
    watch: true,
    debounceMs: 100,
    onChange: () => lexical.invalidate(),
  });
  indexer.subscribe((e) => events.push(e));
  search = new HybridSearch({ store, lexical, vectors });
  symbols = new SymbolFinder(store);
  indexer.start();
  await indexer.idle();
}, 60_000);

afterAll(async () => {
  await indexer?.close();
  await db?.close();
  await ollama?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("the first scan", () => {
  it("indexes the tree with ripgrep's rules: .gitignore'd, hidden and binary files stay out", async () => {
    const root = roots.list()[0]!;
    const files = await store.files(root.dir);
    expect([...files.keys()].sort()).toEqual(
      ["docs/readme.md", "image.bin", "src/config/parse-config.ts", "src/net/retry.py"].sort(),
    );
    expect(files.get("image.bin")!.error).toBe("binary");
    const status = await indexer.status(root);
    expect(status).toMatchObject({ state: "idle", filesFailed: 1, filesQueued: 0, watching: true });
    expect(status.chunks).toBeGreaterThanOrEqual(3);
    expect(status.chunksEmbedded).toBe(status.chunks);
    expect(status.symbols).toBeGreaterThanOrEqual(3);
    expect(events.map((e) => e.kind)).toContain("run_finished");
  });

  it("ranks lexically with split identifiers and BM25, and fuses with vectors", async () => {
    // "parse config" matches parseConfigFile only through identifier splitting.
    expect((await paths("parse config", "lexical"))[0]).toBe("src/config/parse-config.ts");
    expect((await paths("exponential backoff retry"))[0]).toBe("src/net/retry.py");
    const r = await search.search({ query: "retry with backoff", roots: [roots.list()[0]!.dir], limit: 5 });
    expect(r.lexicalOnly).toBe(false);
    expect(r.embeddingModel).toBe("nomic-embed-text");
    const top = r.hits[0]!;
    expect(top.chunk).toMatchObject({ path: "src/net/retry.py", language: "python", symbol: "retry_with_backoff" });
    expect(top.lexical?.rank).toBe(1);
    expect(top.vector?.rank).toBeGreaterThan(0);
    expect(top.score).toBeCloseTo(1 / 61 + 1 / (60 + top.vector!.rank), 10);
    // Filters.
    // (lexical: the vector ranking returns the nearest chunks whatever they are, and a *.ts chunk is one)
    expect(
      await search.search({ query: "retry", roots: [roots.list()[0]!.dir], pathGlobs: ["*.ts"], mode: "lexical" }),
    ).toMatchObject({
      hits: [],
    });
    const ts = await search.search({ query: "config", roots: [roots.list()[0]!.dir], languages: ["typescript"] });
    expect(ts.hits.every((h) => h.chunk.language === "typescript")).toBe(true);
  });

  it("finds symbols with exact lines, by substring, prefix and fuzzy match", async () => {
    const dirs = [roots.list()[0]!.dir];
    const exact = await symbols.find({ query: "parseConfigFile", mode: SymbolMatchMode.EXACT, roots: dirs });
    expect(exact.symbols).toEqual([
      expect.objectContaining({
        name: "parseConfigFile",
        kind: SymbolKind.FUNCTION,
        path: "src/config/parse-config.ts",
        startLine: 2,
        endLine: 9,
        root: dirs[0],
      }),
    ]);
    const fuzzy = await symbols.find({ query: "rwb", mode: SymbolMatchMode.FUZZY, roots: dirs });
    expect(fuzzy.symbols[0]).toMatchObject({ name: "retry_with_backoff", startLine: 4, endLine: 11 });
    const classes = await symbols.find({ query: "", kinds: [SymbolKind.CLASS], roots: dirs });
    expect(classes.symbols.map((s) => s.name)).toEqual(["ConfigError"]);
    const none = await symbols.find({ query: "100%_", roots: dirs });
    expect(none.symbols).toEqual([]);
  });
});

describe("following changes (watching)", () => {
  it("an edit replaces the file's chunks and vectors", async () => {
    write("docs/readme.md", "# Widgets\n\nThe widget factory now also polishes flanges.\n");
    await until(
      () => paths("flanges", "lexical"),
      (p) => p.includes("docs/readme.md"),
    );
    await indexer.idle();
    expect(await paths("sprockets", "lexical")).toEqual([]);
    const chunks = await store.chunksOf(roots.list()[0]!.dir, "docs/readme.md");
    const target = (await vectors.get())!;
    expect(await target.collection.count({ root: roots.list()[0]!.dir })).toBe(
      (await indexer.status(roots.list()[0]!)).chunks,
    );
    expect(chunks.every((c) => c.content.includes("flanges"))).toBe(true);
  });

  it("an added file is found; a deleted one leaves no chunk, symbol or vector", async () => {
    write(
      "src/geo/haversine.go",
      "package geo\n\n// Haversine distance between two coordinates.\nfunc Haversine(a, b float64) float64 {\n\treturn a - b\n}\n",
    );
    await until(
      () => paths("haversine", "lexical"),
      (p) => p[0] === "src/geo/haversine.go",
    );
    const root = roots.list()[0]!;
    rmSync(path.join(dir, "src/net"), { recursive: true });
    await until(
      () => paths("backoff", "lexical"),
      (p) => p.length === 0,
    );
    await indexer.idle();
    expect((await store.files(root.dir)).has("src/net/retry.py")).toBe(false);
    expect((await symbols.find({ query: "retry", roots: [root.dir] })).symbols).toEqual([]);
    const status = await indexer.status(root);
    expect(await (await vectors.get())!.collection.count({ root: root.dir })).toBe(status.chunks);
    expect(events.some((e) => e.kind === "file_removed" && e.path === "src/net/retry.py")).toBe(true);
  });

  it("a file that becomes .gitignore'd leaves the index", async () => {
    write("src/geo/notes.log.md", "scratch notes about quaternions\n");
    await until(
      () => paths("quaternions", "lexical"),
      (p) => p.length === 1,
    );
    write(".gitignore", "build/\n*.log\nnotes.log.md\n");
    await indexer.reindex(roots.list()[0]!, ["src/geo/notes.log.md"]);
    await until(
      () => paths("quaternions", "lexical"),
      (p) => p.length === 0,
    );
  });
});

describe("a restart", () => {
  it("a new indexer over the same database re-indexes only what changed while it was down", async () => {
    await indexer.close();
    const root = roots.list()[0]!;
    write("src/config/parse-config.ts", "export function parseIniFile(text: string) {\n  return text;\n}\n");
    write("src/late.ts", "export const lateArrival = 1;\n");
    const again = new Indexer({ roots, store, vectors: () => vectors.get(), onChange: () => lexical.invalidate() });
    const seen: IndexEvent[] = [];
    again.subscribe((e) => seen.push(e));
    again.start();
    await again.idle();
    const indexed = seen.filter((e) => e.kind === "file_indexed").map((e) => (e as { path: string }).path);
    expect(indexed.sort()).toEqual(["src/config/parse-config.ts", "src/late.ts"]);
    expect((await symbols.find({ query: "parseIniFile", roots: [root.dir] })).symbols).toHaveLength(1);
    expect((await symbols.find({ query: "parseConfigFile", roots: [root.dir] })).symbols).toEqual([]);
    indexer = again;
  });
});

describe("a real multi-thousand-file tree", () => {
  it("indexes it, then follows edits, additions and deletions", async () => {
    const tree = mkdtempSync(path.join(os.tmpdir(), "indexer-real-"));
    try {
      // typescript/lib: its .d.ts files (thousands of declarations) plus a synthetic package of many small files.
      const libs = readdirSync(REAL_TREE).filter(
        (f) => f.endsWith(".d.ts") && statSync(path.join(REAL_TREE, f)).size < 400_000,
      );
      for (const f of libs) cpSync(path.join(REAL_TREE, f), path.join(tree, "lib", f));
      for (let i = 0; i < 2000; i++) {
        const sub = path.join(tree, "pkg", String(i % 40));
        mkdirSync(sub, { recursive: true });
        writeFileSync(
          path.join(sub, `m${i}.ts`),
          `/** Module ${i}. */\nexport function helper${i}(x: number): number {\n  return x + ${i};\n}\n`,
        );
      }
      const bigRoots = await SearchRoots.create([tree]);
      const big = new Indexer({ roots: bigRoots, store, onChange: () => lexical.invalidate() });
      const t0 = performance.now();
      big.start();
      await big.idle();
      const ms = performance.now() - t0;
      const root = bigRoots.list()[0]!;
      const status = await big.status(root);
      console.log(
        `indexed ${status.filesTotal} files, ${status.chunks} chunks, ${status.symbols} symbols in ${Math.round(ms)} ms ` +
          `(${Math.round((status.filesTotal / ms) * 1000)} files/s, lexical only)`,
      );
      expect(status.filesTotal).toBeGreaterThan(2000);
      const find = async (q: string) =>
        (await search.search({ query: q, roots: [root.dir], mode: "lexical", limit: 3 })).hits.map((h) => h.chunk.path);
      expect((await find("helper1234"))[0]).toBe("pkg/34/m1234.ts");
      writeFileSync(path.join(tree, "pkg/34/m1234.ts"), "export function renamedHelper(x: number) {\n  return x;\n}\n");
      rmSync(path.join(tree, "pkg/0/m0.ts"));
      writeFileSync(path.join(tree, "pkg/new.ts"), "export const freshlyAddedThing = 1;\n");
      await big.reindex(root);
      await big.idle();
      expect(await find("helper1234")).not.toContain("pkg/34/m1234.ts");
      expect((await find("renamed helper"))[0]).toBe("pkg/34/m1234.ts");
      expect(await find("helper0")).not.toContain("pkg/0/m0.ts");
      expect((await find("freshly added thing"))[0]).toBe("pkg/new.ts");
      await big.close();
    } finally {
      rmSync(tree, { recursive: true, force: true });
    }
  }, 300_000);
});
