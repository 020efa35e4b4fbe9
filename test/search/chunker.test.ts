import { createHash } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { chunkFile, chunkSource, DEFAULT_CHUNK_OPTIONS, type Chunk } from "../../src/search/chunker.js";
import { parseSymbols } from "../../src/search/symbols/index.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../fixtures/search/symbols");
const read = (name: string): string => readFileSync(join(FIXTURES, name), "utf8");
const brief = (chunks: Chunk[]): string[] => chunks.map((c) => `${c.startLine}-${c.endLine} ${c.symbols.join(",")}`);
const numbered = (count: number, prefix = "line"): string =>
  Array.from({ length: count }, (_, i) => `${prefix} ${i + 1}`).join("\n") + "\n";

/** Invariants every chunking must keep, whatever the file. */
function checkInvariants(source: string, chunks: Chunk[], opts = DEFAULT_CHUNK_OPTIONS): void {
  const lines = source.split("\n");
  const covered = new Set<number>();
  for (const c of chunks) {
    expect(c.startLine).toBeGreaterThanOrEqual(1);
    expect(c.endLine).toBeGreaterThanOrEqual(c.startLine);
    expect(c.hash).toBe(createHash("sha256").update(c.text).digest("hex"));
    const exact = lines.slice(c.startLine - 1, c.endLine).join("\n");
    if (c.startLine === c.endLine && exact.length > opts.maxChars) expect(exact).toContain(c.text);
    else {
      expect(c.text).toBe(exact); // the text is exactly the lines it claims
      expect(c.endLine - c.startLine + 1).toBeLessThanOrEqual(opts.maxLines);
      expect(c.text.length).toBeLessThanOrEqual(opts.maxChars);
    }
    for (let l = c.startLine; l <= c.endLine; l++) covered.add(l);
  }
  // Nothing but blank lines is left out.
  lines.forEach((line, i) => {
    if (line.trim() !== "") expect(covered.has(i + 1), `line ${i + 1} covered`).toBe(true);
  });
}

describe("chunkFile by code structure", () => {
  it("keeps declarations whole, splits a big class at its members and merges small neighbours", async () => {
    const source = read("sample.ts");
    const chunks = await chunkFile("sample.ts", source, { maxChars: 400 });
    expect(brief(chunks)).toEqual([
      "1-21 MAX_RETRIES,counter,Shape,area,Handler,Color,sealed",
      "23-40 Circle,constructor,area,grow",
      // The class's last part is not merged with the next declarations.
      "42-45 Circle,diameter",
      "47-63 makeCircle,parseShape,Geometry,origin,Base,describe",
      "65-67 augment,extra",
    ]);
    expect(chunks[1]!.text.startsWith("@sealed\nexport class Circle")).toBe(true);
    expect(chunks.every((c) => c.language === "typescript" && c.path === "sample.ts")).toBe(true);
    checkInvariants(source, chunks, { ...DEFAULT_CHUNK_OPTIONS, maxChars: 400 });
  });

  it("a small file is one chunk with the default limits", async () => {
    const source = read("widget.tsx");
    expect(brief(await chunkFile("widget.tsx", source))).toEqual(["1-22 Props,Button,Counter,Panel,render"]);
  });

  it("keeps Rust impl blocks apart and together (doc comments and attributes go with their item)", async () => {
    const chunks = await chunkFile("shapes.rs", read("shapes.rs"), { maxChars: 300, maxLines: 12 });
    expect(brief(chunks)).toEqual([
      "1-12 ORIGIN,COUNTER,Shape,area,name",
      "14-24 Circle,Kind,Result",
      "26-30 Circle,area",
      "32-35 Circle,new",
      "37-43 Circle,describe",
      "45-55 util,clamp,square",
      "57-63 fetch",
    ]);
    expect(chunks[0]!.text).toContain("/// A shape.\npub trait Shape");
  });

  it("splits Python classes at methods, decorators included", async () => {
    const source = read("models.py");
    const chunks = await chunkFile("models.py", source, { maxChars: 200 });
    expect(brief(chunks)).toEqual([
      "1-6 MAX_ITEMS,_cache",
      "9-14 log_calls,wrapper",
      "17-26 Item,label",
      "28-32 Item,Meta,describe",
      "35-37 Store,__init__",
      "39-44 Store,total",
      "47-48 top_level",
    ]);
    expect(chunks[5]!.text.startsWith("    @log_calls\n    async def total(")).toBe(true);
    checkInvariants(source, chunks, { ...DEFAULT_CHUNK_OPTIONS, maxChars: 200 });
  });

  it("cuts a declaration without members into overlapping line windows, kept apart from its neighbours", async () => {
    const body = Array.from({ length: 100 }, (_, i) => `  const v${i} = ${i};`).join("\n");
    const source = `export const A = 1;\n\nexport function big() {\n${body}\n}\n\nexport const B = 2;\n`;
    const chunks = await chunkFile("big.ts", source, { maxLines: 40, overlapLines: 5 });
    // The window starts at the first non-blank line of the piece (its leading blank line is skipped).
    expect(brief(chunks)).toEqual(["1-1 A", "3-42 big", "38-77 big", "73-104 big", "106-106 B"]);
    checkInvariants(source, chunks, { ...DEFAULT_CHUNK_OPTIONS, maxLines: 40 });
  });

  it("holds the invariants on every fixture with the defaults and with tight limits", async () => {
    for (const file of readdirSync(FIXTURES).sort()) {
      const source = read(file);
      for (const opts of [DEFAULT_CHUNK_OPTIONS, { maxChars: 120, maxLines: 6, overlapLines: 2 }]) {
        const chunks = await chunkFile(file, source, opts);
        expect(chunks.length, file).toBeGreaterThan(0);
        checkInvariants(source, chunks, opts);
      }
    }
  });

  it("is deterministic", async () => {
    const source = read("server.go");
    const a = await chunkFile("server.go", source, { maxChars: 200 });
    const b = await chunkFile("server.go", source, { maxChars: 200 });
    expect(a).toEqual(b);
    expect(new Set(a.map((c) => c.hash)).size).toBe(a.length);
  });
});

