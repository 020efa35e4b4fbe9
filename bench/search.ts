/**
 * bench/search: SearchService's retrieval quality and speed, in-process over the search domain
 * (src/search/), with the Ollama double (its own process) for embeddings. See bench/README.md.
 *
 *   npx tsx bench/search.ts [--json out.json] [--quick] [--only quality,grep,index,latency]
 *
 * 1. Retrieval quality: a labelled query set built from an installed npm package (default
 *    node_modules/openai/src): every function or method preceded by a JSDoc block whose first sentence
 *    has >= 5 words; the query is that sentence, the target the symbol's path and line range. The
 *    package is indexed from a temporary copy with every JSDoc block blanked (line numbers kept), so the
 *    answer is not in the text. recall@1/5/10 and MRR for lexical, vector and hybrid ranking. The
 *    vectors are the double's deterministic bag-of-words hashing embeddings, not a trained model.
 * 2. Grep speed: grep() with the ripgrep engine over a big tree (default all of node_modules) vs `rg`
 *    run directly on the same tree in the same run: with our exact argv (`--json`, parallel), with
 *    the same search flags but plain output and `--sort path`, and plain rg with its defaults
 *    (parallel, unsorted). Interleaved repetitions, medians; the builtin engine's time once, for information.
 * 3. Indexing throughput: files/s and chunks/s for the labelled package with embeddings, and for the
 *    >= 50k-chunk tree of section 4 lexical-only, then its embedding pass.
 * 4. Search latency at >= 50k chunks on pgvector (PGlite on disk, HNSW built by optimize()): the
 *    labelled queries (>= 200, cycled when fewer) in hybrid, lexical and vector mode, interleaved.
 *
 * Progress goes to stderr; tables and a summary block to stdout, whose last line is every figure as
 * JSON unless --json <path> writes them to a file.
 */
import { spawn } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { SymbolKind } from "../gen/agentgate/v1/search_service_pb.js";
import { OllamaEmbedder } from "../src/search/embeddings.js";
import { grep } from "../src/search/grep/grep.js";
import { ripgrepArgs } from "../src/search/grep/ripgrep.js";
import { compilePattern } from "../src/search/grep/pattern.js";
import type { GrepPlan } from "../src/search/grep/plan.js";
import type { GrepInput } from "../src/search/grep/types.js";
import { HybridSearch, type SearchMode } from "../src/search/index/hybrid-search.js";
import { IndexStore } from "../src/search/index/index-store.js";
import { Indexer } from "../src/search/index/indexer.js";
import { LexicalSearch } from "../src/search/index/lexical-search.js";
import { collectionName, VectorTargetProvider } from "../src/search/index/vector-target.js";
import { SearchRoots, type SearchRoot } from "../src/search/roots.js";
import { parseSymbols } from "../src/search/symbols/extract.js";
import { PgvectorStore } from "../src/search/vectors/pgvector-store.js";
import { openDatabase, type Database } from "../src/storage/database.js";
import { childEnv, spawnChild, withTimeout, type Child } from "./lib/processes.js";
import { round3, summarize, table } from "./lib/stats.js";

const ROOT = path.resolve(import.meta.dirname, "..");

const { values: args } = parseArgs({
  options: {
    json: { type: "string" },
    quick: { type: "boolean", default: false },
    only: { type: "string" },
    package: { type: "string" },
    "grep-tree": { type: "string" },
    "grep-reps": { type: "string" },
    "no-builtin": { type: "boolean", default: false },
    chunks: { type: "string" },
    queries: { type: "string" },
    "asis-queries": { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const quick = args.quick!;
const int = (v: string | undefined, def: number) => (v === undefined ? def : Math.max(1, Number.parseInt(v, 10)));
const SECTIONS = new Set((args.only ?? "quality,grep,index,latency").split(",").map((s) => s.trim()));
const PACKAGES = (args.package ?? "node_modules/openai/src").split(",").map((p) => path.resolve(ROOT, p.trim()));
const GREP_TREE = path.resolve(ROOT, args["grep-tree"] ?? "node_modules");
const GREP_REPS = int(args["grep-reps"], quick ? 3 : 5);
const TARGET_CHUNKS = int(args.chunks, quick ? 8_000 : 50_000);
const LATENCY_QUERIES = int(args.queries, quick ? 60 : 200);
const ASIS_QUERIES = int(args["asis-queries"], quick ? 5 : 20);
const KS = [1, 5, 10] as const;
const MODES: SearchMode[] = ["lexical", "vector", "hybrid"];
const CODE_EXT = /\.(?:[cm]?[jt]s|[jt]sx)$/;
/** Packages copied first (in this order) into the latency tree; then the rest, until it holds TARGET_CHUNKS chunks. */
const LATENCY_PACKAGES = [
  "openai",
  "@bufbuild",
  "@sinclair",
  "@connectrpc",
  "fastify",
  "@fastify",
  "ajv",
  "pino",
  "undici",
  "@qdrant",
  "@electric-sql",
  "vitest",
  "@vitest",
  "vite",
  "@types",
  "prettier",
  "typescript",
];

const log = (s = "") => process.stderr.write(`${s}\n`);
const out = (s = "") => process.stdout.write(`${s}\n`);
const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100);
const secs = (ms: number) => Math.round(ms / 100) / 10;
const f3 = (x: number) => x.toFixed(3);
const median = (xs: number[]) => summarize(xs).p50;

// --- the labelled query set ---

interface Label {
  query: string;
  path: string;
  startLine: number;
  endLine: number;
  symbol: string;
}

interface LabelSet {
  labels: Label[];
  files: number;
  documented: number;
  droppedDuplicate: number;
  droppedShort: number;
}

function listFiles(dir: string, filter: (rel: string) => boolean, rel = ""): string[] {
  const found: string[] = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    if (e.name.startsWith(".")) continue;
    const r = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) found.push(...listFiles(dir, filter, r));
    else if (e.isFile() && filter(r)) found.push(r);
  }
  return found;
}

/** Every `/** … *\/` block replaced by as many blank lines as it spanned. */
function blankJsDoc(source: string): string {
  return source.replace(/\/\*\*(?!\/)[\s\S]*?\*\//g, (m) => m.replace(/[^\n]/g, ""));
}

/** The first sentence of the JSDoc block that ends on the line right above `line` (1-based), if any. */
function docSummary(lines: string[], line: number): string | undefined {
  let end = line - 2;
  if (end < 0 || !lines[end]!.trim().endsWith("*/")) return undefined;
  let start = end;
  while (start >= 0 && !lines[start]!.includes("/**")) {
    if (start < end && lines[start]!.includes("*/")) return undefined;
    start--;
  }
  if (start < 0) return undefined;
  const body = lines
    .slice(start, end + 1)
    .join("\n")
    .replace(/^[\s\S]*?\/\*\*/, "")
    .replace(/\*\/[\s\S]*$/, "")
    .split("\n")
    .map((l) => l.replace(/^\s*\*? ?/, "").trimEnd());
  const text: string[] = [];
  for (const l of body) {
    if (l.trim().startsWith("@")) break;
    if (!l.trim()) {
      if (text.length) break;
      continue;
    }
    text.push(l.trim());
  }
  const para = text
    .join(" ")
    .replace(/\{@link(?:code|plain)?\s+([^}|\s]+)(?:[\s|][^}]*)?\}/g, "$1")
    .replace(/\s+/g, " ")
    .trim();
  const m = /^(.+?[.!?])(?:\s|$)/.exec(para);
  return (m ? m[1]! : para).trim();
}

async function buildLabels(pkgDirs: string[], copyRoot: string): Promise<LabelSet> {
  const all: Label[] = [];
  let files = 0;
  let documented = 0;
  let droppedShort = 0;
  for (const pkg of pkgDirs) {
    const prefix = pkgDirs.length > 1 ? `${path.basename(path.dirname(pkg))}-${path.basename(pkg)}/` : "";
    for (const rel of listFiles(pkg, () => true)) {
      const src = readFileSync(path.join(pkg, rel));
      const dest = path.join(copyRoot, prefix + rel);
      mkdirSync(path.dirname(dest), { recursive: true });
      if (!CODE_EXT.test(rel)) {
        writeFileSync(dest, src);
        continue;
      }
      files++;
      const text = src.toString("utf8");
      writeFileSync(dest, blankJsDoc(text));
      const parsed = await parseSymbols(prefix + rel, text);
      const lines = text.split("\n");
      for (const s of parsed.symbols) {
        if (s.kind !== SymbolKind.FUNCTION && s.kind !== SymbolKind.METHOD) continue;
        const summary = docSummary(lines, s.startLine);
        if (summary === undefined) continue;
        documented++;
        if (summary.split(/\s+/).filter((w) => /\p{L}/u.test(w)).length < 5) {
          droppedShort++;
          continue;
        }
        all.push({ query: summary, path: prefix + rel, startLine: s.startLine, endLine: s.endLine, symbol: s.name });
      }
    }
  }
  // The same summary on several functions (overloads, a resource's CRUD twins) is an ambiguous label.
  const count = new Map<string, number>();
  for (const l of all) count.set(l.query.toLowerCase(), (count.get(l.query.toLowerCase()) ?? 0) + 1);
  const labels = all.filter((l) => count.get(l.query.toLowerCase()) === 1);
  return { labels, files, documented, droppedDuplicate: all.length - labels.length, droppedShort };
}

// --- the index ---

interface SearchStack {
  db: Database;
  root: SearchRoot;
  store: IndexStore;
  lexical: LexicalSearch;
  vectors: VectorTargetProvider;
  pg: PgvectorStore;
  search: HybridSearch;
  indexer(withVectors: boolean): Indexer;
}

async function stack(dir: string, db: Database, ollamaUrl: string): Promise<SearchStack> {
  const roots = await SearchRoots.create([dir]);
  const store = new IndexStore(db);
  const lexical = new LexicalSearch(db);
  const pg = new PgvectorStore(db);
  const vectors = new VectorTargetProvider({
    embedder: new OllamaEmbedder({ baseUrl: ollamaUrl, model: "nomic-embed-text" }),
    store: pg,
  });
  return {
    db,
    root: roots.list()[0]!,
    store,
    lexical,
    vectors,
    pg,
    search: new HybridSearch({ store, lexical, vectors }),
    indexer: (withVectors) =>
      new Indexer({
        roots,
        store,
        vectors: withVectors ? () => vectors.get() : undefined,
        onChange: () => lexical.invalidate(),
      }),
  };
}