describe("chunkFile by lines", () => {
  it("uses overlapping windows when there is no grammar", async () => {
    const source = numbered(150);
    const chunks = await chunkFile("notes.md", source, { maxLines: 60, overlapLines: 5 });
    expect(brief(chunks)).toEqual(["1-60 ", "56-115 ", "111-150 "]);
    expect(chunks[0]!.language).toBeUndefined();
    checkInvariants(source, chunks);
  });

  it("windows also respect the character limit", async () => {
    const source = numbered(30, "x".repeat(95)); // ~100 chars a line
    const chunks = await chunkFile("data.txt", source, { maxChars: 1000, overlapLines: 2 });
    expect(brief(chunks)).toEqual(["1-10 ", "9-18 ", "17-26 ", "25-30 "]);
    checkInvariants(source, chunks, { ...DEFAULT_CHUNK_OPTIONS, maxChars: 1000 });
  });

  it("falls back to lines when parsing runs out of time", async () => {
    const source = "function f() { return 1; }\n".repeat(100);
    const chunks = await chunkFile("slow.ts", source, { timeoutMs: 0, maxLines: 60, overlapLines: 5 });
    // 27 characters a line: the 1,500-character limit binds before the 60 lines.
    expect(brief(chunks)).toEqual(["1-55 ", "51-100 "]);
  });

  it("cuts one overlong line (minified code) by characters under its line number", async () => {
    const line = "a=1;".repeat(1000);
    const source = `// header\n${line}\n`;
    const chunks = await chunkFile("min.js", source);
    expect(chunks.slice(1).every((c) => c.startLine === 2 && c.endLine === 2)).toBe(true);
    expect(
      chunks
        .slice(1)
        .map((c) => c.text)
        .join(""),
    ).toBe(line);
    expect(chunks.every((c) => c.text.length <= DEFAULT_CHUNK_OPTIONS.maxChars)).toBe(true);
  });

  it("handles empty, blank and malformed sources", async () => {
    expect(await chunkFile("e.ts", "")).toEqual([]);
    expect(await chunkFile("e.ts", "\n\n   \n")).toEqual([]);
    const broken = "class {\n  m( {\n".repeat(50);
    const chunks = await chunkFile("broken.ts", broken, { maxLines: 20 });
    checkInvariants(broken, chunks, { ...DEFAULT_CHUNK_OPTIONS, maxLines: 20 });
  });

  it("chunkSource ignores symbols outside the file instead of failing", () => {
    const chunks = chunkSource("x.ts", "a\nb\n", [
      {
        name: "ghost",
        kind: 1,
        path: "x.ts",
        language: "typescript",
        startLine: 5,
        endLine: 9,
        signature: "",
        container: "",
      },
      {
        name: "half",
        kind: 1,
        path: "x.ts",
        language: "typescript",
        startLine: 2,
        endLine: 40,
        signature: "",
        container: "",
      },
    ]);
    expect(brief(chunks)).toEqual(["1-2 half"]);
  });
});

// Printed only: the machine is shared, so no timing is asserted.
describe("chunking throughput on real TypeScript sources", () => {
  it("chunks a few hundred .ts files from node_modules, holding the invariants", async () => {
    const require = createRequire(import.meta.url);
    const root = join(dirname(require.resolve("openai")), "src");
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir).sort()) {
        const full = join(dir, entry);
        if (statSync(full).isDirectory()) walk(full);
        else if (entry.endsWith(".ts") && !entry.endsWith(".d.ts")) files.push(full);
      }
    };
    walk(root);
    expect(files.length).toBeGreaterThan(100);
    const sources = files.map((f) => readFileSync(f, "utf8"));
    const extractions = [];
    let started = performance.now();
    for (const [i, file] of files.entries()) extractions.push(await parseSymbols(file, sources[i]!));
    const parseSeconds = (performance.now() - started) / 1000;
    let chunks = 0;
    started = performance.now();
    for (const [i, file] of files.entries()) {
      const x = extractions[i]!;
      const out = chunkSource(file, sources[i]!, [...x.symbols, ...x.blocks], x.language);
      chunks += out.length;
      if (i % 10 === 0) checkInvariants(sources[i]!, out);
    }
    const chunkSeconds = (performance.now() - started) / 1000;
    console.log(
      `chunker throughput: ${files.length} files -> ${chunks} chunks; parse ${parseSeconds.toFixed(2)} s, ` +
        `chunk ${chunkSeconds.toFixed(2)} s = ${Math.round(files.length / (parseSeconds + chunkSeconds))} files/s, ` +
        `${Math.round(chunks / (parseSeconds + chunkSeconds))} chunks/s end to end`,
    );
  }, 120_000);
});