interface Throughput {
  files: number;
  chunks: number;
  seconds: number;
  filesPerSec: number;
  chunksPerSec: number;
}

function throughput(files: number, chunks: number, ms: number): Throughput {
  return {
    files,
    chunks,
    seconds: secs(ms),
    filesPerSec: Math.round((files / ms) * 1000 * 10) / 10,
    chunksPerSec: Math.round((chunks / ms) * 1000 * 10) / 10,
  };
}

/** Logs the indexer's progress every few seconds until it is idle. */
async function idleWithProgress(indexer: Indexer, s: SearchStack, what: string): Promise<void> {
  const t0 = performance.now();
  const timer = setInterval(() => {
    void s.indexer; // keep the closure small
    void indexer
      .status(s.root)
      .then((st) =>
        log(
          `  ${what}: ${st.filesIndexed} files, ${st.chunks} chunks, ${st.chunksEmbedded} embedded, ${st.filesQueued} queued (${secs(performance.now() - t0)} s)`,
        ),
      );
  }, 15_000);
  try {
    await indexer.idle();
  } finally {
    clearInterval(timer);
  }
}

// --- 1. retrieval quality ---

interface Quality {
  package: string[];
  codeFiles: number;
  documentedFunctions: number;
  droppedShort: number;
  droppedDuplicate: number;
  queries: number;
  chunks: number;
  byMode: Record<string, { r1: number; r5: number; r10: number; mrr: number; p50ms: number }>;
  indexing: Throughput;
}

async function quality(ollamaUrl: string, tmp: string): Promise<{ q: Quality; labels: Label[] }> {
  const dir = path.join(tmp, "labelled");
  mkdirSync(dir);
  const set = await buildLabels(PACKAGES, dir);
  log(
    `labelled set: ${set.files} code files, ${set.documented} documented functions/methods, ` +
      `${set.labels.length} queries (${set.droppedShort} summaries under 5 words, ${set.droppedDuplicate} with duplicate summaries dropped)`,
  );
  if (set.labels.length < 150) log(`warning: fewer than 150 queries; add a package with --package a,b`);
  const db = await openDatabase({ dataDir: "", memory: true });
  const s = await stack(dir, db, ollamaUrl);
  const indexer = s.indexer(true);
  const t0 = performance.now();
  indexer.start();
  await idleWithProgress(indexer, s, "labelled package");
  const ms = performance.now() - t0;
  const st = await indexer.status(s.root);
  await indexer.close();
  const indexing = throughput(st.filesIndexed, st.chunks, ms);
  log(
    `indexed the labelled package with embeddings: ${st.filesIndexed} files, ${st.chunks} chunks (${st.chunksEmbedded} embedded) in ${indexing.seconds} s`,
  );
  if (st.chunksEmbedded !== st.chunks) log(`warning: ${st.chunks - st.chunksEmbedded} chunks without vectors`);

  const byMode: Quality["byMode"] = {};
  const ranks: Record<string, number[]> = {};
  const times: Record<string, number[]> = {};
  for (const m of MODES) {
    ranks[m] = [];
    times[m] = [];
  }
  for (const [i, l] of set.labels.entries()) {
    for (const mode of MODES) {
      const t = performance.now();
      const r = await s.search.search({ query: l.query, roots: [s.root.dir], limit: 10, mode });
      times[mode]!.push(performance.now() - t);
      const at = r.hits.findIndex(
        (h) => h.chunk.path === l.path && h.chunk.startLine <= l.endLine && h.chunk.endLine >= l.startLine,
      );
      ranks[mode]!.push(at < 0 ? 0 : at + 1);
    }
    if ((i + 1) % 100 === 0) log(`  queries: ${i + 1}/${set.labels.length}`);
  }
  for (const m of MODES) {
    const r = ranks[m]!;
    const recall = (k: number) => r.filter((x) => x > 0 && x <= k).length / r.length;
    byMode[m] = {
      r1: round3(recall(1)),
      r5: round3(recall(5)),
      r10: round3(recall(10)),
      mrr: round3(r.reduce((a, x) => a + (x ? 1 / x : 0), 0) / r.length),
      p50ms: round3(median(times[m]!)),
    };
  }
  await db.close();
  out(`\n## 1. Retrieval quality (${PACKAGES.map((p) => path.relative(ROOT, p)).join(" + ")}, JSDoc blanked)`);
  out(
    `${set.labels.length} queries (JSDoc first sentences of >= 5 words; ${set.droppedDuplicate} ambiguous duplicates dropped) ` +
      `over ${st.chunks} chunks in ${st.filesIndexed} files; a hit = same path, overlapping lines; top 10.`,
  );
  out(
    table(
      ["ranking", "R@1", "R@5", "R@10", "MRR@10", "p50 ms"],
      MODES.map((m) => [
        m,
        f3(byMode[m]!.r1),
        f3(byMode[m]!.r5),
        f3(byMode[m]!.r10),
        f3(byMode[m]!.mrr),
        f3(byMode[m]!.p50ms),
      ]),
    ),
  );
  out("vector = the Ollama double's bag-of-words hashing embeddings (deterministic, not a trained model).");
  return {
    labels: set.labels,
    q: {
      package: PACKAGES.map((p) => path.relative(ROOT, p)),
      codeFiles: set.files,
      documentedFunctions: set.documented,
      droppedShort: set.droppedShort,
      droppedDuplicate: set.droppedDuplicate,
      queries: set.labels.length,
      chunks: st.chunks,
      byMode,
      indexing,
    },
  };
}

// --- 2. grep speed ---

interface GrepCase {
  name: string;
  input: GrepInput;
}

const GREP_CASES: GrepCase[] = [
  { name: "literal", input: { pattern: "createHash(", literal: true, caseMode: "sensitive" } },
  { name: "regex alternation", input: { pattern: "readFileSync|writeFileSync|existsSync", caseMode: "sensitive" } },
  { name: "case-insensitive word", input: { pattern: "deprecated", caseMode: "insensitive", wholeWord: true } },
];

/** Runs rg with argv in dir; resolves with wall ms, stdout bytes and lines. */
function runRg(argv: string[], dir: string): Promise<{ ms: number; bytes: number; lines: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn("rg", argv, { cwd: dir, stdio: ["ignore", "pipe", "ignore"], env: {} });
    let bytes = 0;
    let lines = 0;
    child.stdout.on("data", (d: Buffer) => {
      bytes += d.length;
      for (let i = d.indexOf(10); i >= 0; i = d.indexOf(10, i + 1)) lines++;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      if (code !== 0 && code !== 1) reject(new Error(`rg exited ${code}: ${argv.join(" ")}`));
      else resolve({ ms: performance.now() - t0, bytes, lines });
    });
  });
}

interface GrepFigures {
  tree: string;
  files: number;
  megabytes: number;
  reps: number;
  cases: {
    name: string;
    matches: number;
    truncated: boolean;
    grepMs: number;
    rgJsonMs: number;
    rgSortedMs: number;
    rgPlainMs: number;
    rgJsonBytes: number;
    builtinMs?: number;
    builtinMatches?: number;
    ratioJson: number;
    ratioSorted: number;
    ratioPlain: number;
  }[];
  ratioJsonMedian: number;
  ratioPlainMedian: number;
}

async function grepSpeed(): Promise<GrepFigures> {
  const roots = await SearchRoots.create([GREP_TREE]);
  const root = roots.list()[0]!;
  const fileList = await runRg(
    [
      "--files",
      "--no-config",
      "--no-require-git",
      "--no-ignore-dot",
      "--no-ignore-global",
      "--no-ignore-exclude",
      "--no-ignore-parent",
    ],
    root.dir,
  );
  let bytes = 0;
  {
    // Size of what rg searches: the listed files.
    const listed = await new Promise<string>((resolve, reject) => {
      const c = spawn(
        "rg",
        [
          "--files",
          "--no-config",
          "--no-require-git",
          "--no-ignore-dot",
          "--no-ignore-global",
          "--no-ignore-exclude",
          "--no-ignore-parent",
        ],
        { cwd: root.dir, env: {} },
      );
      let s = "";
      c.stdout.on("data", (d: Buffer) => (s += d.toString()));
      c.on("error", reject);
      c.on("close", () => resolve(s));
    });
    for (const f of listed.split("\n")) if (f) bytes += statSync(path.join(root.dir, f)).size;
  }
  const megabytes = Math.round(bytes / 1e6);
  log(
    `grep tree ${root.dir}: ${fileList.lines} files, ${megabytes} MB; ${GREP_REPS} repetitions per engine and pattern`,
  );
  const cases: GrepFigures["cases"] = [];
  for (const c of GREP_CASES) {
    const input: GrepInput = { ...c.input, maxMatches: 10_000 };
    const pattern = compilePattern(input.pattern, input);
    const plan: GrepPlan = {
      rootDir: root.dir,
      rootName: root.name,
      targets: [],
      filter: { includeHidden: false, respectGitignore: true },
      globs: [],
      contextLines: 0,
      maxMatches: 10_000,
      timeoutMs: 120_000,
      maxFileBytes: 64 * 1024 * 1024,
    };
    // grep()'s first run: parallel, unsorted (it sorts per file itself; `--sort path` only once over the cap).
    const jsonArgv = ripgrepArgs(plan, pattern, input.pattern);
    // The same search without JSON, sorted (single-threaded) as grep() used to run it.
    const sortedArgv = ripgrepArgs(plan, pattern, input.pattern, undefined, { sorted: true }).filter(
      (a) => a !== "--json",
    );
    sortedArgv.splice(sortedArgv.indexOf("-e"), 0, "--no-heading", "--line-number");
    // Plain rg with its defaults (parallel, unsorted), same ignore rules, case and word flags.
    const plainArgv = sortedArgv.filter((a, i, all) => a !== "--sort" && all[i - 1] !== "--sort");
    const grepOnce = async () => {
      const t = performance.now();
      const r = await grep(roots, input, { engine: "ripgrep", timeoutMs: 120_000 });
      return { ms: performance.now() - t, r };
    };
    // Warm the page cache and check the counts agree.
    const warm = await grepOnce();
    const rgWarm = await runRg(sortedArgv, root.dir);
    if (warm.r.truncated) log(`warning: ${c.name}: grep hit the 10 000 match cap; pick a rarer pattern`);
    if (rgWarm.lines !== warm.r.matches.length)
      log(`warning: ${c.name}: grep found ${warm.r.matches.length} matching lines, rg ${rgWarm.lines}`);
    const t: Record<string, number[]> = { grep: [], json: [], sorted: [], plain: [] };
    let jsonBytes = 0;
    for (let i = 0; i < GREP_REPS; i++) {
      // Rotate the order so drift in the machine's load hits every engine alike.
      const steps: [string, () => Promise<number>][] = [
        ["grep", async () => (await grepOnce()).ms],
        [
          "json",
          async () => {
            const r = await runRg(jsonArgv, root.dir);
            jsonBytes = r.bytes;
            return r.ms;
          },
        ],
        ["sorted", async () => (await runRg(sortedArgv, root.dir)).ms],
        ["plain", async () => (await runRg(plainArgv, root.dir)).ms],
      ];
      for (let k = 0; k < steps.length; k++) {
        const [name, run] = steps[(k + i) % steps.length]!;
        t[name]!.push(await run());
      }
    }
    let builtinMs: number | undefined;
    let builtinMatches: number | undefined;
    if (!args["no-builtin"]) {
      const b0 = performance.now();
      try {
        const r = await grep(roots, input, { engine: "builtin", timeoutMs: 300_000 });
        builtinMs = performance.now() - b0;
        builtinMatches = r.matches.length;
      } catch (err) {
        log(`builtin ${c.name}: ${(err as Error).message}`);
      }
    }
    const row = {
      name: c.name,
      matches: warm.r.matches.length,
      truncated: warm.r.truncated,
      grepMs: round3(median(t.grep!)),
      rgJsonMs: round3(median(t.json!)),
      rgSortedMs: round3(median(t.sorted!)),
      rgPlainMs: round3(median(t.plain!)),
      rgJsonBytes: jsonBytes,
      builtinMs: builtinMs === undefined ? undefined : round3(builtinMs),
      builtinMatches,
      ratioJson: 0,
      ratioSorted: 0,
      ratioPlain: 0,
    };
    row.ratioJson = round3(row.grepMs / row.rgJsonMs);
    row.ratioSorted = round3(row.grepMs / row.rgSortedMs);
    row.ratioPlain = round3(row.grepMs / row.rgPlainMs);
    log(
      `  ${c.name}: ${row.matches} matches; grep ${row.grepMs.toFixed(0)} ms, rg --json ${row.rgJsonMs.toFixed(0)} ms, rg sorted ${row.rgSortedMs.toFixed(0)} ms, rg plain ${row.rgPlainMs.toFixed(0)} ms` +
        (builtinMs === undefined ? "" : `, builtin ${builtinMs.toFixed(0)} ms (${builtinMatches} matches)`),
    );
    cases.push(row);
  }
  const figures: GrepFigures = {
    tree: path.relative(ROOT, root.dir) || root.dir,
    files: fileList.lines,
    megabytes,
    reps: GREP_REPS,
    cases,
    ratioJsonMedian: round3(median(cases.map((c) => c.ratioJson))),
    ratioPlainMedian: round3(median(cases.map((c) => c.ratioPlain))),
  };
  out(`\n## 2. Grep speed (${figures.tree}: ${figures.files} files, ${megabytes} MB; medians of ${GREP_REPS}, ms)`);
  out(
    table(
      [
        "pattern",
        "matches",
        "JSON MB",
        "grep()",
        "rg --json",
        "rg sorted",
        "rg plain",
        "grep/rg--json",
        "grep/rg sorted",
        "grep/rg plain",
        "builtin",
      ],
      cases.map((c) => [
        c.name,
        String(c.matches),
        (c.rgJsonBytes / 1e6).toFixed(2),
        c.grepMs.toFixed(1),
        c.rgJsonMs.toFixed(1),
        c.rgSortedMs.toFixed(1),
        c.rgPlainMs.toFixed(1),
        c.ratioJson.toFixed(2),
        c.ratioSorted.toFixed(2),
        c.ratioPlain.toFixed(2),
        c.builtinMs === undefined ? "-" : c.builtinMs.toFixed(0),
      ]),
    ),
  );
  out(
    "grep() = ripgrep engine (rg --json, parallel; hits buffered per file and sorted into walk order; capped at 10 000);\n" +
      "rg --json = the same argv run directly; rg sorted = same flags with --sort path, plain output;\n" +
      "rg plain = same flags, plain output, no --sort (rg's parallel default).\n" +
      "JSON MB = what rg --json writes (whole matching lines: minified bundles make it large); grep() parses all of it.",
  );
  for (const c of cases) {
    for (const [what, r] of [
      ["rg --json", c.ratioJson],
      ["rg plain", c.ratioPlain],
    ] as const) {
      out(
        `grep/${what}, ${c.name}: ${r.toFixed(2)} (target <= 1.5): ${r <= 1.5 ? "PASS" : `MISS by ${(r - 1.5).toFixed(2)}`}`,
      );
    }
  }
  return figures;
}

// --- 3 + 4. the big tree: indexing throughput and latency at >= 50k chunks ---

interface LatencyFigures {
  tree: string[];
  files: number;
  chunks: number;
  vectors: number;
  lexicalIndexing: Throughput;
  embedding: Throughput;
  optimizeSeconds: number;
  queries: number;
  byMode: Record<string, { p50: number; p90: number; p99: number; max: number; mean: number }>;
  asIndexedQueries: number;
  asIndexed: Record<string, { p50: number; p90: number; p99: number; max: number; mean: number }>;
  analyzeSeconds: number;
}

async function bigTree(ollamaUrl: string, tmp: string, labels: Label[]): Promise<LatencyFigures> {
  const dir = path.join(tmp, "big");
  mkdirSync(dir);
  const dataDir = path.join(tmp, "big-data");
  const db = await openDatabase({ dataDir });
  const s = await stack(dir, db, ollamaUrl);
  const used: string[] = [];
  let lexMs = 0;
  let st = await (async () => {
    const lexIndexer = s.indexer(false);
    try {
      // The listed packages first, then every other one in node_modules, until the target is reached.
      const others = readdirSync(path.join(ROOT, "node_modules"))
        .filter((n) => !n.startsWith("."))
        .flatMap((n) =>
          n.startsWith("@") ? readdirSync(path.join(ROOT, "node_modules", n)).map((m) => `${n}/${m}`) : [n],
        )
        .filter((n) => !LATENCY_PACKAGES.some((p) => n === p || n.startsWith(`${p}/`)))
        .sort();
      // Then copies of the labelled package (real code, new paths) if node_modules runs out.
      const sources = [
        ...[...LATENCY_PACKAGES, ...others].map((pkg) => ({ name: pkg, src: path.join(ROOT, "node_modules", pkg) })),
        ...Array.from({ length: 40 }, (_, i) => ({ name: `replica-${i + 1}`, src: PACKAGES[0]! })),
      ];
      let batch = 0;
      for (const [i, { name, src }] of sources.entries()) {
        try {
          statSync(src);
        } catch {
          continue;
        }
        // Code files only (the packages' own ignore rules do not apply inside the copies).
        for (const rel of listFiles(src, (r) => CODE_EXT.test(r))) {
          const dest = path.join(dir, name, rel);
          mkdirSync(path.dirname(dest), { recursive: true });
          cpSync(path.join(src, rel), dest);
          batch++;
        }
        used.push(name);
        // A scan per batch of about 500 new files (each scan stats every file already indexed).
        if (batch < 500 && i < sources.length - 1) continue;
        batch = 0;
        const t0 = performance.now();
        await lexIndexer.reindex(s.root);
        await idleWithProgress(lexIndexer, s, "lexical index");
        lexMs += performance.now() - t0;
        const now = await lexIndexer.status(s.root);
        log(`  up to ${name}: ${now.filesIndexed} files, ${now.chunks} chunks (${secs(lexMs)} s indexing so far)`);
        if (now.chunks >= TARGET_CHUNKS) break;
      }
      return await lexIndexer.status(s.root);
    } finally {
      await lexIndexer.close();
    }
  })();
  if (st.chunks < TARGET_CHUNKS)
    log(`warning: only ${st.chunks} chunks from node_modules; the target was ${TARGET_CHUNKS}`);
  const lexicalIndexing = throughput(st.filesIndexed, st.chunks, lexMs);
  log(`lexical-only: ${st.filesIndexed} files, ${st.chunks} chunks in ${lexicalIndexing.seconds} s`);

  // The embedding pass: the same files, unchanged, are queued again; the indexer embeds the ones without vectors.
  const embIndexer = s.indexer(true);
  const files = [...(await s.store.files(s.root.dir)).keys()];
  const e0 = performance.now();
  await embIndexer.reindex(s.root, files);
  await idleWithProgress(embIndexer, s, "embedding");
  const embMs = performance.now() - e0;
  st = await embIndexer.status(s.root);
  await embIndexer.close();
  const embedding = throughput(st.filesIndexed, st.chunksEmbedded, embMs);
  log(`embedded ${st.chunksEmbedded} chunks in ${embedding.seconds} s`);
  const target = await s.vectors.get();
  if (!target) throw new Error(`no vectors: ${s.vectors.unavailableReason}`);
  const vectors = await target.collection.count();
  const o0 = performance.now();
  log(`building the HNSW index over ${vectors} vectors (optimize())…`);
  await target.collection.optimize();
  const optimizeMs = performance.now() - o0;
  log(`optimize() took ${secs(optimizeMs)} s`);

  const queries = Array.from({ length: Math.max(LATENCY_QUERIES, 1) }, (_, i) => labels[i % labels.length]!.query);
  const order: SearchMode[] = ["hybrid", "lexical", "vector"];
  const run = (query: string, mode: SearchMode) => s.search.search({ query, roots: [s.root.dir], limit: 10, mode });
  const measure = async (qs: string[], what: string) => {
    const times: Record<string, number[]> = { hybrid: [], lexical: [], vector: [] };
    for (const q of qs.slice(0, 5)) for (const m of order) await run(q, m); // warm-up
    for (const [i, q] of qs.entries()) {
      for (let k = 0; k < order.length; k++) {
        const mode = order[(k + i) % order.length]!;
        const t = performance.now();
        await run(q, mode);
        times[mode]!.push(performance.now() - t);
      }
      if ((i + 1) % 25 === 0) log(`  ${what}: ${i + 1}/${qs.length} queries per mode`);
    }
    const byMode: LatencyFigures["byMode"] = {};
    for (const m of order) {
      const x = summarize(times[m]!);
      byMode[m] = {
        p50: round3(x.p50),
        p90: round3(x.p90),
        p99: round3(x.p99),
        max: round3(x.max),
        mean: round3(x.mean),
      };
    }
    return byMode;
  };
  // (a) As the indexer leaves the database: nothing runs ANALYZE after the bulk load (and PGlite has no
  // autovacuum), so the planner still believes the table is nearly empty. Slow, so a small sample.
  log(`latency as indexed (no ANALYZE), ${ASIS_QUERIES} queries per mode…`);
  const asIndexed = await measure(queries.slice(0, ASIS_QUERIES), "as indexed");
  // (b) After ANALYZE of the chunk and vector tables (what autovacuum would do on a Postgres server).
  const a0 = performance.now();
  await db.exec(`ANALYZE search_chunks; ANALYZE search_symbols; ANALYZE search_files;`);
  await db
    .exec(`ANALYZE vec_${collectionName("nomic-embed-text")};`)
    .catch((err) => log(`ANALYZE vec table: ${(err as Error).message}`));
  const analyzeMs = performance.now() - a0;
  log(`ANALYZE took ${secs(analyzeMs)} s; latency, ${queries.length} queries per mode…`);
  const byMode = await measure(queries, "analyzed");
  await db.close();
  const fig: LatencyFigures = {
    tree: used,
    files: st.filesIndexed,
    chunks: st.chunks,
    vectors,
    lexicalIndexing,
    embedding,
    optimizeSeconds: secs(optimizeMs),
    queries: queries.length,
    byMode,
    asIndexedQueries: ASIS_QUERIES,
    asIndexed,
    analyzeSeconds: secs(analyzeMs),
  };
  out(`\n## 3. Indexing throughput`);
  out(
    table(
      ["tree", "files", "chunks", "s", "files/s", "chunks/s"],
      [
        ["labelled package, with embeddings (double)", ...tpRow(undefined)],
        ["big tree, lexical only", ...tpRow(lexicalIndexing)],
        ["big tree, embedding pass (chunks embedded)", ...tpRow(embedding)],
      ].filter((r) => r[1] !== "-"),
    ),
  );
  out(`HNSW build (optimize()) over ${vectors} vectors: ${fig.optimizeSeconds} s`);
  const latencyTable = (b: LatencyFigures["byMode"]) =>
    table(
      ["mode", "p50", "p90", "p99", "max", "mean"],
      order.map((m) => [m, ...(["p50", "p90", "p99", "max", "mean"] as const).map((k) => b[m]![k].toFixed(1))]),
    );
  out(`\n## 4. Search latency at ${st.chunks} chunks / ${vectors} vectors, pgvector on PGlite (HNSW), ms`);
  out(
    `tree: code files of ${used.length} sources (${used.slice(0, 5).join(", ")}, …, ${used.at(-1)}; ${st.filesIndexed} files); limit 10; queries = JSDoc summaries`,
  );
  out(`(a) as the indexer leaves the database (no ANALYZE since the bulk load), ${ASIS_QUERIES} queries per mode:`);
  out(latencyTable(asIndexed));
  out(`(b) after ANALYZE (${fig.analyzeSeconds} s), ${queries.length} queries per mode:`);
  out(latencyTable(byMode));
  return fig;
}

let labelledThroughput: Throughput | undefined;
function tpRow(t: Throughput | undefined): string[] {
  const x = t ?? labelledThroughput;
  if (!x) return ["-", "-", "-", "-", "-"];
  return [String(x.files), String(x.chunks), String(x.seconds), x.filesPerSec.toFixed(1), x.chunksPerSec.toFixed(1)];
}

// --- main ---

async function main(): Promise<void> {
  const t0 = Date.now();
  const loadAtStart = load();
  log(`bench/search: load average ${loadAtStart.join(" ")} on ${os.cpus().length} cores`);
  if (loadAtStart[0]! > 1)
    log(`warning: load average ${loadAtStart[0]} before the run; other work on this machine will skew the timings`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "agentgate-bench-search-"));
  let ollama: Child | undefined;
  const results: Record<string, unknown> = {
    setup: {
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAvgAtStart: loadAtStart,
      date: new Date().toISOString(),
      quick,
    },
  };
  try {
    ollama = spawnChild("ollama-double", ["--import", "tsx", "test/doubles/ollama-double-main.ts"], {
      cwd: ROOT,
      env: childEnv({}),
    });
    const ollamaUrl = await withTimeout(ollama.firstLine, 30_000, "ollama double");
    let labels: Label[] = [];
    if (SECTIONS.has("quality") || SECTIONS.has("index") || SECTIONS.has("latency")) {
      log(`\n[1] retrieval quality (load ${load().join(" ")})`);
      const q = await quality(ollamaUrl, tmp);
      labels = q.labels;
      labelledThroughput = q.q.indexing;
      results.quality = q.q;
    }
    if (SECTIONS.has("grep")) {
      log(`\n[2] grep speed (load ${load().join(" ")})`);
      results.grep = await grepSpeed();
    }
    if (SECTIONS.has("index") || SECTIONS.has("latency")) {
      log(`\n[3+4] indexing throughput and latency at ${TARGET_CHUNKS} chunks (load ${load().join(" ")})`);
      results.bigTree = await bigTree(ollamaUrl, tmp, labels);
    } else if (labelledThroughput) {
      out(`\n## 3. Indexing throughput`);
      out(
        table(
          ["tree", "files", "chunks", "s", "files/s", "chunks/s"],
          [["labelled package, with embeddings (double)", ...tpRow(undefined)]],
        ),
      );
    }
  } finally {
    await ollama?.stop();
    if (!args.keep) rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
  }
  results.seconds = Math.round((Date.now() - t0) / 1000);
  (results.setup as Record<string, unknown>).loadAvgAtEnd = load();
  summary(results);
  if (args.json) {
    writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
    log(`figures written to ${args.json}`);
  }
  out(`\n(run took ${String(results.seconds)} s)`);
  if (!args.json) out(JSON.stringify(results));
}

function summary(r: Record<string, any>): void {
  const lines: string[] = [];
  const set = r.setup;
  lines.push(
    `machine: ${set.cpus} cores (${set.cpuModel}), Node ${set.node}, load average ${set.loadAvgAtStart.join(" ")} at start, ${set.loadAvgAtEnd.join(" ")} at end`,
  );
  if (r.quality) {
    const q = r.quality as Quality;
    lines.push(`retrieval (${q.package.join(" + ")}, ${q.queries} queries, ${q.chunks} chunks):`);
    for (const m of MODES) {
      const x = q.byMode[m]!;
      lines.push(`  ${m.padEnd(8)} R@1 ${f3(x.r1)}  R@5 ${f3(x.r5)}  R@10 ${f3(x.r10)}  MRR ${f3(x.mrr)}`);
    }
    lines.push(
      `indexing, labelled package with embeddings: ${q.indexing.filesPerSec} files/s, ${q.indexing.chunksPerSec} chunks/s (${q.indexing.files} files, ${q.indexing.chunks} chunks, ${q.indexing.seconds} s)`,
    );
  }
  if (r.grep) {
    const g = r.grep as GrepFigures;
    lines.push(`grep over ${g.tree} (${g.files} files, ${g.megabytes} MB), medians of ${g.reps}:`);
    for (const c of g.cases)
      lines.push(
        `  ${c.name.padEnd(22)} grep ${c.grepMs.toFixed(0)} ms; rg --json ${c.rgJsonMs.toFixed(0)}, rg plain ${c.rgPlainMs.toFixed(0)}; ratio ${c.ratioJson.toFixed(2)} / ${c.ratioPlain.toFixed(2)}; builtin ${c.builtinMs === undefined ? "-" : c.builtinMs.toFixed(0)} ms`,
      );
    lines.push(
      `  ratio grep/rg (target <= 1.5), median over patterns: vs rg --json same argv ${g.ratioJsonMedian.toFixed(2)}, vs plain rg ${g.ratioPlainMedian.toFixed(2)}`,
    );
  }
  if (r.bigTree) {
    const b = r.bigTree as LatencyFigures;
    lines.push(
      `indexing, big tree lexical only: ${b.lexicalIndexing.filesPerSec} files/s, ${b.lexicalIndexing.chunksPerSec} chunks/s (${b.files} files, ${b.chunks} chunks, ${b.lexicalIndexing.seconds} s)`,
    );
    lines.push(
      `embedding pass, big tree: ${b.embedding.chunksPerSec} chunks/s (${b.embedding.seconds} s); HNSW build ${b.optimizeSeconds} s`,
    );
    lines.push(
      `latency at ${b.chunks} chunks / ${b.vectors} vectors (HNSW), after ANALYZE, ${b.queries} queries per mode:`,
    );
    for (const m of ["hybrid", "lexical", "vector"])
      lines.push(`  ${m.padEnd(8)} p50 ${b.byMode[m]!.p50.toFixed(1)} ms  p99 ${b.byMode[m]!.p99.toFixed(1)} ms`);
    lines.push(`  as indexed (no ANALYZE), ${b.asIndexedQueries} queries per mode:`);
    for (const m of ["hybrid", "lexical", "vector"])
      lines.push(`  ${m.padEnd(8)} p50 ${b.asIndexed[m]!.p50.toFixed(1)} ms  p99 ${b.asIndexed[m]!.p99.toFixed(1)} ms`);
  }
  out(`\n## Summary`);
  for (const l of lines) out(l);
}

main().catch((err) => {
  log(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
